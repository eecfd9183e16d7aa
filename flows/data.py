"""The data flow: crawl → extract → OCR → clean → dedup → deid → quality → mixture, one Prefect task per shard.

Its parameters are the data stages' sections of the stage table (flows/stages.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from prefect import flow, unmapped
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel

from flows.recipe import Recipe, RunConfig, flow_parameters
from flows.runs import TRACKING_HOOKS, ModelStage, RunContext, flow_run_namer, open_run, publish_stage, published, run_model_stage, run_shard_stage
from tasks.tracking import flatten_params, resolve_tracking_uri
from tasks.crawl.config import CrawlConfig
from tasks.clean.config import CleanConfig
from tasks.clean.report import rejected_samples, signal_histograms
from tasks.clean.task import clean_shard
from tasks.crawl.inputs import plan_inputs
from tasks.crawl.task import STAGE as CRAWL, WARC_DIR, CrawlPart, combine_parts, crawl_site, progress_metrics, read_input_file, read_progress
from tasks.deid.config import DeidConfig
from tasks.deid.task import deid_shard
from tasks.deid.report import sample_lines
from tasks.ocr.task import ocr_shard
from tasks.extract.task import extract_shard
from tasks.dedup.config import DedupConfig
from tasks.dedup.task import cluster_duplicates, dedup_shard, sign_shard
from tasks.quality.config import QualityConfig
from tasks.quality.report import (
    confusion_figure,
    label_source_metrics,
    read_scores,
    read_source_scores,
    score_histogram,
    source_histogram,
    tier_table,
)
from tasks.quality.task import QualityTraining, score_shard, train_quality_model, training_inputs_digest
from tasks.mixture.config import MixtureConfig
from tasks.mixture.plan import MixturePlan
from tasks.mixture.report import mixture_chart, table_rows, weights_chart
from tasks.mixture.task import mix_shard, plan_mixture_task
from tasks.store import StageDir


PROGRESS_EVERY_S = 10.0  # how often the flow logs a running crawl's pages/s and rejections to its MLflow run


def crawl_stage(ctx: RunContext, cfg: CrawlConfig) -> StageDir:
    """Crawl the seeds and read the input files (one task each, side by side) as one stage; return its folder."""
    out = ctx.store.stage(CRAWL)
    child = ctx.tracker.start_stage(CRAWL, cfg)
    try:
        started = time.perf_counter()
        shard_docs = ctx.config.shard_docs
        crawling = crawl_site.submit(cfg, str(out.root), shard_docs) if cfg.seeds else None
        reads = read_input_file.map(chunk=plan_inputs(cfg), out_dir=unmapped(str(out.root)), cfg=unmapped(cfg), shard_docs=unmapped(shard_docs))
        parts = [watch_crawl(ctx, child, crawling, out)] if crawling is not None else []
        parts += [f.result() for f in reads]
        stats = combine_parts(out, parts)
        stats.counters = {**stats.counters, "wall_ms": int((time.perf_counter() - started) * 1000)}
        publish_stage(ctx, CRAWL, child, stats, cfg, out.shards(), upstream=None)
    except BaseException:
        ctx.tracker.end(child, "FAILED")
        raise
    ctx.tracker.end(child, "FINISHED")
    return out


def watch_crawl(ctx: RunContext, child: str, crawling, out: StageDir) -> CrawlPart:
    """Wait for the crawl task, logging its live pages/s and rejections by reason to the stage's MLflow run meanwhile."""
    step = 0
    while not crawling.state.is_final():
        crawling.wait(timeout=PROGRESS_EVERY_S)
        progress = read_progress(out.root)
        if progress is not None:
            ctx.tracker.log_metrics(child, progress_metrics(progress), step=step)
            step += 1
    return crawling.result()


