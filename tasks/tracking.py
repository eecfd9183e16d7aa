"""MLflow runs of the chain: one parent run per flow run, one child run per stage, passed by id.

Everything goes through ``MlflowClient`` with explicit run ids — never ``mlflow.start_run`` and its
thread-local active run — because stages run on Prefect's worker threads and a child must land under
the right parent whichever thread logs it. Only the flow process writes: tasks return their stats and
the flow logs them, so no two processes write one SQLite store at once.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from pydantic import BaseModel

FLOW_RUN_ID_TAG = "prefect.flow_run_id"
# MLflow 3's experiment type, read by its UI: "custom_model_development" ("Machine learning") opens the experiment on
# its runs table; without it the UI infers a GenAI experiment, opens the empty traces overview and calls runs evaluations.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
PARAM_VALUE_LIMIT = 6000  # MLflow 3 rejects longer param values


def resolve_tracking_uri(configured: str, runs_dir: str | Path) -> str:
    """Return the tracking URI: the configured one, else MLFLOW_TRACKING_URI, else SQLite in the runs folder."""
    if configured:
        return configured
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(runs_dir).expanduser().resolve() / 'mlflow.db'}"


def flatten_params(cfg: BaseModel) -> dict[str, str]:
    """Return a config as string params; lists and dicts become JSON (cut to MLflow's length limit)."""
    out: dict[str, str] = {}
    for key, value in cfg.model_dump(mode="json").items():
        text = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)
        out[key] = text[:PARAM_VALUE_LIMIT]
    return out


_METRIC_UNSAFE = re.compile(r"[^\w./: -]")


def metric_name(key: str) -> str:
    """Return ``key`` as MLflow accepts a metric name: a character it refuses (from a source name in the data: U+FFFD, a symbol) becomes ``_``."""
    return _METRIC_UNSAFE.sub("_", key)[:250]


def stats_metrics(stats: dict) -> dict[str, float]:
    """Return a stage's stats as flat MLflow metrics (docs, rejects by reason, seconds by step, counters)."""
    metrics: dict[str, float] = {}
    for key in ("docs_in", "docs_kept", "docs_rejected", "chars_in", "chars_out", "seconds"):
        if key in stats:
            metrics[key] = float(stats[key])
    for reason, n in stats.get("rejected_by_reason", {}).items():
        metrics[f"rejected.{reason}"] = float(n)
    for step, seconds in stats.get("seconds_by_step", {}).items():
        metrics[f"seconds.{step}"] = float(seconds)
    for name, n in stats.get("counters", {}).items():
        metrics[f"counters.{name}"] = float(n)
    if stats.get("seconds"):
        metrics["docs_per_s"] = stats["docs_in"] / stats["seconds"]
    return metrics


def rejection_chart(stats: dict):
    """Return a horizontal bar chart (matplotlib Figure) of a stage's rejections by reason."""
    from matplotlib.figure import Figure  # the object API: no pyplot global state, safe off the main thread

    reasons = sorted(stats["rejected_by_reason"].items(), key=lambda kv: kv[1])
    fig = Figure(figsize=(6, 0.4 * len(reasons) + 1.2))
    ax = fig.add_subplot()
    ax.barh([r for r, _ in reasons], [n for _, n in reasons], color="#c0504d")
    ax.set_xlabel("documents rejected")
    ax.set_title(f"{stats.get('stage', 'stage')}: {stats.get('docs_rejected', 0)} of {stats.get('docs_in', 0)} rejected")
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class StageInput:
    """A dataset a stage read: a folder of shards and the digest of their bytes (MLflow lineage)."""

    name: str
    path: str
    digest: str
    n_docs: int


