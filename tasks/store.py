"""Run-scoped data on disk: Parquet shards, their rejects, per-shard markers and a stats.json per stage.

Layout of one stage of one run::

    runs/<run>/<stage>/part-00000.parquet           kept records
    runs/<run>/<stage>/rejected/part-00000.parquet  rejected records (+ stage, reason, detail)
    runs/<run>/<stage>/_shards/part-00000.json      marker: the shard is complete (stats, input digest)
    runs/<run>/<stage>/stats.json                   the stage's summed stats, written last

Every file is written to a hidden temporary name in its folder, flushed to disk and renamed when
complete, so a crash or a full disk never leaves a half shard under a real name; the temporary file a
killed writer leaves behind is removed when the shard is next written. A shard is complete when its
marker exists and names the same input digest and config digest; that is how a re-run skips finished
work and redoes the rest.
``meta`` is stored as a JSON string: its keys differ from page to page and from stage to stage, and a
Parquet struct would force one schema on all of them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from tasks.records import CORE_FIELDS, Doc

SHARD_GLOB = "part-*.parquet"


def temp_path(path: Path) -> Path:
    """Return the hidden name ``path`` is written under until it is complete (one per process)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temporary files of ``path`` that other processes left (a writer killed mid-write); return them.

    One task writes one shard at a time, so another process's temporary file of the same name is
    garbage, never a write in progress.
    """
    stale = [p for p in path.parent.glob(f".{path.name}.tmp-*") if p != temp_path(path)]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_json(path: Path, obj: object) -> None:
    """Write ``obj`` as indented UTF-8 JSON, atomically."""
    atomic_write_bytes(path, json.dumps(obj, ensure_ascii=False, indent=2, default=str).encode("utf-8"))


def _to_table(rows: list[Doc]) -> pa.Table:
    columns: list[str] = list(CORE_FIELDS)
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    data = {col: [row.get(col) for row in rows] for col in columns}
    data["meta"] = [json.dumps(m or {}, ensure_ascii=False, default=str) for m in data["meta"]]
    for col in ("id", "source", "url", "text"):
        data[col] = pa.array(data[col], type=pa.string())
    return pa.table(data)


def _write_temp_shard(path: Path, rows: list[Doc]) -> Path:
    """Write records to the temporary name of ``path``, flushed to disk; return that name (removed on failure)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        with open(tmp, "wb") as f:
            pq.write_table(_to_table(rows), f, compression="zstd")
            f.flush()
            os.fsync(f.fileno())  # the rename must not reach the disk before the bytes do
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_shard(path: Path, rows: list[Doc]) -> None:
    """Write records to a Parquet shard atomically (an empty list writes an empty shard with the core columns)."""
    tmp = _write_temp_shard(path, rows)
    try:
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(path: Path, table: pa.Table, metadata: dict[str, str]) -> None:
    """Write a table with string schema metadata (the digests it was made from) to ``path`` atomically."""
    sink = pa.BufferOutputStream()
    pq.write_table(table.replace_schema_metadata(metadata), sink, compression="zstd")
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


def parquet_metadata(path: Path) -> dict[str, str]:
    """Return a Parquet file's schema metadata as strings (empty when it has none or is not a Parquet file)."""
    try:
        raw = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError):  # damaged outside our atomic writes: treated as absent, so it is redone
        return {}
    return {k.decode(): v.decode() for k, v in raw.items()}


def read_shard(path: Path) -> list[Doc]:
    """Return the records of a Parquet shard with ``meta`` decoded back to a dict."""
    rows = pq.read_table(path).to_pylist()
    for row in rows:
        row["meta"] = json.loads(row["meta"]) if row.get("meta") else {}
    return rows


