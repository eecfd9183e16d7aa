"""The training flow: tokenize → pack → pretrain over one data stage of a run folder, each stage a tracked child run.

Only ``pack`` is a document stage with a ledger (``stats.json``: every document of the data stage is packed
or rejected). ``tokenize`` makes a tokenizer and ``pretrain`` a model: they log their figures to their MLflow
child runs and keep their own records (``tokenize/liandan_tokenizer.json``, ``pretrain/summary.json``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from flows.recipe import RunConfig
from flows.runs import TRACKING_HOOKS, RunContext, open_run, run_shard_stage, stage_inputs
from tasks.store import StageDir, atomic_write_json, config_digest
from tasks.tokenize.config import PackConfig, TokenizerConfig
from tasks.tokenize.stage import PACK, TOKENIZE, tokenizer_digest
from tasks.tokenize.task import encode_shard, train_tokenizer_task
from tasks.tracking import Tracker, flatten_params, resolve_tracking_uri, stats_metrics
from tasks.train.config import ModelConfig, PretrainConfig, PretrainJob
from tasks.train.task import pretrain_model

PRETRAIN = "pretrain"
CANDIDATE_ALIAS = "candidate"
DONE_FILE = "done.json"


def _flow_run_name() -> str:
    run = RunConfig.model_validate(flow_run.parameters.get("run") or {})
    return f"train-{run.resolved_name('train')}"


@contextmanager
def tracked_stage(ctx: RunContext, child: str) -> Iterator[None]:
    """End the stage's child run FINISHED, or FAILED when the stage raises."""
    try:
        yield
    except BaseException:
        ctx.tracker.end(child, "FAILED")
        raise
    ctx.tracker.end(child, "FINISHED")


def compression_metrics(report: dict[str, dict]) -> dict[str, float]:
    """Return a compression report as MLflow metrics: chars and Han chars per token, per source and in all."""
    return {f"{ratio}.{source}": float(row[ratio]) for source, row in report.items() for ratio in ("chars_per_token", "han_chars_per_token")}


def tokenize_stage(ctx: RunContext, cfg: TokenizerConfig, upstream: StageDir, base_model: str) -> StageDir:
    """Train the tokenizer on the upstream stage (or take the base model's); log it and its compression; return its folder."""
    out = ctx.store.stage(TOKENIZE)
    child = ctx.tracker.start_stage(TOKENIZE, cfg)
    with tracked_stage(ctx, child):
        ctx.tracker.log_inputs(child, stage_inputs(ctx, upstream))
        result = train_tokenizer_task(shards=[str(p) for p in upstream.shards()], out_dir=str(out.root), cfg=cfg, base_model=base_model)
        ctx.tracker.log_metrics(child, stats_metrics(result["stats"]) | compression_metrics(result["compression"]))
        ctx.tracker.client.log_artifacts(child, str(out.root), "tokenizer")
        rows = "\n".join(
            f"| {s} | {r['docs']} | {r['chars_per_token']:.3f} | {r['han_chars_per_token']:.3f} |" for s, r in result["compression"].items()
        )
        create_markdown_artifact(
            key="tokenize-compression",
            description=f"Tokenizer compression of run {ctx.name}",
            markdown=f"**tokenize** of run `{ctx.name}`: vocabulary {result['stats']['counters']['vocab_size']}.\n\n"
            f"| source | docs | chars/token | Han chars/token |\n|---|---|---|---|\n{rows}\n\n[MLflow stage run]({ctx.tracker.run_url(child)})",
        )
    return out


def pack_stage(ctx: RunContext, cfg: PackConfig, upstream: StageDir, tokenizer: StageDir) -> StageDir:
    """Encode and pack every upstream shard (one ``encode_shard`` task each); publish tokens per source and waste."""
    out = run_shard_stage(ctx, PACK, encode_shard, cfg, upstream, tokenizer_dir=str(tokenizer.root))
    stats = out.read_stats() or {}
    slots = stats.get("counters", {}).get("sequences", 0) * cfg.seq_len
    waste = 100.0 * stats.get("counters", {}).get("pad_tokens", 0) / slots if slots else 0.0
    ctx.tracker.log_metrics(stats["mlflow_run_id"], {"packing_waste_pct": waste})
    return out


def register_model(tracker: Tracker, run_id: str, artifact_path: str, name: str) -> str:
    """Register the run's ``artifact_path`` as a new version of ``name`` with the alias ``candidate``; return the version."""
    from mlflow.exceptions import MlflowException

    try:
        tracker.client.create_registered_model(name, description="Base models pretrained by liandan's train_base_model flow.")
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = tracker.client.create_model_version(name, source=f"runs:/{run_id}/{artifact_path}", run_id=run_id)
    tracker.client.set_registered_model_alias(name, CANDIDATE_ALIAS, version.version)
    return str(version.version)


