"""The crawl stage as a Prefect task: one crawl, its WARC file, and its records cut into shards."""

from __future__ import annotations

import math
from pathlib import Path

from prefect import task

from tasks.crawl.config import CrawlConfig
from tasks.crawl.crawler import crawl_sync
from tasks.steps import ShardStats
from tasks.store import StageDir, clear_done, read_done, stage_digest, write_done

STAGE = "crawl"
WARC_DIR = "warc"


def write_crawl(out: StageDir, cfg: CrawlConfig, shard_docs: int) -> ShardStats:
    """Crawl, store raw responses as WARC under ``<stage>/warc/`` and commit the records as shards."""
    digest = stage_digest(cfg, [f"shard_docs={shard_docs}"])
    done = read_done(out.root, digest)
    if done is not None and len(out.shards()) == done["shards"]:
        stats = ShardStats.from_dict(done["stats"])
        stats.counters = {**stats.counters, "stage_skipped": 1}
        return stats
    clear_done(out.root)
    result = crawl_sync(cfg, out.root / WARC_DIR / "crawl-00000.warc.gz")
    n = max(1, math.ceil(len(result.kept) / shard_docs), math.ceil(len(result.rejected) / shard_docs))
    out.prune({f"part-{i:05d}.parquet" for i in range(n)})
    for i in range(n):
        name = f"part-{i:05d}.parquet"
        kept = result.kept[i * shard_docs : (i + 1) * shard_docs]
        rejected = result.rejected[i * shard_docs : (i + 1) * shard_docs]
        out.commit_shard(name, kept, rejected, {"input": "seeds", "stats": {"docs_kept": len(kept), "docs_rejected": len(rejected)}}, digest)
    write_done(out.root, digest, {"shards": n, "stats": result.stats.to_dict()})
    return result.stats


@task(name="crawl_site")
def crawl_site(cfg: CrawlConfig, out_dir: str, shard_docs: int) -> dict:
    """Return the stats of crawling the configured seeds into ``out_dir``."""
    return write_crawl(StageDir(Path(out_dir)), cfg, shard_docs).to_dict()
