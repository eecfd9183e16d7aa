"""Evaluation in the flows: an ``evaluate-<stage>`` child run per model, the stage comparison on the parent run,
and the gate that moves ``liandan-chat@champion``.

The metrics come from ``tasks.evaluate.stage.evaluate_model``; this module logs them, skips a model already
evaluated on the same sets (a done-record keyed by the model's files, the config and the sets), and talks to
the registry. A version that does not pass the gate stays ``candidate`` and carries the reason as the tags
``gate.decision`` / ``gate.reason`` (on the version and on the evaluate run) and a log line.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from prefect import get_run_logger, task
from prefect.exceptions import MissingContextError
from prefect.artifacts import create_table_artifact

from flows.runs import ModelResult, RunContext, tracked_stage
from tasks.evaluate.arith import held_out_problems
from tasks.evaluate.config import EvalConfig, measured_settings
from tasks.evaluate.gate import GateDecision, gate_decision
from tasks.evaluate.stage import EvalResult, evaluate_model
from tasks.store import read_done, resolve_data_path, stage_digest, write_done
from tasks.tracking import Tracker, flatten_params
from tasks.tokenize.stage import packed_sequence_shards, shards_digest, tokenizer_digest
from tasks.train.resume import path_digest

if TYPE_CHECKING:
    from flows.recipe import Recipe
    from tasks.train.dpo import DPOConfig
    from tasks.train.grpo import GRPOConfig
    from tasks.train.sft import SFTConfig

EVALUATE = "evaluate"
CANDIDATE_ALIAS = "candidate"
CHART_GROUPS = (("ppl.", "perplexity (lower is better)"), ("arith.", "arithmetic accuracy"), ("icl.", "in-context sentiment"), ("mc.", "multiple choice"), ("gen.", "answer format"))


@task(name="evaluate_model")
def evaluate_model_task(model_dir: str, cfg: EvalConfig, pack_dir: str = "", pack_tokenizer_dir: str = "", seen_questions: frozenset[str] = frozenset()) -> EvalResult:
    """Return every metric of the model in ``model_dir`` (``tasks.evaluate.stage.evaluate_model``)."""
    return evaluate_model(model_dir, cfg, pack_dir, pack_tokenizer_dir, seen_questions)


def seen_questions(stages: Iterable[str], sft: SFTConfig, dpo: DPOConfig, grpo: GRPOConfig) -> frozenset[str]:
    """Return every question the chosen stages train on (SFT's and distillation's conversations, DPO's and GRPO's problems):
    the evaluation drops them from its held-out problems."""
    from tasks.evaluate.arith import training_questions

    from tasks.train.dpo import load_pairs

    stages = set(stages)
    paths = [str(resolve_data_path(p)) for p in sft.data_paths] if {"sft", "distill"} & stages else []
    problems = ([(dpo.num_prompts, dpo.problem_seed, "all")] if "dpo" in stages else []) + (
        [(grpo.num_problems, grpo.problem_seed, grpo.problem_level)] if "grpo" in stages else []
    )
    seen = training_questions(paths, problems)
    if "dpo" in stages and dpo.pairs_source in ("file", "both"):
        for pair in load_pairs(dpo.pairs_path):
            prompt = pair["prompt"]
            seen |= {prompt} if isinstance(prompt, str) else {m["content"] for m in prompt if m.get("role") == "user"}
    return frozenset(seen)


def evaluation_digest(cfg: EvalConfig, model_dir: str, pack_dir: str = "", pack_tokenizer_dir: str = "", seen_questions: frozenset[str] = frozenset()) -> str:
    """Return the digest an evaluation's done-record is keyed by: the model's files, the settings that change a metric,
    the pack stage and its tokenizer, and the held-out problems left after dropping the ones a training stage sees."""
    problems, _ = held_out_problems(cfg, set(seen_questions))
    kept = hashlib.sha256("\n".join(p.question for p in problems).encode("utf-8")).hexdigest()[:16]
    pack = [shards_digest(packed_sequence_shards(pack_dir)), tokenizer_digest(pack_tokenizer_dir)] if pack_dir and pack_tokenizer_dir else []
    return stage_digest(measured_settings(cfg), [path_digest(model_dir), *pack, kept])


def evaluate_stage(
    ctx: RunContext, cfg: EvalConfig, stage: str, model_dir: str, pack_dir: str = "", pack_tokenizer_dir: str = "", seen_questions: frozenset[str] = frozenset()
) -> tuple[EvalResult, str]:
    """Evaluate the model ``stage`` made in its ``evaluate-<stage>`` child run; return the result and the run's id.

    A model evaluated before with the same files, config and sets is not evaluated again (``stage_skipped`` 1).
    """
    digest = evaluation_digest(cfg, model_dir, pack_dir, pack_tokenizer_dir, seen_questions)
    folder = ctx.store.stage(EVALUATE).root / stage
    child = ctx.tracker.start_stage(EVALUATE, cfg, run_name=f"evaluate-{stage}")
    with tracked_stage(ctx, child):
        ctx.tracker.client.set_tag(child, "liandan.evaluated_stage", stage)
        ctx.tracker.log_params(child, {"evaluate.model_dir": model_dir})
        done = read_done(folder, digest)
        result = EvalResult.from_dict(done) if done else evaluate_model_task(model_dir, cfg, pack_dir, pack_tokenizer_dir, frozenset(seen_questions))
        if not done:
            write_done(folder, digest, result.to_dict())
        log_evaluation(ctx.tracker, child, result, {"stage_skipped": float(bool(done))})
    logger = _logger()
    logger.info("evaluate-%s: %s", stage, ", ".join(f"{k} {v:.4g}" for k, v in sorted(result.metrics.items())))
    for note in result.notes:
        logger.info("evaluate-%s: %s", stage, note)
    return result, child


def log_evaluation(tracker: Tracker, run_id: str, result: EvalResult, extra: dict[str, float] | None = None) -> None:
    """Log an evaluation into ``run_id``: its metrics, the sets' digest and notes as tags, the answer samples and the whole result."""
    tracker.log_metrics(run_id, result.metrics | {"seconds": result.seconds} | (extra or {}))
    tracker.client.set_tag(run_id, "eval.digest", result.eval_digest)
    if result.notes:
        tracker.client.set_tag(run_id, "eval.notes", "; ".join(result.notes)[:5000])
    if result.samples:
        tracker.client.log_table(run_id, data=_columns(result.samples), artifact_file="eval_samples.json")
    tracker.client.log_dict(run_id, result.to_dict(), "evaluation.json")


