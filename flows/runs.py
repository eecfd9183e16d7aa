"""What every flow does around its stages: open the run folder and the MLflow parent run, run a stage
over shards with one Prefect task per shard, publish its stats, and close the parent from state hooks.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from prefect import get_run_logger, unmapped
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.runtime import deployment, flow_run
from pydantic import BaseModel

from flows.recipe import RunConfig
from tasks.results import TrainResult
from tasks.steps import ShardStats
from tasks.store import RunStore, StageDir, clear_done, config_digest, read_done, write_done
from tasks.tracking import (
    FLOW_RUN_ID_TAG,
    StageInput,
    Tracker,
    close_flow_run,
    connect,
    find_flow_run,
    register_model,
    resolve_tracking_uri,
)


@dataclass
class RunContext:
    """The open run of one flow: its folder, its MLflow parent run and its settings."""

    store: RunStore
    tracker: Tracker
    config: RunConfig
    name: str


def open_run(run: RunConfig, flow: str) -> RunContext:
    """Create (or reopen, to resume) the run folder and start this flow run's MLflow parent run."""
    name = run.resolved_name(flow)
    store = RunStore.open(run.runs_dir, name)
    uri = resolve_tracking_uri(run.tracking_uri, run.runs_dir)
    flow_run_id = str(flow_run.id or "")
    tags = {
        FLOW_RUN_ID_TAG: flow_run_id,
        "prefect.flow_run_name": str(flow_run.name or ""),
        "prefect.flow_name": str(flow_run.flow_name or flow),
        "prefect.deployment": str(deployment.name or ""),
        "prefect.deployment_id": str(deployment.id or ""),
        "prefect.ui_url": str(flow_run.ui_url or ""),
        "liandan.run_dir": str(store.root),
        "liandan.flow": flow,
    }
    parent_flow_run = flow_run.parent_flow_run_id
    nest_under = find_flow_run(connect(uri), run.experiment, str(parent_flow_run)) if parent_flow_run else None
    tracker = Tracker.start_flow(
        uri,
        run.experiment,
        run_name=parent_run_name(flow, name, str(deployment.name or "")),
        artifact_root=Path(run.runs_dir).resolve() / "mlartifacts" if uri.startswith("sqlite") else None,
        tags=tags,
        ui_url=run.mlflow_ui_url,
        nest_under=nest_under,
    )
    get_run_logger().info("MLflow run %s: %s", tracker.parent_run_id, tracker.run_url())
    create_link_artifact(
        link=tracker.run_url(),
        link_text=f"MLflow run of {name}",
        key=f"mlflow-{flow}".replace("_", "-"),
        description=f"Parent MLflow run of this {flow} flow run: one child run per stage.",
    )
    return RunContext(store=store, tracker=tracker, config=run, name=name)


def flow_run_namer(flow: str) -> Callable[[], str]:
    """Return a Prefect ``flow_run_name`` callable: ``<flow>-<run name>``, the run name read from the flow run's ``run`` parameter."""

    def name() -> str:
        run = RunConfig.model_validate(flow_run.parameters.get("run") or {})
        return f"{flow}-{run.resolved_name(flow)}"

    return name


def parent_run_name(flow: str, name: str, deployment_name: str = "") -> str:
    """Return the name of a flow run's MLflow parent run: the run name (led by the flow's name), then the deployment's.

    >>> parent_run_name("data", "data-2026-11-29", "nightly"), parent_run_name("train", "demo")
    ('data-2026-11-29-nightly', 'train-demo')
    """
    run_name = name if name.startswith(flow) else f"{flow}-{name}"
    return f"{run_name}-{deployment_name}" if deployment_name else run_name


def _close_tracking(status: str) -> Callable:
    def hook(flow, flow_run, state) -> None:  # noqa: ARG001 — Prefect's hook signature
        params = flow_run.parameters or {}
        run = RunConfig.model_validate(params.get("run") or {})
        close_flow_run(resolve_tracking_uri(run.tracking_uri, run.runs_dir), run.experiment, str(flow_run.id), status)

    hook.__name__ = f"close_mlflow_run_{status.lower()}"
    return hook


finish_tracking = _close_tracking("FINISHED")
fail_tracking = _close_tracking("FAILED")
TRACKING_HOOKS = {
    "on_completion": [finish_tracking],
    "on_failure": [fail_tracking],
    "on_crashed": [fail_tracking],
    "on_cancellation": [fail_tracking],
}


