"""The OCR stage as a Prefect task: one task run per shard."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from tasks.ocr.config import OcrConfig
from tasks.ocr.stage import build_steps
from tasks.steps import ShardStats, cached_steps, process_shard
from tasks.store import StageDir, config_digest

STAGE = "ocr"


@task(name="ocr_shard")
def ocr_shard(in_path: str, out_dir: str, cfg: OcrConfig, warc_dir: str) -> ShardStats:
    """Return the stats of reading one shard's PDFs and images into text (other records pass through).

    Args:
        warc_dir: the crawl stage's WARC folder (``<run>/crawl/warc``); "" when records name local files only.
    """
    digest = config_digest(cfg)
    # the engine inside loads lazily, at the first page to OCR, and then serves every later shard of this worker
    steps = cached_steps(f"{STAGE}:{digest}:{warc_dir}", lambda: build_steps(cfg, Path(warc_dir) if warc_dir else None))
    return process_shard(STAGE, steps, Path(in_path), StageDir(Path(out_dir)), digest)
