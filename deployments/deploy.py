"""liandan's deployments: the nightly data flow, the weekly training flow (also started by every finished
nightly data run, on that run's folder) and the whole pipeline on demand, on two local process work pools.

    make deploy                                   # the demo recipe, against http://127.0.0.1:4200/api
    PREFECT_API_URL=http://host:4200/api .venv/bin/python -m deployments.deploy --recipe recipes/demo.yaml

Default parameters are the recipe's sections that each flow takes, read from the stage table
(flows/stages.py), so a stage added there reaches every deployment whose flow takes its section. Each
deployment runs one flow run at a time; the training pool runs one flow run at a time in all, so two
training stages never hold the accelerator at once, whichever deployment started them.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.exceptions import ObjectAlreadyExists
from prefect.schedules import Cron
from prefect.workers.process import ProcessWorker

from flows.cli import PRIVACY_DEFAULTS
from flows.recipe import Recipe, load_recipe
from flows.stages import ALIGN_STAGES, STAGES

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RECIPE = ROOT / "recipes" / "demo.yaml"

DATA_POOL = "liandan-process"  # data stages are CPU work: runs of different deployments may share the machine
TRAIN_POOL = "liandan-gpu"  # pool concurrency 1: one training flow run at a time across all its deployments and workers
POOL_LIMITS = {DATA_POOL: None, TRAIN_POOL: 1}

# The flow the weekly training deployment (and the data-completed trigger) runs; change it here alone.
TRAIN_ENTRYPOINT = "flows/pipeline.py:train_model"

# build_corpus names its flow runs "data-<resolved run name>" (flows/data.py); the trigger takes the resolved
# name from there, so an empty run.name (a dated folder) reaches the training run as the folder the data run wrote.
DATA_RUN_PREFIX = "data-"
RUN_OF_DATA_RUN = f"{{{{ dict(flow_run.parameters.run, name=flow_run.name.removeprefix('{DATA_RUN_PREFIX}')) }}}}"


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment: which flow, on which pool, when, and the parameters that do not come from the recipe."""

    name: str  # the deployment's name; Prefect shows it as <flow name>/<name>
    entrypoint: str  # <file relative to the project root>:<flow function>
    pool: str
    description: str
    cron: str | None = None  # None: runs only when triggered (UI, API, automation)
    recipe_overrides: tuple[str, ...] = ()  # section.key=value applied to the recipe for this deployment only
    fixed: dict[str, str | bool | list[str]] = field(default_factory=dict)  # flow parameters that are not recipe sections
    tags: tuple[str, ...] = ()


DATA = DeploymentSpec(
    name="nightly",
    entrypoint="flows/data.py:build_corpus",
    pool=DATA_POOL,
    cron="0 2 * * *",
    # An empty name dates each night's folder (runs/data-YYYY-MM-DD): nights never overwrite each other.
    recipe_overrides=("run.name=''",),
    description="Nightly corpus build: crawl → extract → OCR → clean → dedup → de-identify → quality → mixture into runs/data-<date>/.",
    tags=("liandan", "data"),
)
TRAIN = DeploymentSpec(
    name="weekly",
    entrypoint=TRAIN_ENTRYPOINT,
    pool=TRAIN_POOL,
    cron="0 4 * * 6",
    fixed={"data_stage": "mixture", "allow_undeidentified": False, "align_stages": list(ALIGN_STAGES)},
    description="Weekly training on the recipe's run folder (base model on the mixture, then SFT → distil → DPO → GRPO); also runs on each finished nightly data run's folder.",
    tags=("liandan", "train", "gpu"),
)
PIPELINE = DeploymentSpec(
    name="full",
    entrypoint="flows/pipeline.py:run_pipeline",
    fixed={"align_stages": list(ALIGN_STAGES)},
    pool=TRAIN_POOL,  # it trains too, so it waits for the training pool like the training deployment
    description="The whole chain in one flow run: data, the base model on its mixture, alignment.",
    tags=("liandan", "pipeline", "gpu"),
)
SPECS = (DATA, TRAIN, PIPELINE)


def load_flow(spec: DeploymentSpec, root: Path = ROOT) -> Flow:
    """Return the spec's flow loaded from the project folder, so its runs start there (pull step: set the working directory)."""
    return Flow.from_source(source=str(root), entrypoint=spec.entrypoint)