def sign_and_cluster(cfg: DedupConfig) -> Callable[[StageDir, list[Path]], dict[str, int]]:
    """Return de-duplication's first two phases: sign every shard (one task each), then cluster all signatures once."""

    def prepare(out: StageDir, shards: list[Path]) -> dict[str, int]:
        signed = sign_shard.map(in_path=[str(p) for p in shards], out_dir=unmapped(str(out.root)), cfg=unmapped(cfg))
        skipped = sum(int(f.result().skipped) for f in signed)
        found = cluster_duplicates(str(out.root), cfg, shard_names=[p.name for p in shards])
        return {**found.counters(), "signatures_skipped": skipped}

    return prepare


def clean_stage(ctx: RunContext, cfg: CleanConfig, upstream: StageDir, deid: DeidConfig) -> StageDir:
    """Clean every shard; log a histogram per stored signal (its threshold drawn) and, per reject reason, up to
    10 sample lines passed through the deid masker (clean runs before deid) to the stage's MLflow run."""
    out = run_shard_stage(ctx, "clean", clean_shard, cfg, upstream)
    child = published(out).mlflow_run_id
    for artifact, figure in signal_histograms([*out.shards(), *out.rejected_shards()], cfg).items():
        ctx.tracker.client.log_figure(child, figure, artifact)
    ctx.tracker.client.log_dict(child, rejected_samples(out.rejected_shards(), deid=deid), "clean_rejected_samples.json")
    return out


def deid_stage(ctx: RunContext, cfg: DeidConfig, upstream: StageDir) -> StageDir:
    """De-identify every shard; log 20 lines of the masked output (only masked text) to the stage's MLflow run."""
    out = run_shard_stage(ctx, "deid", deid_shard, cfg, upstream)
    child = published(out).mlflow_run_id
    ctx.tracker.client.log_text(child, "\n".join(sample_lines(out.shards())) + "\n", "deid_samples.txt")
    return out


def quality_model(ctx: RunContext, cfg: QualityConfig, weak_labels: StageDir) -> str:
    """Return the folder of the classifier to score with: trained, logged and registered in its own child run, or
    the registered version ``cfg.model_version`` (a number or an alias) downloaded from MLflow."""
    if cfg.model_version:
        import mlflow.artifacts

        client = ctx.tracker.client
        version = client.get_model_version(cfg.registered_model, cfg.model_version) if cfg.model_version.isdigit() else client.get_model_version_by_alias(cfg.registered_model, cfg.model_version)
        dst = ctx.store.stage("quality_model").root / f"v{version.version}"
        dst.mkdir(parents=True, exist_ok=True)
        uri = resolve_tracking_uri(ctx.config.tracking_uri, ctx.config.runs_dir)
        return mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path="model", dst_path=str(dst), tracking_uri=uri)
    out = str(ctx.store.stage("quality_model").root)
    spec = ModelStage(
        stage="quality_model",
        run_name=f"quality-train-C{cfg.C:g}",
        params={f"quality.{k}": v for k, v in flatten_params(cfg).items()},
        digest=training_inputs_digest(cfg, [str(weak_labels.root)]),  # training fields, label files, weak-label shards
        registered_model=cfg.registered_model,
        description="Quality classifiers (high/medium/low) trained by liandan's build_corpus flow.",
        metrics=lambda record: training_metrics(QualityTraining.from_record(record).summary),
    )
    result = run_model_stage(ctx, spec, lambda _uri, _child: train_quality_model(cfg, out, [str(weak_labels.root)]).train_result())
    trained = QualityTraining.from_record(result.summary)
    ctx.tracker.client.log_figure(result.mlflow_run_id, confusion_figure(trained.summary["confusion"]), "confusion.png")
    ctx.tracker.client.log_dict(result.mlflow_run_id, trained.summary, "summary.json")
    return trained.model_dir


def training_metrics(summary: dict) -> dict[str, float]:
    """Return a classifier's training summary as MLflow metrics: held-out figures and the per-source label counts."""
    return {f"heldout.{k}": float(v) for k, v in summary["metrics"].items() if isinstance(v, (int, float))} | label_source_metrics(summary)


