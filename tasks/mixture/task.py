"""The mixture stage as Prefect tasks: plan all shards once, then apply the plan to each shard (map).

Files under the stage's folder, beside the usual kept/rejected shards and markers::

    _plan.parquet   one row per input document: shard, position, id, source, chars, copies (0 = dropped)

The plan carries in its Parquet metadata the digest of every input shard and the config, and the mixture
table; a re-run with both unchanged reads it back (DoReMi's proxies are not trained again). The plan file's
digest is part of the per-shard config digest, so a new plan redoes the mixed shards.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task

from tasks.mixture.config import MixtureConfig
from tasks.mixture.plan import PLAN_FILE, MixturePlan, plan_mixture, read_shard_plan
from tasks.mixture.stage import STAGE, MixtureFilter
from tasks.steps import ShardStats, process_shard
from tasks.store import StageDir, config_digest, file_digest


@task(name="plan_mixture")
def plan_mixture_task(shards: list[str], out_dir: str, cfg: MixtureConfig) -> MixturePlan:
    """Return the mixture plan of all ``shards`` (table, weights, budget, warnings, DoReMi history), written to ``<out_dir>/_plan.parquet``."""
    return plan_mixture([Path(p) for p in shards], Path(out_dir), cfg)


@task(name="mix_shard")
def mix_shard(in_path: str, out_dir: str, cfg: MixtureConfig) -> ShardStats:
    """Return the stats of applying the mixture plan to one shard: kept with ``mix_copies``, or rejected ``mixture_downsampled``."""
    out = StageDir(Path(out_dir))
    plan_path = out.root / PLAN_FILE
    ids, copies = read_shard_plan(plan_path, Path(in_path).name)
    return process_shard(STAGE, [MixtureFilter(ids, copies)], Path(in_path), out, f"{config_digest(cfg)}:{file_digest(plan_path)}")