@dataclass(frozen=True)
class StageRecord:
    """A document stage's ledger as ``stats.json`` holds it: its summed stats, what it read and made, and its MLflow run."""

    stage: str
    stats: ShardStats
    upstream: str | None = None  # the stage it read (None for the crawl)
    config_digest: str = ""
    shards: list[str] = field(default_factory=list)  # the kept shards' names
    output_digest: str = ""  # over the kept shards' names and sizes: the next stage's MLflow dataset digest
    mlflow_run_id: str = ""  # the stage's child run

    def to_dict(self) -> dict:
        """Return the record as ``stats.json`` stores it (``balanced`` derived from the stats)."""
        return {
            "stage": self.stage,
            "upstream": self.upstream,
            **self.stats.to_dict(),
            "balanced": self.stats.balanced(),
            "config_digest": self.config_digest,
            "shards": list(self.shards),
            "output_digest": self.output_digest,
            "mlflow_run_id": self.mlflow_run_id,
        }

    @classmethod
    def from_dict(cls, d: dict) -> StageRecord:
        """Return the record a ``stats.json`` holds; fields it lacks (a hand-written upstream's) keep their defaults."""
        fields = {k: d[k] for k in ("upstream", "config_digest", "shards", "output_digest", "mlflow_run_id") if k in d}
        return cls(stage=d.get("stage", ""), stats=ShardStats.from_dict(d), **fields)

    @classmethod
    def read(cls, stage_dir: StageDir) -> StageRecord | None:
        """Return the stage's published record, or None before it is published."""
        record = stage_dir.read_stats()
        return cls.from_dict(record) if record is not None else None


def published(stage_dir: StageDir) -> StageRecord:
    """Return the record of a stage this flow has just published; raise if it has none."""
    record = StageRecord.read(stage_dir)
    if record is None:
        raise FileNotFoundError(f"{stage_dir.stats_path} is missing: the stage was not published")
    return record


def stage_inputs(ctx: RunContext, upstream: StageDir) -> list[StageInput]:
    """Return the upstream stage's output as an MLflow dataset input (digest over its shard markers)."""
    record = StageRecord.read(upstream)
    return [
        StageInput(
            name=f"{ctx.name}/{upstream.root.name}",
            path=str(upstream.root),
            digest=record.output_digest if record else "",
            n_docs=record.stats.docs_kept if record else 0,
        )
    ]


def publish_stage(
    ctx: RunContext, stage: str, child_run_id: str, stats: ShardStats, cfg: BaseModel | None, shards: list[Path], upstream: str | None
) -> StageRecord:
    """Write the stage's stats.json, log it to the stage's MLflow run and summarize it as a Prefect artifact."""
    stage_dir = ctx.store.stage(stage)
    digest = hashlib.sha256("".join(sorted(p.name + str(p.stat().st_size) for p in shards)).encode()).hexdigest()
    record = StageRecord(
        stage=stage,
        stats=stats,
        upstream=upstream,
        config_digest=config_digest(cfg),
        shards=[p.name for p in shards],
        output_digest=digest,
        mlflow_run_id=child_run_id,
    )
    stage_dir.write_stats(record.to_dict())
    ctx.tracker.log_stage_stats(child_run_id, record.to_dict())
    rows = [{"metric": "docs in", "value": stats.docs_in}, {"metric": "docs kept", "value": stats.docs_kept}]
    rows += [{"metric": f"rejected: {r}", "value": n} for r, n in sorted(stats.rejected_by_reason.items())]
    rows += [{"metric": f"{k}", "value": v} for k, v in sorted(stats.counters.items())]
    rows.append({"metric": "seconds", "value": round(stats.seconds, 3)})
    create_table_artifact(
        table=rows,
        key=f"{stage}-stats".replace("_", "-"),
        description=f"**{stage}** of run `{ctx.name}`: kept {stats.docs_kept} of {stats.docs_in}. "
        f"[MLflow stage run]({ctx.tracker.run_url(child_run_id)})",
    )
    if not stats.balanced():
        raise RuntimeError(f"stage {stage}: kept + rejected != input ({stats.to_dict()})")
    return record


