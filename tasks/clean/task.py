"""The clean stage as a Prefect task: one task run per shard."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from tasks.clean.config import CleanConfig
from tasks.clean.stage import build_steps
from tasks.steps import ShardStats, process_shard
from tasks.store import StageDir, config_digest

STAGE = "clean"


@task(name="clean_shard")
def clean_shard(in_path: str, out_dir: str, cfg: CleanConfig) -> ShardStats:
    """Return the stats of cleaning one shard of extracted documents."""
    return process_shard(STAGE, build_steps(cfg), Path(in_path), StageDir(Path(out_dir)), config_digest(cfg))