def file_digest(path: Path) -> str:
    """Return the sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the bundled data (data/sample/…) lives under it


def resolve_data_path(path: str | Path) -> Path:
    """Return ``path`` as given when absolute or present in the working directory, else under the project folder.

    Recipes name bundled files relative to the project (data/sample/quality/seed.jsonl); this finds them
    from any working directory, e.g. a Prefect worker started elsewhere.
    """
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    return PROJECT_ROOT / p


def config_digest(cfg: BaseModel | None) -> str:
    """Return a short digest of a stage config, so a changed config invalidates finished shards."""
    payload = cfg.model_dump_json() if cfg is not None else ""
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


# --- the one skip/resume mechanism ---------------------------------------------------------------------
#
# Every piece of finished work — a document shard, a global plan (dedup clusters, mixture plan, quality
# model), the tokenizer, a packed shard, a trained model — is known by the digest of what it was made
# from: its config, its inputs' digests and the code version. The work writes its outputs first and its
# done-record last; a rerun whose digest matches the done-record reads the record's payload instead of
# redoing the work, and any other digest (a changed config, a changed input, newer code) redoes it.

CODE_VERSION = "1"  # bump when a stage's output for the same config and inputs changes: every done-record goes stale
DONE_FILE = "_done.json"


def stage_digest(cfg: BaseModel | None, inputs: Iterable[str], code_version: str = CODE_VERSION) -> str:
    """Return the digest a piece of work is made under: its config, its inputs' digests (in order), the code version.

    >>> stage_digest(None, ["a"]) == stage_digest(None, ["a"]) != stage_digest(None, ["b"])
    True
    """
    payload = json.dumps([config_digest(cfg), list(inputs), code_version], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def read_done(folder: Path, digest: str, name: str = DONE_FILE) -> dict | None:
    """Return the payload of ``folder/name`` when that done-record names ``digest``, else None.

    A record that cannot be read (damaged outside our atomic writes) counts as absent: the work is redone.
    """
    path = Path(folder) / name
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("digest") != digest:
        return None
    return record.get("payload") or {}


def write_done(folder: Path, digest: str, payload: dict, name: str = DONE_FILE) -> None:
    """Write the done-record ``folder/name`` (digest and payload), atomically: call it last, after every output."""
    atomic_write_json(Path(folder) / name, {"digest": digest, "payload": payload})


def clear_done(folder: Path, name: str = DONE_FILE) -> None:
    """Remove a done-record before its work is redone, so outputs being rewritten are never taken as finished."""
    (Path(folder) / name).unlink(missing_ok=True)


def keyed_dir(root: Path, digest: str) -> Path:
    """Return (created) the folder under ``root`` that belongs to the work made under ``digest``.

    Checkpoints and generated data live there, so a changed config starts in a fresh folder and never
    resumes another config's checkpoint, while a killed run with the same digest finds its own again.
    """
    folder = Path(root) / digest
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass(frozen=True)
class StageDir:
    """The folder of one stage of one run."""

    root: Path

    def shard(self, name: str) -> Path:
        return self.root / name

    def rejected(self, name: str) -> Path:
        return self.root / "rejected" / name

    def marker(self, name: str) -> Path:
        return self.root / "_shards" / (Path(name).stem + ".json")

    @property
    def stats_path(self) -> Path:
        return self.root / "stats.json"

    def shards(self) -> list[Path]:
        """Return the complete output shards, in name order."""
        return sorted(p for p in self.root.glob(SHARD_GLOB) if self.marker(p.name).exists())

    def rejected_shards(self) -> list[Path]:
        return sorted(p for p in (self.root / "rejected").glob(SHARD_GLOB) if self.marker(p.name).exists())

    def done_marker(self, name: str, input_digest: str, cfg_digest: str) -> dict | None:
        """Return the marker of a complete shard made from this input with this config, else None."""
        path = self.marker(name)
        if not path.exists():
            return None
        marker = json.loads(path.read_text(encoding="utf-8"))
        if marker.get("input_digest") != input_digest or marker.get("config_digest") != cfg_digest:
            return None
        if not self.shard(name).exists() or not self.rejected(name).exists():
            return None
        return marker

    def commit_shard(self, name: str, kept: list[Doc], rejected: list[Doc], marker: dict) -> None:
        """Write a shard's kept and rejected records, then its marker (the marker last: it means complete).

        The old marker goes first, so a shard being rewritten is never complete with the wrong rows;
        both files are written in full before either is renamed, so a write that fails (a full disk)
        leaves no new file under a real name.
        """
        paths = (self.shard(name), self.rejected(name))
        self.marker(name).unlink(missing_ok=True)
        for path in (*paths, self.marker(name)):
            remove_stale_temps(path)
        temps: list[Path] = []
        try:
            for path, rows in zip(paths, (kept, rejected)):
                temps.append(_write_temp_shard(path, rows))
            for tmp, path in zip(temps, paths):
                os.replace(tmp, path)
        finally:
            for tmp in temps:
                tmp.unlink(missing_ok=True)
        atomic_write_json(self.marker(name), marker)

    def prune(self, keep: set[str]) -> list[str]:
        """Remove committed shards (kept, rejected, marker) whose names are not in ``keep``; return the names removed."""
        removed = []
        for path in sorted(self.root.glob(SHARD_GLOB)):
            if path.name not in keep:
                for stale in (path, self.rejected(path.name), self.marker(path.name)):
                    stale.unlink(missing_ok=True)
                removed.append(path.name)
        return removed

    def read_stats(self) -> dict | None:
        return json.loads(self.stats_path.read_text(encoding="utf-8")) if self.stats_path.exists() else None

    def write_stats(self, stats: dict) -> None:
        atomic_write_json(self.stats_path, stats)


@dataclass(frozen=True)
class RunStore:
    """The folder of one run: ``<runs_dir>/<run name>/``."""

    root: Path

    @classmethod
    def open(cls, runs_dir: str | Path, run_name: str) -> RunStore:
        root = Path(runs_dir).expanduser().resolve() / run_name
        root.mkdir(parents=True, exist_ok=True)
        return cls(root)

    def stage(self, name: str) -> StageDir:
        return StageDir(self.root / name)


def read_records(paths: Iterable[Path]) -> list[Doc]:
    """Return all records of several shards, in order."""
    return [row for path in paths for row in read_shard(path)]


@dataclass
class LedgerRow:
    """One stage's accounts: what its stats claim, what its shards hold, and every mismatch."""

    stage: str
    upstream: str | None
    docs_in: int
    docs_kept: int
    docs_rejected: int
    kept_on_disk: int
    rejected_on_disk: int
    problems: list[str]