def run_shard_stage(
    ctx: RunContext,
    stage: str,
    shard_task,
    cfg: BaseModel,
    upstream: StageDir,
    prepare: Callable[[StageDir, list[Path]], dict[str, int]] | None = None,
    **task_args: str,
) -> StageDir:
    """Run ``shard_task`` once per upstream shard (Prefect ``.map``), then publish the stage; return its folder.

    Args:
        prepare: work over all shards before the per-shard map (de-duplication's sign-and-cluster
            phases), run inside the stage's MLflow run; the counts it returns join the stage's counters.
        task_args: further arguments passed unchanged to every shard task (e.g. the WARC folder).
    """
    out = ctx.store.stage(stage)
    child = ctx.tracker.start_stage(stage, cfg)
    try:
        started = time.perf_counter()
        ctx.tracker.log_inputs(child, stage_inputs(ctx, upstream))
        shards = upstream.shards()
        out.prune({p.name for p in shards})
        prepared = prepare(out, shards) if prepare is not None else {}
        extra = {k: unmapped(v) for k, v in task_args.items()}
        futures = shard_task.map(in_path=[str(p) for p in shards], out_dir=unmapped(str(out.root)), cfg=unmapped(cfg), **extra)
        total = ShardStats(counters=dict(prepared))
        for future in futures:
            total = total.add(future.result())
        total.counters["wall_ms"] = int((time.perf_counter() - started) * 1000)
        publish_stage(ctx, stage, child, total, cfg, out.shards(), upstream.root.name)
    except BaseException:
        ctx.tracker.end(child, "FAILED")
        raise
    ctx.tracker.end(child, "FINISHED")
    return out


@contextmanager
def tracked_stage(ctx: RunContext, child: str) -> Iterator[None]:
    """End the stage's child run FINISHED, or FAILED when the stage raises."""
    try:
        yield
    except BaseException:
        ctx.tracker.end(child, "FAILED")
        raise
    ctx.tracker.end(child, "FINISHED")


def final_metrics(summary: dict) -> dict[str, float]:
    """Return a training summary's top-level numbers as ``final.<key>`` metrics (curves come from the trainer)."""
    return {f"final.{k}": float(v) for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


@dataclass
class ModelStage:
    """A stage that makes a model: what its MLflow child run is called and logs, and when it can be skipped."""

    stage: str  # folder under the run and the child run's liandan.stage tag
    run_name: str  # the child run's name, saying what ran (sft-lora-r16)
    params: dict[str, str]  # logged once on the child run; prefix them so they never clash with the trainer's own
    digest: str  # of the job and its inputs: a finished stage with the same digest is not retrained
    registered_model: str  # registry name of the result ("" logs the model without registering it)
    description: str  # the registered model's description
    upstream: StageDir | None = None  # logged as the stage's input dataset
    metrics: Callable[[dict], dict[str, float]] = field(default=final_metrics)


@dataclass(frozen=True)
class ModelResult:
    """A model stage as its flow sees it: the model (trained now or reused), its registered version and its child run."""

    model_dir: str
    summary: dict  # the trainer's summary (summary.json), as the stage's done-record keeps it
    model_version: str  # the registry version ("" when the stage registers nothing)
    mlflow_run_id: str  # the stage's child run
    skipped: bool  # finished by an earlier run with the same digest: reused, not retrained


def run_model_stage(ctx: RunContext, spec: ModelStage, train: Callable[[str, str], TrainResult]) -> ModelResult:
    """Run ``train(tracking_uri, child_run_id)`` in the stage's child run, log and register its model; return the result.

    A finished stage (its done-record with the same digest) is not retrained on a rerun: its summary and
    registered version are reused, and ``stage_skipped`` is 1.
    """
    out = ctx.store.stage(spec.stage)
    child = ctx.tracker.start_stage(spec.stage, None, run_name=spec.run_name)
    with tracked_stage(ctx, child):
        ctx.tracker.log_params(child, spec.params)
        if spec.upstream is not None:
            ctx.tracker.log_inputs(child, stage_inputs(ctx, spec.upstream))
        done = read_done(out.root, spec.digest)
        skipped = done is not None
        if skipped:
            trained, version = TrainResult.from_summary(done["summary"]), done["model_version"]
        else:
            clear_done(out.root)
            trained = train(resolve_tracking_uri(ctx.config.tracking_uri, ctx.config.runs_dir), child)
            ctx.tracker.client.log_artifacts(child, trained.model_dir, "model")
            version = register_model(ctx.tracker.client, child, "model", spec.registered_model, spec.description) if spec.registered_model else ""
            write_done(out.root, spec.digest, {"summary": trained.summary, "model_version": version, "mlflow_run_id": child})
        ctx.tracker.log_metrics(child, spec.metrics(trained.summary) | {"stage_skipped": float(skipped)}, step=trained.steps)
    return ModelResult(model_dir=trained.model_dir, summary=trained.summary, model_version=version, mlflow_run_id=child, skipped=skipped)
