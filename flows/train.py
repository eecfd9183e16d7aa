"""The training flow: tokenize → pack → pretrain → evaluate over one data stage of a run folder, each stage a tracked child run.

Only ``pack`` is a document stage with a ledger (``stats.json``: every document of the data stage is packed
or rejected). ``tokenize`` makes a tokenizer and ``pretrain`` a model: they log their figures to their MLflow
child runs and keep their own records (``tokenize/liandan_tokenizer.json``, ``pretrain/summary.json``).
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from pydantic import BaseModel

from flows.evaluate import evaluate_stage
from flows.recipe import Recipe, RunConfig, flow_parameters
from flows.runs import TRACKING_HOOKS, ModelResult, ModelStage, RunContext, flow_run_namer, open_run, published, run_model_stage, run_shard_stage, stage_inputs, tracked_stage
from flows.stages import DEID_STAGE, DataStage, deidentified
from tasks.store import StageDir, config_digest
from tasks.tokenize.compression import Compression
from tasks.tokenize.config import PackConfig, TokenizerConfig
from tasks.tokenize.stage import PACK, TOKENIZE, tokenizer_digest
from tasks.tokenize.task import encode_shard, train_tokenizer_task
from tasks.tracking import flatten_params, stats_metrics
from tasks.train.config import ModelConfig, PretrainConfig, PretrainJob
from tasks.train.task import PretrainSummary, pretrain_model

PRETRAIN = "pretrain"
CANDIDATE_ALIAS = "candidate"


def compression_metrics(report: dict[str, Compression]) -> dict[str, float]:
    """Return a compression report as MLflow metrics: chars and Han chars per token, per source and in all."""
    return {f"{ratio}.{source}": float(round(getattr(c, ratio), 4)) for source, c in report.items() for ratio in ("chars_per_token", "han_chars_per_token")}


def tokenize_stage(ctx: RunContext, cfg: TokenizerConfig, upstream: StageDir, base_model: str) -> StageDir:
    """Train the tokenizer on the upstream stage (or take the base model's); log it and its compression; return its folder."""
    out = ctx.store.stage(TOKENIZE)
    child = ctx.tracker.start_stage(TOKENIZE, cfg)
    with tracked_stage(ctx, child):
        ctx.tracker.log_inputs(child, stage_inputs(ctx, upstream))
        result = train_tokenizer_task(shards=[str(p) for p in upstream.shards()], out_dir=str(out.root), cfg=cfg, base_model=base_model)
        ctx.tracker.log_metrics(child, stats_metrics(result.stats.to_dict()) | compression_metrics(result.compression))
        ctx.tracker.client.log_artifacts(child, str(out.root), "tokenizer")
        rows = "\n".join(f"| {s} | {c.docs} | {c.chars_per_token:.3f} | {c.han_chars_per_token:.3f} |" for s, c in result.compression.items())
        create_markdown_artifact(
            key="tokenize-compression",
            description=f"Tokenizer compression of run {ctx.name}",
            markdown=f"**tokenize** of run `{ctx.name}`: vocabulary {result.vocab_size}.\n\n"
            f"| source | docs | chars/token | Han chars/token |\n|---|---|---|---|\n{rows}\n\n[MLflow stage run]({ctx.tracker.run_url(child)})",
        )
    return out


def pack_stage(ctx: RunContext, cfg: PackConfig, upstream: StageDir, tokenizer: StageDir) -> StageDir:
    """Encode and pack every upstream shard (one ``encode_shard`` task each); publish tokens per source and waste."""
    out = run_shard_stage(ctx, PACK, encode_shard, cfg, upstream, tokenizer_dir=str(tokenizer.root))
    record = published(out)
    slots = record.stats.counters.get("sequences", 0) * cfg.seq_len
    waste = 100.0 * record.stats.counters.get("pad_tokens", 0) / slots if slots else 0.0
    ctx.tracker.log_metrics(record.mlflow_run_id, {"packing_waste_pct": waste})
    return out


def summary_metrics(summary: dict) -> dict[str, float]:
    """Return the pretraining summary's figures as MLflow metrics (the curve itself comes from the Trainer)."""
    figures = PretrainSummary.of(summary)
    metrics = {f"final.eval_{s}_ppl": ppl for s, ppl in figures.eval_ppl.items()}
    for key in ("first_loss", "last_loss", "tokens_per_s", "train_seconds", "parameters", "train_sequences"):
        if summary.get(key) is not None:  # the summary's own keys: a missing figure is not logged as 0
            metrics[f"final.{key}"] = float(getattr(figures, key))
    return metrics


def pretrain_stage(ctx: RunContext, model: ModelConfig, cfg: PretrainConfig, packed: StageDir, tokenizer: StageDir) -> ModelResult:
    """Pretrain on the packed shards into the stage's child run (loss curve, perplexity), log and register the model.

    A finished stage (its done-record for the same job and inputs) is not retrained on a rerun; an
    unfinished one resumes from its newest checkpoint.
    """
    out = ctx.store.stage(PRETRAIN)
    job = PretrainJob(data_dir=str(packed.root), tokenizer_dir=str(tokenizer.root), output_dir=str(out.root), model=model, pretrain=cfg)
    spec = ModelStage(
        stage=PRETRAIN,
        run_name=PRETRAIN,
        # Prefixed: HF's MLflowCallback logs TrainingArguments and the model config unprefixed into this
        # same run, and MLflow refuses a param logged twice with different values.
        params={f"model.{k}": v for k, v in flatten_params(model).items()} | {f"pretrain.{k}": v for k, v in flatten_params(cfg).items()},
        digest=f"{config_digest(job)}:{published(packed).output_digest}:{tokenizer_digest(tokenizer.root)}",
        registered_model=cfg.registered_model,
        description="Base models pretrained by liandan's train_base_model flow.",
        upstream=packed,
        metrics=summary_metrics,
    )
    result = run_model_stage(ctx, spec, lambda uri, child: pretrain_model(job, tracking_uri=uri, run_id=child))
    _summarize(ctx, result, cfg.registered_model)
    return result


def _summarize(ctx: RunContext, result: ModelResult, name: str) -> None:
    figures = PretrainSummary.of(result.summary)
    ppl = ", ".join(f"{s} {p:.1f}" for s, p in figures.eval_ppl.items()) or "no held-out split"
    registered = f"`{name}` version {result.model_version} (alias `{CANDIDATE_ALIAS}`)" if result.model_version else "not registered"
    create_markdown_artifact(
        key="pretrain-summary",
        description=f"Pretraining of run {ctx.name}",
        markdown=(
            f"**pretrain** of run `{ctx.name}`: {figures.parameters:,} parameters, {figures.steps} steps on "
            f"{figures.world_size} process(es), loss {figures.first_loss:.3f} → {figures.last_loss:.3f}, "
            f"{figures.tokens_per_s:.0f} tokens/s. Held-out perplexity: {ppl}. Model: {registered}. "
            f"[MLflow stage run]({ctx.tracker.run_url(result.mlflow_run_id)})"
        ),
    )
    get_run_logger().info("pretrain: loss %.3f → %.3f; model %s", figures.first_loss, figures.last_loss, result.model_dir)


@flow(name="train_base_model", flow_run_name=flow_run_namer("train"), **TRACKING_HOOKS)
@flow_parameters("train")
def train_base_model(run: RunConfig = RunConfig(), *, data_stage: DataStage = "mixture", allow_undeidentified: bool = False, **sections: BaseModel) -> str:
    """Train a tokenizer on a data stage of the run (the mixture by default), pack the corpus, pretrain the base model,
    evaluate it (child run ``evaluate-pretrain``, unless ``evaluate.enabled`` is off); return the model folder.

    Args:
        data_stage: the data stage whose kept documents are trained on; one before ``deid`` is refused
            unless ``allow_undeidentified`` is set, so personal data never reaches a model by accident.
    """
    if not deidentified(data_stage) and not allow_undeidentified:
        raise ValueError(
            f"data_stage {data_stage!r} comes before de-identification ({DEID_STAGE}): its text may hold personal data. "
            f"Train on {DEID_STAGE} or a later stage, or set allow_undeidentified: true"
        )
    recipe = Recipe(run=run, **sections)
    ctx = open_run(run, "train")
    upstream = ctx.store.stage(data_stage)
    if not upstream.shards():
        raise ValueError(f"no finished shards in {upstream.root}: run the data flow into this run folder first (same run.name)")
    tok = tokenize_stage(ctx, recipe.tokenizer, upstream, recipe.model.base_model)
    packed = pack_stage(ctx, recipe.pack, upstream, tok)
    model_dir = pretrain_stage(ctx, recipe.model, recipe.pretrain, packed, tok).model_dir
    if recipe.evaluate.enabled:
        evaluate_stage(ctx, recipe.evaluate, PRETRAIN, model_dir, pack_dir=str(packed.root), pack_tokenizer_dir=str(tok.root))
    return model_dir