def summary_metrics(summary: dict) -> dict[str, float]:
    """Return the pretraining summary's figures as MLflow metrics (the curve itself comes from the Trainer)."""
    metrics = {f"final.eval_{s}_ppl": e["ppl"] for s, e in summary["eval"].items()}
    for key in ("first_loss", "last_loss", "tokens_per_s", "train_seconds", "parameters", "train_sequences"):
        if summary.get(key) is not None:
            metrics[f"final.{key}"] = float(summary[key])
    return metrics


def pretrain_stage(ctx: RunContext, model: ModelConfig, cfg: PretrainConfig, packed: StageDir, tokenizer: StageDir) -> dict:
    """Pretrain on the packed shards into the stage's child run (loss curve, perplexity), log and register the model.

    A finished stage (``done.json`` for the same job and inputs) is not retrained on a rerun; an
    unfinished one resumes from its newest checkpoint.
    """
    out = ctx.store.stage(PRETRAIN)
    job = PretrainJob(data_dir=str(packed.root), tokenizer_dir=str(tokenizer.root), output_dir=str(out.root), model=model, pretrain=cfg)
    digest = f"{config_digest(job)}:{(packed.read_stats() or {}).get('output_digest', '')}:{tokenizer_digest(tokenizer.root)}"
    child = ctx.tracker.start_stage(PRETRAIN, None)
    with tracked_stage(ctx, child):
        # Prefixed: HF's MLflowCallback logs TrainingArguments and the model config unprefixed into this
        # same run, and MLflow refuses a param logged twice with different values.
        ctx.tracker.log_params(child, {f"model.{k}": v for k, v in flatten_params(model).items()} | {f"pretrain.{k}": v for k, v in flatten_params(cfg).items()})
        ctx.tracker.log_inputs(child, stage_inputs(ctx, packed))
        done_path = out.root / DONE_FILE
        done = json.loads(done_path.read_text(encoding="utf-8")) if done_path.exists() else {}
        skipped = done.get("digest") == digest
        if skipped:
            summary, version = done["summary"], done["model_version"]
        else:
            uri = resolve_tracking_uri(ctx.config.tracking_uri, ctx.config.runs_dir)
            summary = pretrain_model(job, tracking_uri=uri, run_id=child)
            ctx.tracker.client.log_artifacts(child, summary["model_dir"], "model")
            version = register_model(ctx.tracker, child, "model", cfg.registered_model) if cfg.registered_model else ""
            atomic_write_json(done_path, {"digest": digest, "summary": summary, "model_version": version, "mlflow_run_id": child})
        ctx.tracker.log_metrics(child, summary_metrics(summary) | {"stage_skipped": float(skipped)}, step=summary["steps"])
        _summarize(ctx, child, summary, cfg.registered_model, version)
    return {**summary, "model_version": version}


def _summarize(ctx: RunContext, child: str, summary: dict, name: str, version: str) -> None:
    ppl = ", ".join(f"{s} {e['ppl']:.1f}" for s, e in summary["eval"].items()) or "no held-out split"
    registered = f"`{name}` version {version} (alias `{CANDIDATE_ALIAS}`)" if version else "not registered"
    create_markdown_artifact(
        key="pretrain-summary",
        description=f"Pretraining of run {ctx.name}",
        markdown=(
            f"**pretrain** of run `{ctx.name}`: {summary['parameters']:,} parameters, {summary['steps']} steps on "
            f"{summary['world_size']} process(es), loss {summary['first_loss']:.3f} → {summary['last_loss']:.3f}, "
            f"{summary['tokens_per_s']:.0f} tokens/s. Held-out perplexity: {ppl}. Model: {registered}. "
            f"[MLflow stage run]({ctx.tracker.run_url(child)})"
        ),
    )
    get_run_logger().info("pretrain: loss %.3f → %.3f; model %s", summary["first_loss"], summary["last_loss"], summary["model_dir"])


@flow(name="train_base_model", flow_run_name=_flow_run_name, **TRACKING_HOOKS)
def train_base_model(
    run: RunConfig = RunConfig(),
    tokenizer: TokenizerConfig = TokenizerConfig(),
    pack: PackConfig = PackConfig(),
    model: ModelConfig = ModelConfig(),
    pretrain: PretrainConfig = PretrainConfig(),
    data_stage: str = "extract",
) -> str:
    """Train a tokenizer on a data stage of the run, pack the corpus, pretrain the base model; return the model folder."""
    ctx = open_run(run, "train")
    upstream = ctx.store.stage(data_stage)
    if not upstream.shards():
        raise ValueError(f"no finished shards in {upstream.root}: run the data flow into this run folder first (same run.name)")
    tok = tokenize_stage(ctx, tokenizer, upstream, model.base_model)
    packed = pack_stage(ctx, pack, upstream, tok)
    return pretrain_stage(ctx, model, pretrain, packed, tok)["model_dir"]
