"""The data flow: crawl → extract (later stages append here), one Prefect task per shard."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from prefect import flow, unmapped
from prefect.runtime import flow_run

from flows.recipe import RunConfig
from flows.runs import TRACKING_HOOKS, RunContext, open_run, publish_stage, run_shard_stage
from tasks.crawl.config import CrawlConfig
from tasks.clean.config import CleanConfig
from tasks.clean.task import clean_shard
from tasks.crawl.task import STAGE as CRAWL, WARC_DIR, crawl_site
from tasks.deid.config import DeidConfig
from tasks.deid.task import deid_shard
from tasks.ocr.config import OcrConfig
from tasks.ocr.task import ocr_shard
from tasks.extract.config import ExtractConfig
from tasks.extract.task import extract_shard
from tasks.dedup.config import DedupConfig
from tasks.dedup.task import cluster_duplicates, dedup_shard, sign_shard
from tasks.steps import ShardStats
from tasks.store import StageDir


def _flow_run_name() -> str:
    run = RunConfig.model_validate(flow_run.parameters.get("run") or {})
    return f"data-{run.resolved_name('data')}"


def crawl_stage(ctx: RunContext, cfg: CrawlConfig) -> StageDir:
    """Run the crawl as its own stage (tracked child run, stats, artifact); return its folder."""
    out = ctx.store.stage(CRAWL)
    child = ctx.tracker.start_stage(CRAWL, cfg)
    try:
        started = time.perf_counter()
        stats = ShardStats.from_dict(crawl_site(cfg, str(out.root), ctx.config.shard_docs))
        stats.counters = {**stats.counters, "wall_ms": int((time.perf_counter() - started) * 1000)}
        publish_stage(ctx, CRAWL, child, stats, cfg, out.shards(), upstream=None)
    except BaseException:
        ctx.tracker.end(child, "FAILED")
        raise
    ctx.tracker.end(child, "FINISHED")
    return out


def sign_and_cluster(cfg: DedupConfig) -> Callable[[StageDir, list[Path]], dict[str, int]]:
    """Return de-duplication's first two phases: sign every shard (one task each), then cluster all signatures once."""

    def prepare(out: StageDir, shards: list[Path]) -> dict[str, int]:
        signed = sign_shard.map(in_path=[str(p) for p in shards], out_dir=unmapped(str(out.root)), cfg=unmapped(cfg))
        skipped = sum(f.result()["skipped"] for f in signed)
        found = cluster_duplicates(str(out.root), cfg, shard_names=[p.name for p in shards])
        counts = {k: int(v) for k, v in found.items() if k not in {"seconds", "skipped", "docs", "shards"}}
        return {**{f"cluster.{k}": v for k, v in counts.items()}, "signatures_skipped": skipped}

    return prepare


@flow(name="build_corpus", flow_run_name=_flow_run_name, **TRACKING_HOOKS)
def build_corpus(
    run: RunConfig = RunConfig(),
    crawl: CrawlConfig = CrawlConfig(),
    extract: ExtractConfig = ExtractConfig(),
    ocr: OcrConfig = OcrConfig(),
    clean: CleanConfig = CleanConfig(),
    dedup: DedupConfig = DedupConfig(),
    deid: DeidConfig = DeidConfig(),
) -> str:
    """Crawl → extract → OCR → clean → dedup → de-identify; return the run folder."""
    ctx = open_run(run, "data")
    pages = crawl_stage(ctx, crawl)
    texts = run_shard_stage(ctx, "extract", extract_shard, extract, pages)
    texts = run_shard_stage(ctx, "ocr", ocr_shard, ocr, texts, warc_dir=str(pages.root / WARC_DIR))
    texts = run_shard_stage(ctx, "clean", clean_shard, clean, texts)
    texts = run_shard_stage(ctx, "dedup", dedup_shard, dedup, texts, prepare=sign_and_cluster(dedup))
    run_shard_stage(ctx, "deid", deid_shard, deid, texts)
    return str(ctx.store.root)
