"""The dedup stage as Prefect tasks: sign each shard (map), cluster all signatures (once), filter each shard (map).

Files under the stage's folder, beside the usual kept/rejected shards and markers::

    _signatures/part-00000.parquet   one row per document of that input shard (phase 1)
    _duplicates.parquet              one row per document to remove: id, shard, position, reason,
                                     kept_id, kept_shard, kept_position (phase 2)

Each is written atomically, carries in its Parquet metadata the digests it was made from, and is followed
by its done-record (``part-00000.done.json``, ``_duplicates.done.json``; see ``tasks.store.stage_digest``),
so a re-run skips what is still valid: a signature file while its input shard and the signature fields of
the config are unchanged, the duplicates file while every signature file and the config are. The
digest of ``_duplicates.parquet`` is part of the config digest of phase 3, so a changed clustering
redoes the filtered shards.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import task

from tasks.dedup.config import DedupConfig
from tasks.dedup.stage import STAGE, DuplicateFilter, Signatures, Signer, cluster, duplicate_rows, signature_digest
from tasks.steps import ShardStats, process_shard
from tasks.store import StageDir, clear_done, config_digest, file_digest, parquet_metadata, read_done, stage_digest, write_done, write_parquet

SIGNATURES_DIR = "_signatures"
DUPLICATES_FILE = "_duplicates.parquet"
DUPLICATE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("shard", pa.string()),
        ("position", pa.int64()),
        ("reason", pa.string()),
        ("kept_id", pa.string()),
        ("kept_shard", pa.string()),
        ("kept_position", pa.int64()),
    ]
)


@dataclass(frozen=True)
class SignedShard:
    """One shard's signatures, written (or found already written) beside the stage."""

    shard: str
    docs: int
    unsigned: int  # documents too short to sign: never near duplicates
    skipped: bool  # found already written for the same input and signature settings
    seconds: float


@dataclass(frozen=True)
class ClusterCounts:
    """What clustering every shard's signatures found (or found already found): the stage's ``cluster.*`` counters.

    Its fields but ``skipped`` and ``seconds``, in this order, are the done-record ``_duplicates.done.json``.
    """

    docs: int
    shards: int
    unsigned: int  # documents too short to sign: never near duplicates
    clusters: int  # groups with at least one duplicate removed
    exact_duplicate: int  # rows the shards will reject as exact duplicates
    near_duplicate: int  # rows the shards will reject as near duplicates
    candidate_pairs: int  # LSH band collisions verified
    verified_pairs: int  # candidate pairs above the Jaccard threshold
    kept_for_shared_id: int  # duplicates kept because their id is also a kept document's id (see duplicate_rows)
    cross_shard: int  # duplicates whose kept document lies in another shard
    skipped: bool = False  # found already written for the same signatures and config
    seconds: float = 0.0

    def record(self) -> dict[str, int]:
        """Return the counts as the done-record stores them."""
        return {k: v for k, v in asdict(self).items() if k not in ("skipped", "seconds")}

    @classmethod
    def from_record(cls, record: dict, seconds: float = 0.0) -> ClusterCounts:
        """Return the counts a done-record holds, marked as skipped."""
        return cls(**{k: int(record[k]) for k in cls.__dataclass_fields__ if k not in ("skipped", "seconds")}, skipped=True, seconds=seconds)

    def counters(self) -> dict[str, int]:
        """Return the counts as integer counters for the stage's stats (the docs and shards are the stage's own)."""
        return {f"cluster.{k}": int(v) for k, v in asdict(self).items() if k not in ("docs", "shards", "skipped", "seconds")}


@task(name="sign_shard")
def sign_shard(in_path: str, out_dir: str, cfg: DedupConfig) -> SignedShard:
    """Return what writing one shard's signature rows to ``<out_dir>/_signatures/<shard>`` made."""
    started = time.perf_counter()
    source = Path(in_path)
    target = Path(out_dir) / SIGNATURES_DIR / source.name
    stamp = {"input_digest": file_digest(source), "signature_digest": signature_digest(cfg)}
    digest = stage_digest(None, [stamp["signature_digest"], stamp["input_digest"]])
    record = done_record_name(source.name)
    done = read_done(target.parent, digest, name=record)
    if done is not None and parquet_metadata(target):  # a signature file damaged by hand reads as no metadata: redone
        return SignedShard(source.name, int(done["docs"]), int(done["unsigned"]), skipped=True, seconds=0.0)
    clear_done(target.parent, name=record)
    docs = pq.read_table(source, columns=["id", "text"]).to_pylist()  # meta is not needed: skip its JSON
    sig = Signer(cfg)(docs, shard=source.name)
    unsigned = int((sig.key_chars == 0).sum())
    write_parquet(target, sig.to_table(), {**stamp, "docs": str(len(sig)), "unsigned": str(unsigned)})
    write_done(target.parent, digest, {"docs": len(sig), "unsigned": unsigned}, name=record)
    return SignedShard(source.name, len(sig), unsigned, skipped=False, seconds=round(time.perf_counter() - started, 6))