def _rows_on_disk(paths: Iterable[Path]) -> int:
    return sum(pq.ParquetFile(p).metadata.num_rows for p in paths)


def audit_run(run_root: Path) -> list[LedgerRow]:
    """Return the ledger of every stage of a run folder, in chain order, with what does not balance.

    A stage balances when kept + rejected = input (also by reason), its shards on disk hold exactly
    the rows its stats claim, and its input equals its upstream stage's kept documents.
    """
    stats_by_stage = {}
    for path in sorted(Path(run_root).glob("*/stats.json")):
        stats_by_stage[path.parent.name] = json.loads(path.read_text(encoding="utf-8"))
    ordered: list[str] = []
    while len(ordered) < len(stats_by_stage):
        ready = [s for s, st in stats_by_stage.items() if s not in ordered and (st.get("upstream") in ordered or st.get("upstream") not in stats_by_stage)]
        ordered.extend(sorted(ready) or sorted(set(stats_by_stage) - set(ordered)))
    rows = []
    for name in ordered:
        st = stats_by_stage[name]
        stage = StageDir(Path(run_root) / name)
        listed = st.get("shards", [])
        kept_paths = [stage.shard(n) for n in listed]
        rejected_paths = [stage.rejected(n) for n in listed]
        problems = [f"shard {p.name} listed in stats.json is missing" for p in kept_paths + rejected_paths if not p.exists()]
        kept_disk = _rows_on_disk(p for p in kept_paths if p.exists())
        rejected_disk = _rows_on_disk(p for p in rejected_paths if p.exists())
        if st["docs_kept"] + st["docs_rejected"] != st["docs_in"]:
            problems.append(f"kept {st['docs_kept']} + rejected {st['docs_rejected']} != input {st['docs_in']}")
        if sum(st.get("rejected_by_reason", {}).values()) != st["docs_rejected"]:
            problems.append(f"rejections by reason sum to {sum(st['rejected_by_reason'].values())}, not {st['docs_rejected']}")
        if kept_disk != st["docs_kept"]:
            problems.append(f"kept shards hold {kept_disk} rows, stats say {st['docs_kept']}")
        if rejected_disk != st["docs_rejected"]:
            problems.append(f"rejected shards hold {rejected_disk} rows, stats say {st['docs_rejected']}")
        upstream = st.get("upstream")
        if upstream in stats_by_stage and stats_by_stage[upstream]["docs_kept"] != st["docs_in"]:
            problems.append(f"input {st['docs_in']} != {upstream}'s kept {stats_by_stage[upstream]['docs_kept']}")
        rows.append(LedgerRow(name, upstream, st["docs_in"], st["docs_kept"], st["docs_rejected"], kept_disk, rejected_disk, problems))
    return rows