def _logger() -> logging.Logger | logging.LoggerAdapter:
    """Return the Prefect run logger inside a flow or task, else this module's logger (the gate also runs from tests and scripts)."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def _columns(rows: list[dict]) -> dict[str, list]:
    return {key: [row.get(key) for row in rows] for key in rows[0]}


def comparison_rows(results: dict[str, EvalResult]) -> list[dict]:
    """Return one row per metric with each stage's value (stages in chain order, as given), for the tables.

    >>> comparison_rows({"base": EvalResult({"ppl.heldout": 900.0}), "sft": EvalResult({"ppl.heldout": 700.0, "arith.cot": 0.1})})
    [{'metric': 'arith.cot', 'base': None, 'sft': 0.1}, {'metric': 'ppl.heldout', 'base': 900.0, 'sft': 700.0}]
    """
    metrics = sorted({m for r in results.values() for m in r.metrics})
    return [{"metric": m, **{stage: r.metrics.get(m) for stage, r in results.items()}} for m in metrics]


def comparison_chart(results: dict[str, EvalResult]):
    """Return a matplotlib Figure: one panel per metric group, one bar per stage for each metric."""
    from matplotlib.figure import Figure  # the object API: no pyplot global state, safe off the main thread

    stages = list(results)
    groups = [(prefix, title, sorted({m for r in results.values() for m in r.metrics if m.startswith(prefix) and not m.endswith((".problems", ".questions"))})) for prefix, title in CHART_GROUPS]
    groups = [g for g in groups if g[2]]
    fig = Figure(figsize=(4.2 * max(len(groups), 1), 3.6))
    width = 0.8 / max(len(stages), 1)
    for i, (_, title, metrics) in enumerate(groups):
        ax = fig.add_subplot(1, len(groups), i + 1)
        for j, stage in enumerate(stages):
            values = [results[stage].metrics.get(m, 0.0) for m in metrics]
            ax.bar([k + j * width for k in range(len(metrics))], values, width, label=stage)
        ax.set_xticks([k + width * (len(stages) - 1) / 2 for k in range(len(metrics))], [m.split(".", 1)[1] for m in metrics], rotation=30, fontsize=7)
        ax.set_title(title, fontsize=9)
        if title.startswith("perplexity"):
            ax.set_yscale("log")
    if groups:
        fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def publish_comparison(ctx: RunContext, results: dict[str, EvalResult]) -> list[dict]:
    """Log the stage comparison (table, markdown, chart) on the flow's parent run and as a Prefect table; return the rows."""
    rows = comparison_rows(results)
    if not rows:
        return rows
    parent = ctx.tracker.parent_run_id
    ctx.tracker.client.log_table(parent, data=_columns(rows), artifact_file="evaluation/comparison.json")
    header = "| metric | " + " | ".join(results) + " |\n|---|" + "---|" * len(results)
    lines = [f"| {r['metric']} | " + " | ".join("—" if r[s] is None else f"{r[s]:.4g}" for s in results) + " |" for r in rows]
    ctx.tracker.client.log_text(parent, "\n".join([header, *lines]) + "\n", "evaluation/comparison.md")
    ctx.tracker.client.log_figure(parent, comparison_chart(results), "evaluation/comparison.png")
    create_table_artifact(
        table=[{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows],
        key="evaluation-comparison",
        description=f"Evaluation of every model stage of run `{ctx.name}` ({' → '.join(results)}). [MLflow run]({ctx.tracker.run_url()})",
    )
    return rows


def champion_metrics(client, cfg: EvalConfig, result: EvalResult, evaluate_champion) -> tuple[str, dict[str, float]] | None:
    """Return the current champion's version and its metrics on the candidate's sets, or None when there is none.

    Metrics stored on the version under the same ``eval.digest`` are reused; otherwise ``evaluate_champion(uri)``
    evaluates the champion again on the candidate's sets.
    """
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(cfg.registered_model, cfg.champion_alias)
    except MlflowException:
        return None
    tags = version.tags or {}
    if tags.get("eval.digest") == result.eval_digest:
        return str(version.version), {k.removeprefix("eval.metric."): float(v) for k, v in tags.items() if k.startswith("eval.metric.")}
    return str(version.version), evaluate_champion(f"models:/{cfg.registered_model}/{version.version}").metrics


def download_model(uri: str, tracking_uri: str, dst: Path) -> Path:
    """Return a local folder holding the model at a registry or run URI (``models:/name@alias``, ``models:/name/3``, ``runs:/id/model``)."""
    import mlflow.artifacts

    from tasks.tracking import connect

    if uri.startswith("models:/"):
        # Resolved here: MLflow's models:/ download asks its default registry (a new ./mlflow.db), not tracking_uri's.
        name, sep, alias = uri.removeprefix("models:/").rstrip("/").partition("@")
        client = connect(tracking_uri)
        version = client.get_model_version_by_alias(name, alias) if sep else client.get_model_version(*name.rsplit("/", 1))
        uri = version.source
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst), tracking_uri=tracking_uri))