@dataclass
class Tracker:
    """The MLflow parent run of one flow run, and the child runs of its stages."""

    client: MlflowClient
    experiment_id: str
    parent_run_id: str
    ui_url: str  # base URL of the MLflow UI, for links

    @classmethod
    def start_flow(
        cls,
        tracking_uri: str,
        experiment: str,
        run_name: str,
        artifact_root: Path | None,
        tags: dict[str, str],
        ui_url: str,
        nest_under: str | None = None,
    ) -> Tracker:
        """Create the parent run (nested under ``nest_under`` when the flow is a subflow of a tracked flow)."""
        client = connect(tracking_uri)
        experiment_id = ensure_experiment(client, experiment, artifact_root)
        run_tags = dict(tags)
        if nest_under:
            run_tags[MLFLOW_PARENT_RUN_ID] = nest_under
        run = client.create_run(experiment_id, run_name=run_name, tags=run_tags)
        return cls(client, experiment_id, run.info.run_id, ui_url.rstrip("/"))

    def run_url(self, run_id: str | None = None) -> str:
        return f"{self.ui_url}/#/experiments/{self.experiment_id}/runs/{run_id or self.parent_run_id}"

    def start_stage(self, stage: str, cfg: BaseModel | None, run_name: str = "") -> str:
        """Create a child run for a stage (named ``run_name``, else the stage), with its config as params; return its id."""
        run = self.client.create_run(
            self.experiment_id,
            run_name=run_name or stage,
            tags={MLFLOW_PARENT_RUN_ID: self.parent_run_id, "liandan.stage": stage},
        )
        if cfg is not None:
            self.log_params(run.info.run_id, flatten_params(cfg))
        return run.info.run_id

    def log_params(self, run_id: str, params: dict[str, str]) -> None:
        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i : i + 100])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        items = [Metric(metric_name(k), float(v), now, step) for k, v in metrics.items()]
        for i in range(0, len(items), 500):
            self.client.log_batch(run_id, metrics=items[i : i + 500])

    def log_metric_history(self, run_id: str, steps: list[dict[str, float]]) -> None:
        """Log one dict of metrics per step (step = its index), batched: a curve made outside a trainer."""
        now = int(time.time() * 1000)
        items = [Metric(metric_name(k), float(v), now, step) for step, metrics in enumerate(steps) for k, v in metrics.items()]
        for i in range(0, len(items), 500):
            self.client.log_batch(run_id, metrics=items[i : i + 500])

    def log_inputs(self, run_id: str, inputs: list[StageInput]) -> None:
        """Log the stage's inputs as MLflow datasets, so the UI shows lineage with digests."""
        datasets = [
            DatasetInput(
                Dataset(
                    name=item.name,
                    digest=item.digest[:36],
                    source_type="local",
                    source=json.dumps({"uri": item.path}),
                    profile=json.dumps({"num_rows": item.n_docs}),
                ),
                tags=[InputTag("mlflow.data.context", "input")],
            )
            for item in inputs
        ]
        if datasets:
            self.client.log_inputs(run_id, datasets=datasets)

    def log_stage_stats(self, run_id: str, stats: dict) -> None:
        self.log_metrics(run_id, stats_metrics(stats))
        self.client.log_dict(run_id, stats, "stats.json")
        if stats.get("rejected_by_reason"):
            self.client.log_figure(run_id, rejection_chart(stats), "rejections.png")

    def end(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)


def register_model(client: MlflowClient, run_id: str, artifact_path: str, name: str, description: str, alias: str = "candidate") -> str:
    """Register the run's ``artifact_path`` as a new version of ``name``, give it ``alias``; return the version."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name, description=description)
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(name, source=f"runs:/{run_id}/{artifact_path}", run_id=run_id)
    client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)


@contextmanager
def active_mlflow_run(tracking_uri: str, run_id: str) -> Iterator[None]:
    """Make ``run_id`` MLflow's active run in this thread, for HF's MLflowCallback (it only logs to the active run).

    The rest of liandan logs by run id; trainers are the one place that needs MLflow's thread-local
    state, so it is set and restored around the training call only.
    """
    import mlflow

    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(tracking_uri)
    try:
        with mlflow.start_run(run_id=run_id):
            yield
            mlflow.flush_async_logging()  # the callback logs asynchronously; the flow reads the metrics next
    finally:
        mlflow.set_tracking_uri(previous)


def connect(tracking_uri: str) -> MlflowClient:
    """Return a client for ``tracking_uri``, failing fast with a clear message when the server is down."""
    client = MlflowClient(tracking_uri=tracking_uri)
    if tracking_uri.startswith(("http://", "https://")):
        import httpx

        try:
            httpx.get(tracking_uri.rstrip("/") + "/health", timeout=5.0).raise_for_status()
        except httpx.HTTPError as e:
            raise RuntimeError(f"MLflow tracking server {tracking_uri} is not reachable ({e}); start it or unset MLFLOW_TRACKING_URI") from e
    return client


def ensure_experiment(client: MlflowClient, name: str, artifact_root: Path | None) -> str:
    """Return the id of experiment ``name``, creating it as a model-training experiment (artifacts under ``artifact_root``) if needed.

    An existing experiment without a type (made before liandan set one) gets the model-training type; one the
    user typed otherwise keeps theirs.
    """
    found = client.get_experiment_by_name(name)
    if found is not None:
        if EXPERIMENT_KIND_TAG not in found.tags:
            client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
        return found.experiment_id
    location = (artifact_root / name).resolve().as_uri() if artifact_root is not None else None
    return client.create_experiment(name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND})


def find_flow_run(client: MlflowClient, experiment: str, flow_run_id: str) -> str | None:
    """Return the id of the parent run tagged with a Prefect flow-run id, if any."""
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs([found.experiment_id], filter_string=f"tags.`{FLOW_RUN_ID_TAG}` = '{flow_run_id}'", max_results=1)
    return runs[0].info.run_id if runs else None


def close_flow_run(tracking_uri: str, experiment: str, flow_run_id: str, status: str) -> str | None:
    """Terminate the parent run tagged with ``flow_run_id`` (called from flow state hooks); return its id."""
    client = connect(tracking_uri)  # fails fast: MlflowClient alone retries a dead server for minutes
    run_id = find_flow_run(client, experiment, flow_run_id)
    if run_id is not None:
        client.set_terminated(run_id, status=status)
    return run_id
