"""The extract stage as a Prefect task: one task run per shard."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from tasks.extract.config import ExtractConfig
from tasks.extract.stage import build_steps
from tasks.steps import ShardStats, process_shard
from tasks.store import StageDir, config_digest

STAGE = "extract"


@task(name="extract_shard")
def extract_shard(in_path: str, out_dir: str, cfg: ExtractConfig) -> ShardStats:
    """Return the stats of extracting main text from one shard of crawled pages."""
    return process_shard(STAGE, build_steps(cfg), Path(in_path), StageDir(Path(out_dir)), config_digest(cfg))