def quality_stage(ctx: RunContext, cfg: QualityConfig, upstream: StageDir, weak_labels: StageDir) -> StageDir:
    """Score every document's quality, route it by tier; log the score histogram and the per-source tier table."""
    model_dir = quality_model(ctx, cfg, weak_labels)
    out = run_shard_stage(ctx, "quality", score_shard, cfg, upstream, model_dir=model_dir)
    record = published(out)
    child = record.mlflow_run_id
    scores, tiers = read_scores([*out.shards(), *out.rejected_shards()])
    ctx.tracker.client.log_figure(child, score_histogram(scores, tiers, cfg.high_cutoff, cfg.low_cutoff), "quality_histogram.png")
    scores, sources = read_source_scores([*out.shards(), *out.rejected_shards()])
    ctx.tracker.client.log_figure(child, source_histogram(scores, sources, cfg.high_cutoff, cfg.low_cutoff), "quality_by_source.png")
    rows = tier_table(record.stats.counters)
    if rows:
        ctx.tracker.client.log_table(child, {k: [r[k] for r in rows] for k in rows[0]}, "quality_tiers.json")
    create_table_artifact(table=rows or [{"source": "(none)"}], key="quality-tiers", description=f"**quality** tiers per source of run `{ctx.name}`.")
    return out


def mixture_stage(ctx: RunContext, cfg: MixtureConfig, upstream: StageDir) -> StageDir:
    """Plan the mixture over all shards once (weights, budget, copies), apply it per shard; chart it in MLflow and Prefect."""
    plans: list[MixturePlan] = []

    def prepare(out: StageDir, shards: list[Path]) -> dict[str, int]:
        plans.append(plan_mixture_task(shards=[str(p) for p in shards], out_dir=str(out.root), cfg=cfg))
        return plans[0].counters()

    out = run_shard_stage(ctx, "mixture", mix_shard, cfg, upstream, prepare=prepare)
    plan, child = plans[0], published(out).mlflow_run_id
    rows = table_rows(plan.table)
    ctx.tracker.client.log_table(child, {k: [r[k] for r in rows] for k in rows[0]} if rows else {"source": []}, "mixture_table.json")
    ctx.tracker.client.log_figure(child, mixture_chart(plan.table), "mixture.png")
    ctx.tracker.log_metrics(child, {f"weight.{source}": w for source, w in plan.weights.items()})
    if plan.doremi:
        ctx.tracker.client.log_figure(child, weights_chart(plan.doremi["history"], plan.weights), "doremi_weights.png")
        ctx.tracker.log_metric_history(child, [{f"doremi.{source}": w for source, w in weights.items()} for weights in plan.doremi["history"]])
    create_table_artifact(
        table=rows or [{"source": "(none)"}],
        key="mixture-table",
        description=f"**mixture** ({cfg.mode}) of run `{ctx.name}`: share per source before → after. " + " ".join(plan.warnings),
    )
    return out


@flow(name="build_corpus", flow_run_name=flow_run_namer("data"), **TRACKING_HOOKS)
@flow_parameters("data")
def build_corpus(run: RunConfig = RunConfig(), **sections: BaseModel) -> str:
    """Crawl → extract → OCR → clean → dedup → de-identify → quality tiers → mix sources; return the run folder."""
    recipe = Recipe(run=run, **sections)
    ctx = open_run(run, "data")
    pages = crawl_stage(ctx, recipe.crawl)
    texts = run_shard_stage(ctx, "extract", extract_shard, recipe.extract, pages)
    texts = run_shard_stage(ctx, "ocr", ocr_shard, recipe.ocr, texts, warc_dir=str(pages.root / WARC_DIR))
    texts = cleaned = clean_stage(ctx, recipe.clean, texts, recipe.deid)
    texts = run_shard_stage(ctx, "dedup", dedup_shard, recipe.dedup, texts, prepare=sign_and_cluster(recipe.dedup))
    texts = deid_stage(ctx, recipe.deid, texts)
    texts = quality_stage(ctx, recipe.quality, texts, weak_labels=cleaned)
    mixture_stage(ctx, recipe.mixture, texts)
    return str(ctx.store.root)