@task(name="cluster_duplicates")
def cluster_duplicates(out_dir: str, cfg: DedupConfig, shard_names: list[str] | None = None) -> ClusterCounts:
    """Return the counts of clustering every shard's signatures into ``<out_dir>/_duplicates.parquet``.

    Args:
        shard_names: the input shards of this run; signature files of other names (left by a shard
            that is gone upstream) are ignored. None reads every signature file.
    """
    started = time.perf_counter()
    root = Path(out_dir)
    sig_dir = root / SIGNATURES_DIR
    if shard_names is None:
        paths = sorted(sig_dir.glob("*.parquet"))
    else:
        paths = [sig_dir / name for name in sorted(shard_names)]
        missing = [p.name for p in paths if not p.exists()]
        if missing:
            raise FileNotFoundError(f"no signatures for shards {missing} in {sig_dir}: run sign_shard on them first")
    stamps = [(p.name, parquet_metadata(p)) for p in paths]
    mismatched = [name for name, meta in stamps if meta.get("signature_digest") != signature_digest(cfg)]
    if mismatched:
        raise ValueError(f"signatures of {mismatched} were made with other signature settings: run sign_shard again")
    digest = stage_digest(cfg, [f"{name}:{meta.get('input_digest')}" for name, meta in stamps])
    target = root / DUPLICATES_FILE
    record = done_record_name(DUPLICATES_FILE)
    done = read_done(root, digest, name=record)
    if done is not None and target.exists():
        return ClusterCounts.from_record(done)
    clear_done(root, name=record)
    sig = Signatures.concat([Signatures.from_table(pq.read_table(p), cfg) for p in paths], cfg)
    clusters = cluster(sig, cfg)
    rows = duplicate_rows(sig, clusters)
    found = clusters.counts()
    write_parquet(target, pa.Table.from_pylist(rows, schema=DUPLICATE_SCHEMA), {"inputs_digest": digest})
    counts = ClusterCounts(
        docs=len(sig),
        shards=len(paths),
        unsigned=int((sig.key_chars == 0).sum()),
        clusters=found["clusters"],
        # what the shards will reject: a row whose id is also a kept document's id stays (see duplicate_rows)
        exact_duplicate=sum(1 for r in rows if r["reason"] == "exact_duplicate"),
        near_duplicate=sum(1 for r in rows if r["reason"] == "near_duplicate"),
        candidate_pairs=found["candidate_pairs"],
        verified_pairs=found["verified_pairs"],
        kept_for_shared_id=found["exact_duplicate"] + found["near_duplicate"] - len(rows),
        cross_shard=sum(1 for r in rows if r["shard"] != r["kept_shard"]),
        seconds=round(time.perf_counter() - started, 6),
    )
    write_done(root, digest, counts.record(), name=record)
    return counts


def done_record_name(output: str) -> str:
    """Return the name of the done-record that sits beside ``output`` (one per signature file, one for the clusters)."""
    return f"{Path(output).stem}.done.json"


def read_duplicates(path: Path, shard: str) -> DuplicateFilter:
    """Return the filter for one shard: its documents to remove, and the cluster representatives it holds."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run cluster_duplicates before dedup_shard")
    table = pq.read_table(path, filters=[("shard", "=", shard)], columns=["id", "reason", "kept_id"])
    duplicates = dict(zip(table.column("id").to_pylist(), zip(table.column("reason").to_pylist(), table.column("kept_id").to_pylist())))
    kept = pq.read_table(path, filters=[("kept_shard", "=", shard)], columns=["kept_id"]).column("kept_id").to_pylist()
    return DuplicateFilter(duplicates, frozenset(kept))


@task(name="dedup_shard")
def dedup_shard(in_path: str, out_dir: str, cfg: DedupConfig) -> ShardStats:
    """Return the stats of removing one shard's duplicates, as found by ``cluster_duplicates``."""
    out = StageDir(Path(out_dir))
    duplicates_path = out.root / DUPLICATES_FILE
    step = read_duplicates(duplicates_path, Path(in_path).name)
    return process_shard(STAGE, [step], Path(in_path), out, f"{config_digest(cfg)}:{file_digest(duplicates_path)}")