def flow_parameters(flow: Flow, recipe: Recipe, fixed: dict[str, str | bool | list[str]]) -> dict:
    """Return the run and the stage table's sections that the flow takes, as JSON, plus the fixed parameters (which it must take)."""
    accepted = inspect.signature(flow.fn).parameters  # made from the stage table (flows.recipe.flow_parameters)
    unknown = sorted(set(fixed) - set(accepted))
    if unknown:
        raise ValueError(f"flow {flow.name} takes no parameter {unknown}: fix the deployment's fixed parameters")
    sections = {"run": recipe.run} | {s.name: getattr(recipe, s.name) for s in STAGES if s.name in accepted}
    return {name: cfg.model_dump(mode="json") for name, cfg in sections.items()} | fixed


def job_variables(root: Path) -> dict:
    """Return the process worker's settings for every flow run: telemetry off, started in the project folder."""
    return {"env": dict(PRIVACY_DEFAULTS), "working_dir": str(root)}


def train_after_data(data_flow: str, data: DeploymentSpec = DATA) -> DeploymentEventTrigger:
    """Return the trigger that runs a deployment on the run folder of each completed run of the data deployment.

    It matches the data deployment by name and flow, so the pipeline's own build_corpus subflow (which has no
    deployment) never triggers a second training.
    """
    return DeploymentEventTrigger(
        name=f"train-after-{data.name}-data",
        description=f"Train on the run folder of each completed {data_flow}/{data.name} flow run.",
        expect={"prefect.flow-run.Completed"},
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related=[
            {"prefect.resource.role": "deployment", "prefect.resource.name": data.name},
            {"prefect.resource.role": "flow", "prefect.resource.name": data_flow},
        ],
        parameters={"run": RUN_OF_DATA_RUN},
    )


def build_deployments(recipe_path: str | Path = DEFAULT_RECIPE, overrides: list[str] | None = None, timezone: str = "UTC", root: Path = ROOT) -> list[RunnerDeployment]:
    """Return the data, training and pipeline deployments with the recipe's defaults (nothing is sent to Prefect)."""
    flows = {spec.name: load_flow(spec, root) for spec in SPECS}
    deployments = []
    for spec in SPECS:
        flow = flows[spec.name]
        recipe = load_recipe(recipe_path, [*spec.recipe_overrides, *(overrides or [])])  # the user's --set wins
        deployments.append(
            flow.to_deployment(
                name=spec.name,
                description=spec.description,
                parameters=flow_parameters(flow, recipe, spec.fixed),
                schedules=[Cron(spec.cron, timezone=timezone)] if spec.cron else None,
                concurrency_limit=1,
                triggers=[train_after_data(flows[DATA.name].name)] if spec is TRAIN else None,
                tags=list(spec.tags),
                work_pool_name=spec.pool,
                job_variables=job_variables(root),
            )
        )
    return deployments


def ensure_pools(limits: dict[str, int | None] = POOL_LIMITS) -> None:
    """Create the process work pools that do not exist yet, and set every pool's concurrency limit."""
    with get_client(sync_client=True) as client:
        for name, limit in limits.items():
            try:
                client.create_work_pool(
                    WorkPoolCreate(name=name, type="process", base_job_template=ProcessWorker.get_default_base_job_template(), concurrency_limit=limit)
                )
            except ObjectAlreadyExists:
                # A worker started first creates its pool without a limit; the limit is ours to set.
                client.update_work_pool(name, WorkPoolUpdate(concurrency_limit=limit))


def apply(deployments: list[RunnerDeployment]) -> dict[str, UUID]:
    """Create or update the work pools and deployments at PREFECT_API_URL; return each deployment's id by full name."""
    ensure_pools()
    return {f"{d.flow_name}/{d.name}": d.apply(work_pool_name=d.work_pool_name) for d in deployments}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default=str(DEFAULT_RECIPE), help="recipe YAML whose sections become the default parameters")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override one recipe setting; repeatable")
    parser.add_argument("--timezone", default="UTC", help="IANA time zone of the cron schedules, e.g. Asia/Shanghai")
    parser.add_argument("--pools-only", action="store_true", help="only create the work pools (make ui, before its workers start)")
    args = parser.parse_args(argv)
    if args.pools_only:
        ensure_pools()
        print(f"work pools: {', '.join(POOL_LIMITS)}")
        return 0
    ids = apply(build_deployments(args.recipe, args.set, args.timezone))
    for full_name, deployment_id in ids.items():
        print(f"{full_name}  {deployment_id}")
    print(f"workers: prefect worker start --pool {DATA_POOL}  and  prefect worker start --pool {TRAIN_POOL}  (make ui starts both)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
