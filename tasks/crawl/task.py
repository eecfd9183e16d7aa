"""The crawl stage as a Prefect task: one crawl, its WARC file, and its records cut into shards."""

from __future__ import annotations

import math
from pathlib import Path

from prefect import task

from tasks.crawl.config import CrawlConfig
from tasks.crawl.crawler import crawl_sync
from tasks.steps import ShardStats
from tasks.store import StageDir, config_digest

STAGE = "crawl"
WARC_DIR = "warc"


def write_crawl(out: StageDir, cfg: CrawlConfig, shard_docs: int) -> ShardStats:
    """Crawl, store raw responses as WARC under ``<stage>/warc/`` and commit the records as shards."""
    digest = config_digest(cfg)
    previous = out.read_stats()
    if previous and previous.get("config_digest") == digest and len(out.shards()) == len(previous.get("shards", [])):
        stats = ShardStats.from_dict(previous)
        stats.counters = {**stats.counters, "stage_skipped": 1}
        return stats
    result = crawl_sync(cfg, out.root / WARC_DIR / "crawl-00000.warc.gz")
    n = max(1, math.ceil(len(result.kept) / shard_docs), math.ceil(len(result.rejected) / shard_docs))
    out.prune({f"part-{i:05d}.parquet" for i in range(n)})
    for i in range(n):
        name = f"part-{i:05d}.parquet"
        kept = result.kept[i * shard_docs : (i + 1) * shard_docs]
        rejected = result.rejected[i * shard_docs : (i + 1) * shard_docs]
        marker = {"input": "seeds", "input_digest": digest, "config_digest": digest, "stats": {"docs_kept": len(kept), "docs_rejected": len(rejected)}}
        out.commit_shard(name, kept, rejected, marker)
    return result.stats


@task(name="crawl_site")
def crawl_site(cfg: CrawlConfig, out_dir: str, shard_docs: int) -> dict:
    """Return the stats of crawling the configured seeds into ``out_dir``."""
    return write_crawl(StageDir(Path(out_dir)), cfg, shard_docs).to_dict()