def registered_version(client, cfg: EvalConfig, source_run_id: str, eval_digest: str) -> tuple[str, GateDecision] | None:
    """Return the chat-model version already registered from ``source_run_id`` on the same sets, with its gate decision,
    or None: a rerun of a finished chain registers nothing twice."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{cfg.registered_model}' and run_id = '{source_run_id}'")
    except MlflowException:
        return None
    for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
        tags = v.tags or {}
        if tags.get("eval.digest") == eval_digest:
            return str(v.version), GateDecision(tags.get("gate.decision") == "promoted", tuple(tags.get("gate.reason", "").split("; ")))
    return None


def model_source(client, stage: ModelResult, registered_model: str) -> tuple[str, str] | None:
    """Return (source URI, run id) of a model stage's logged model: its registered version's, else its child run's
    ``model`` artifact; None when neither holds it (an unregistered stage skipped on a rerun logs no model)."""
    if registered_model and stage.model_version:
        version = client.get_model_version(registered_model, str(stage.model_version))
        return version.source, version.run_id
    run_id = stage.mlflow_run_id
    return (f"runs:/{run_id}/model", run_id) if client.list_artifacts(run_id, "model") else None


def promote_chat_model(
    ctx: RunContext, cfg: EvalConfig, source: str, source_run_id: str, result: EvalResult, eval_run_id: str, pack_dir: str = "", pack_tokenizer_dir: str = "", seen_questions: frozenset[str] = frozenset()
) -> tuple[str, GateDecision]:
    """Register the final chat model (``source``, a ``runs:/…`` URI) as a new version of ``cfg.registered_model``, alias
    ``candidate``; move ``cfg.champion_alias`` to it only when the gate passes. Return the version and the decision."""
    from mlflow.exceptions import MlflowException

    from tasks.tracking import resolve_tracking_uri

    client = ctx.tracker.client
    tracking_uri = resolve_tracking_uri(ctx.config.tracking_uri, ctx.config.runs_dir)
    existing = registered_version(client, cfg, source_run_id, result.eval_digest)
    if existing is not None:
        _logger().info("gate: %s version %s holds this model and evaluation already (%s)", cfg.registered_model, existing[0], existing[1].summary)
        return existing

    def evaluate_champion(uri: str) -> EvalResult:
        with tempfile.TemporaryDirectory(prefix="liandan-champion-") as tmp:
            return evaluate_model(download_model(uri, tracking_uri, Path(tmp)), cfg, pack_dir, pack_tokenizer_dir, seen_questions)

    champion = champion_metrics(client, cfg, result, evaluate_champion)
    decision = gate_decision(result.metrics, champion[1] if champion else None, list(cfg.gate_metrics), cfg.gate_tolerance)
    try:
        client.create_registered_model(cfg.registered_model, description="The chain's final chat model; alias champion marks the best one the evaluation gate let through.")
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    label = "promoted" if decision.promote else "refused"
    tags = {"eval.digest": result.eval_digest, "gate.decision": label, "gate.reason": decision.summary[:5000], "gate.champion_version": champion[0] if champion else ""}
    tags |= {f"eval.metric.{k}": repr(float(v)) for k, v in result.metrics.items()}
    version = client.create_model_version(cfg.registered_model, source=source, run_id=source_run_id, tags=tags).version
    client.set_registered_model_alias(cfg.registered_model, CANDIDATE_ALIAS, version)
    if decision.promote:
        client.set_registered_model_alias(cfg.registered_model, cfg.champion_alias, version)
    for key in ("gate.decision", "gate.reason"):
        client.set_tag(eval_run_id, key, tags[key])
    client.set_tag(eval_run_id, "gate.version", str(version))
    _logger().info(
        "gate: %s version %s %s (%s)", cfg.registered_model, version, f"is {cfg.champion_alias}" if decision.promote else f"stays {CANDIDATE_ALIAS}", decision.summary
    )
    return str(version), decision


def is_model_uri(ref: str) -> bool:
    """Return whether ``ref`` names a model in MLflow (``models:/name@alias``, ``models:/name/3``, ``runs:/id/model``) rather than a folder."""
    return ref.startswith(("models:/", "runs:/", "mlflow-artifacts:/"))


def evaluate_references(refs: list[str], recipe: Recipe) -> list[tuple[EvalResult, str]]:
    """Evaluate each model (a local HF folder or an MLflow model URI) with the recipe's ``evaluate`` section, each in
    an ``eval-<model>`` MLflow run of the recipe's experiment; return the results and the runs' ids.

    The held-out problems drop what the recipe's alignment stages train on, and the recipe's run folder's pack
    stage gives ``ppl.<source>`` when the model uses its tokenizer, so the metrics (and ``eval.digest``) are those
    of the chain's own ``evaluate-<stage>`` runs: any two models compare.
    """
    from tasks.store import RunStore
    from tasks.tracking import resolve_tracking_uri

    run, cfg = recipe.run, recipe.evaluate
    tracking_uri = resolve_tracking_uri(run.tracking_uri, run.runs_dir)
    store = RunStore.open(run.runs_dir, run.resolved_name("pipeline"))
    pack = store.stage("pack")
    eval_sets = {
        "pack_dir": str(pack.root) if pack.shards() else "",
        "pack_tokenizer_dir": str(store.stage("tokenize").root),
        "seen_questions": seen_questions(("sft", "distill", "dpo", "grpo"), recipe.sft, recipe.dpo, recipe.grpo),
    }
    artifact_root = Path(run.runs_dir).resolve() / "mlartifacts" if tracking_uri.startswith("sqlite") else None
    out = []
    for ref in refs:
        with tempfile.TemporaryDirectory(prefix="liandan-eval-") as tmp:
            local = download_model(ref, tracking_uri, Path(tmp)) if is_model_uri(ref) else Path(ref)
            if not local.is_dir():
                raise FileNotFoundError(f"no model folder {ref!r}: give a saved Hugging Face folder or models:/name@alias")
            name = ref.removeprefix("models:/").rstrip("/").replace("/", "-") if is_model_uri(ref) else local.resolve().name
            tracker = Tracker.start_flow(tracking_uri, run.experiment, f"eval-{name}", artifact_root, {"liandan.flow": "eval", "eval.model": ref}, run.mlflow_ui_url)
            try:
                tracker.log_params(tracker.parent_run_id, {f"evaluate.{k}": v for k, v in flatten_params(cfg).items()})
                result = evaluate_model(local, cfg, **eval_sets)
                log_evaluation(tracker, tracker.parent_run_id, result)
            except BaseException:
                tracker.end(tracker.parent_run_id, "FAILED")
                raise
            tracker.end(tracker.parent_run_id, "FINISHED")
            out.append((result, tracker.run_url()))
    return out


def metrics_table(columns: dict[str, EvalResult]) -> str:
    """Return the metrics of one or more evaluations as a plain-text table, one column per model.

    >>> print(metrics_table({"a": EvalResult({"ppl.heldout": 812.5, "mc.accuracy": 0.3}), "b": EvalResult({"ppl.heldout": 90.25})}))
    metric                  a           b
    mc.accuracy           0.3           —
    ppl.heldout         812.5       90.25
    """
    rows = comparison_rows(columns)
    width = max([len("metric"), *(len(r["metric"]) for r in rows)]) + 2
    cells = [max(12, len(c) + 2) for c in columns]
    lines = ["metric".ljust(width) + "".join(c.rjust(w) for c, w in zip(columns, cells, strict=True))]
    for r in rows:
        lines.append(r["metric"].ljust(width) + "".join(("—" if r[c] is None else f"{r[c]:.4g}").rjust(w) for c, w in zip(columns, cells, strict=True)))
    return "\n".join(lines)
