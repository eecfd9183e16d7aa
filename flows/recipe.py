"""A recipe: one YAML file with one section per stage, validated by the stages' own pydantic models.

The sections are the stage table's entries (flows/stages.py). The same models are the flows' parameters
(``flow_parameters`` makes each flow's typed signature from the table; the Prefect UI renders them as
forms) and the params logged to MLflow, so a run can be repeated from any of the three.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from flows.stages import STAGES, FlowName, stages_of

M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])


class RunConfig(BaseModel):
    """Where a run writes, what it is called, and where it is tracked."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", description="Run name: the folder under runs_dir and the MLflow run name. Empty: `<flow>-<date>`, so a rerun the same day resumes.", pattern=r"^[A-Za-z0-9._-]*$", max_length=100)
    runs_dir: str = Field("runs", description="Folder holding every run's data, the MLflow SQLite store and Prefect's home.", min_length=1)
    experiment: str = Field("liandan", description="MLflow experiment of this recipe's runs.", min_length=1, max_length=200)
    tracking_uri: str = Field("", description="MLflow tracking URI. Empty: `$MLFLOW_TRACKING_URI`, else `sqlite:///<runs_dir>/mlflow.db`.")
    mlflow_ui_url: str = Field("http://127.0.0.1:5000", description="MLflow UI address used in links (make ui serves it here).")
    shard_docs: int = Field(500, description="Documents per Parquet shard written by source stages (one Prefect task per shard downstream).", ge=1, le=1_000_000)
    runner: Literal["threads", "processes", "dask", "ray"] = Field("threads", description="Where shard tasks run: a thread pool, a process pool, a Dask cluster (a LocalCluster, or dask_address) or Ray (a local instance, or ray_address).")
    max_workers: int = Field(2, description="Threads, processes, Dask LocalCluster workers or local Ray CPUs running shard tasks at once.", ge=1, le=1024)
    dask_address: str = Field("", description="Scheduler address of an existing Dask cluster (tcp://host:8786); empty starts a LocalCluster of max_workers processes.")
    ray_address: str = Field("", description="Address of an existing Ray cluster (ray://head:10001, or auto for the cluster this machine belongs to); empty starts a local Ray instance of max_workers CPUs.")

    def resolved_name(self, flow: str, today: dt.date | None = None) -> str:
        """Return the run name, defaulting to '<flow>-<YYYY-MM-DD>'."""
        return self.name or f"{flow}-{(today or dt.date.today()).isoformat()}"


class RecipeBase(BaseModel):
    """The run section and what every recipe can do; ``Recipe`` adds one section per entry of the stage table."""

    model_config = ConfigDict(extra="forbid")

    run: RunConfig = Field(default_factory=RunConfig)

    def sections_of(self, *flows: FlowName) -> dict[str, BaseModel]:
        """Return the sections that ``flows`` take as parameters, by name, in chain order."""
        return {s.name: getattr(self, s.name) for s in stages_of(*flows)}


Recipe = create_model(
    "Recipe",
    __base__=RecipeBase,
    __module__=__name__,
    __doc__="A whole chain's configuration: the run, then one section per stage in chain order.",
    **{s.name: (s.config, Field(default_factory=s.config)) for s in STAGES},
)


def flow_parameters(*flows: FlowName) -> Callable[[F], F]:
    """Return a decorator giving a flow function its typed parameters from the stage table, for Prefect's forms.

    The function is written ``def f(run: RunConfig = RunConfig(), *, <its own keyword parameters>, **sections)``;
    its signature becomes ``run``, then one keyword parameter per section that ``flows`` take (typed by the
    section's model, defaulting to its defaults), then its own. Prefect builds the parameter schema, validates and
    binds arguments from this signature; the function reads the sections as ``Recipe(run=run, **sections)``.
    """

    def decorate(fn: F) -> F:
        own = inspect.signature(fn, eval_str=True)
        kinds = [p.kind for p in own.parameters.values()]
        if kinds.count(inspect.Parameter.VAR_KEYWORD) != 1 or inspect.Parameter.VAR_POSITIONAL in kinds:
            raise TypeError(f"{fn.__name__} must take the sections as **sections (and no *args)")
        leading = [p for p in own.parameters.values() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        trailing = [p for p in own.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
        sections = [inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=s.config(), annotation=s.config) for s in stages_of(*flows)]
        signature = own.replace(parameters=[*leading, *sections, *trailing])
        fn.__signature__ = signature  # type: ignore[attr-defined]
        fn.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()} | {"return": signature.return_annotation}
        return fn

    return decorate


class RecipeError(ValueError):
    """A recipe that does not validate; the message names each bad key."""


def _format_errors(source: str, err: ValidationError, prefix: str = "") -> str:
    lines = [f"{source}: {err.error_count()} invalid setting(s)"]
    for e in err.errors():
        key = prefix + ".".join(str(part) for part in e["loc"])
        shown = "" if e["type"] == "extra_forbidden" or isinstance(e["input"], (dict, list)) else f" (got {e['input']!r})"
        lines.append(f"  {key or '(top level)'}: {e['msg']}{shown}")
    return "\n".join(lines)


def load_section(model: type[M], path: str | Path | None, name: str) -> M:
    """Return one stage's config from a YAML file holding that section alone (defaults when no file)."""
    data: Any = {}
    if path is not None:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise RecipeError(f"{path}: not valid YAML: {e}") from None
        if isinstance(data, dict) and set(data) == {name} and name not in model.model_fields:
            data = data[name]  # a section copied with its heading from a recipe
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise RecipeError(_format_errors(str(path or name), e, prefix=f"{name}.")) from None


def set_override(data: dict[str, Any], dotted: str, value: str) -> None:
    """Apply one ``section.key=value`` override (the value parsed as YAML) to raw recipe data."""
    *path, leaf = dotted.split(".")
    node = data
    for part in path:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise RecipeError(f"--set {dotted}: '{part}' is not a section")
    node[leaf] = yaml.safe_load(value)


def parse_recipe(data: Any, source: str = "recipe") -> Recipe:
    """Return the validated recipe of raw YAML data, or raise RecipeError naming the bad keys."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe is a mapping of sections, got {type(data).__name__}")
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        raise RecipeError(_format_errors(source, e)) from None


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Return the validated recipe in a YAML file, with ``section.key=value`` overrides applied."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise RecipeError(f"{path}: not valid YAML: {e}") from None
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise RecipeError(f"--set {item!r}: expected section.key=value")
        set_override(data, key.strip(), value)
    return parse_recipe(data, str(path))
