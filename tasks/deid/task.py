"""The deid stage as a Prefect task: one task run per shard."""

from __future__ import annotations

from pathlib import Path

from prefect import task

from tasks.deid.config import DeidConfig
from tasks.deid.stage import build_steps
from tasks.steps import ShardStats, cached_steps, process_shard
from tasks.store import StageDir, config_digest

STAGE = "deid"


@task(name="deid_shard")
def deid_shard(in_path: str, out_dir: str, cfg: DeidConfig) -> ShardStats:
    """Return the stats of de-identifying one shard of cleaned text."""
    digest = config_digest(cfg)
    steps = cached_steps(f"{STAGE}:{digest}", lambda: build_steps(cfg))  # LAC's ONNX name tagger: ~0.3 s to load
    return process_shard(STAGE, steps, Path(in_path), StageDir(Path(out_dir)), digest)
