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
work and redoes the rest (the marker is the shard's done-record; see ``stage_digest``).
``meta`` is stored as a JSON string: its keys differ from page to page and from stage to stage, and a
Parquet struct would force one schema on all of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel

from tasks.records import CORE_FIELDS, MAX_FIELD_BYTES, Doc, repair_text

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


STRING_FIELDS = ("id", "source", "url", "text")  # core columns stored as strings; meta is stored as a JSON string
ARROW_VALUE_LIMIT = (1 << 31) - 1  # bytes of one string Arrow can hold at all; the configurable cap (MAX_FIELD_BYTES) sits far below
MAX_NESTING = 64  # levels of lists/objects in one value: deeper is no document's column, and the recursive checks stay bounded
_ARROW_ERRORS = (pa.ArrowException, OverflowError, TypeError, ValueError, RecursionError)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_empty_objects(value: object) -> object:
    """Return ``value`` with every empty dict in it replaced by None (Parquet cannot store a struct without fields)."""
    if isinstance(value, dict):
        return {k: _without_empty_objects(v) for k, v in value.items()} or None
    if isinstance(value, (list, tuple)):
        return [_without_empty_objects(v) for v in value]
    return value


def _has_empty_struct(t: pa.DataType) -> bool:
    if pa.types.is_struct(t):
        return t.num_fields == 0 or any(_has_empty_struct(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _has_empty_struct(t.value_type)
    return False


def _column_array(values: list) -> pa.Array | pa.ChunkedArray:
    """Return an added column (``signals``, ``lang``, …) as Arrow; raise when its values share no storable type."""
    array = pa.array(values)
    if _has_empty_struct(array.type):
        array = pa.array([_without_empty_objects(v) for v in values])  # {} reads back as None
    return array


def _meta_json(meta: object) -> str:
    return json.dumps(meta or {}, ensure_ascii=False, default=str)


def _value_problem(value: object, max_bytes: int, depth: int = 0) -> str | None:
    """Return why one value cannot be stored (a lone surrogate, a string over ``max_bytes``, too deep), else None."""
    if isinstance(value, str):
        if not value.isascii() and _SURROGATE.search(value):
            return "holds a lone surrogate, which UTF-8 cannot encode"
        if len(value) > max_bytes or (len(value) * 4 > max_bytes and len(value.encode("utf-8")) > max_bytes):
            return f"is {len(value.encode('utf-8'))} bytes, over the {max_bytes}-byte cap"
        return None
    if isinstance(value, bytes):
        return f"is {len(value)} bytes, over the {max_bytes}-byte cap" if len(value) > max_bytes else None
    if isinstance(value, (dict, list, tuple)):
        if depth >= MAX_NESTING:
            return f"nests deeper than {MAX_NESTING} levels"
        items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        for item in items:
            problem = _value_problem(item, max_bytes, depth + 1)
            if problem:
                return problem
    return None


def _row_problem(row: Doc, max_bytes: int) -> str | None:
    """Return why one record cannot be stored whatever the other rows hold, else None."""
    for field, value in row.items():
        if not isinstance(field, str) or _SURROGATE.search(field):
            return f"column name {field!r} is not storable text"
        where = f"field '{field}'"
        if field in STRING_FIELDS and value is not None and not isinstance(value, str):
            return f"{where} is {type(value).__name__}, not a string"
        if field == "meta":
            if value is not None and not isinstance(value, dict):
                return f"{where} is {type(value).__name__}, not an object"
            try:
                value = _meta_json(value)
            except _ARROW_ERRORS as e:  # a circular or deeply nested object, a key json cannot write
                return f"{where} cannot be written as JSON: {type(e).__name__}: {e}"
        problem = _value_problem(value, max_bytes)
        if problem:
            return f"{where} {problem}"
    return None


def unwritable_rows(rows: list[Doc], max_bytes: int = MAX_FIELD_BYTES) -> dict[int, str]:
    """Return, by position, why each row that cannot be stored in one shard with the others cannot (empty: all can).

    A row cannot be stored when a value holds a lone surrogate, a string over ``max_bytes`` (the
    configured cap), nesting deeper than ``MAX_NESTING``, a core field that is not a string, or an
    added column whose value shares no type with the same column in the other rows (the most common
    type wins: an ``int`` among strings is the odd one out).
    """
    bad: dict[int, str] = {}
    for i, row in enumerate(rows):
        problem = _row_problem(row, max_bytes)
        if problem:
            bad[i] = problem
    extra = list(dict.fromkeys(k for i, row in enumerate(rows) if i not in bad for k in row if k not in CORE_FIELDS))
    for col in extra:
        present = [i for i, row in enumerate(rows) if i not in bad and row.get(col) is not None]
        try:
            _column_array([rows[i][col] for i in present])
            continue
        except _ARROW_ERRORS:
            pass
        groups: dict[str, list[int]] = {}
        for i in present:
            try:
                groups.setdefault(str(_column_array([rows[i][col]]).type), []).append(i)
            except _ARROW_ERRORS as e:
                bad[i] = f"column '{col}' holds a value Arrow cannot store ({type(rows[i][col]).__name__}: {e})"
        accepted: list[int] = []
        main = ""
        for kind in sorted(groups, key=lambda k: -len(groups[k])):
            try:
                _column_array([rows[i][col] for i in accepted + groups[kind]])
                accepted += groups[kind]
                main = main or kind
            except _ARROW_ERRORS:
                bad.update({i: f"column '{col}' holds {kind} here, {main or 'another type'} in the rest of the shard" for i in groups[kind]})
    return dict(sorted(bad.items()))


def _storable_value(value: object, depth: int = 0) -> object:
    """Return ``value`` with strings repaired and clipped to what Arrow holds, nesting past ``MAX_NESTING`` as JSON text."""
    if isinstance(value, str):
        text = repair_text(value)[0]
        return text if len(text) * 4 <= ARROW_VALUE_LIMIT else text.encode("utf-8")[:ARROW_VALUE_LIMIT].decode("utf-8", "ignore")
    if isinstance(value, (dict, list, tuple)) and depth >= MAX_NESTING:
        return repair_text(json.dumps(value, ensure_ascii=False, default=str))[0]
    if isinstance(value, dict):
        return {_storable_value(str(k), depth + 1): _storable_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_storable_value(v, depth + 1) for v in value]
    return value


def _storable_row(row: Doc) -> Doc:
    """Return a row that can be written whatever it held: strings repaired, core fields as strings, meta an object.

    The last line of defence for rows that reach a writer unchecked (a rejected row keeps the document
    that could not be stored; a source stage may write without the step loop's guard). What was changed
    is listed in ``meta["repairs"]`` as ``write:<field>``.
    """
    out: Doc = {}
    changed: list[str] = []
    for field, value in row.items():
        name = _storable_value(str(field))
        if field in STRING_FIELDS and value is not None and not isinstance(value, str):
            fixed = _storable_value(json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, bytes) else value.decode("utf-8", "replace"))
        elif field == "meta":
            try:
                fixed = _storable_value(value if isinstance(value, dict) else {"value": value} if value is not None else {})
                _meta_json(fixed)
            except _ARROW_ERRORS:
                fixed = {"value": _storable_value(repr(value))}
        else:
            fixed = _storable_value(value)
        if fixed != value or name != field:
            changed.append(f"write:{name}")
        out[name] = fixed
    if changed:
        meta = out.get("meta") if isinstance(out.get("meta"), dict) else {}
        earlier = meta.get("repairs") if isinstance(meta.get("repairs"), list) else []
        out["meta"] = {**meta, "repairs": sorted({*map(str, earlier), *changed})}
    return out


def _build_table(rows: list[Doc]) -> pa.Table:
    columns: list[str] = list(CORE_FIELDS)
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    data: dict[str, object] = {}
    for col in columns:
        values = [row.get(col) for row in rows]
        if col == "meta":
            data[col] = pa.array([_meta_json(m) for m in values], type=pa.string())
        elif col in STRING_FIELDS:
            data[col] = pa.array(values, type=pa.string())
        else:
            data[col] = _column_array(values)
    return pa.table(data)


def _to_table(rows: list[Doc]) -> pa.Table:
    """Return rows as one Arrow table; rows that cannot be stored as they are are made storable, never raise.

    The step loop rejects unstorable kept rows before they get here (``unwritable_rows``), so this
    fallback changes only rejected rows and rows written without the loop; a column whose values still
    share no type is stored as JSON text.
    """
    try:
        return _build_table(rows)
    except _ARROW_ERRORS:
        pass
    bad = unwritable_rows(rows, ARROW_VALUE_LIMIT)
    rows = [_storable_row(row) if i in bad else row for i, row in enumerate(rows)]
    try:
        return _build_table(rows)
    except _ARROW_ERRORS:
        pass
    columns = list(dict.fromkeys(k for row in rows for k in row if k not in CORE_FIELDS))
    for col in columns:
        try:
            _column_array([row.get(col) for row in rows])
        except _ARROW_ERRORS:
            rows = [{**row, col: json.dumps(row[col], ensure_ascii=False, default=str)} if row.get(col) is not None else row for row in rows]
    return _build_table(rows)


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

    def done_marker(self, name: str, digest: str) -> dict | None:
        """Return the marker's payload of a complete shard made under ``digest`` (see ``stage_digest``), else None."""
        if not self.shard(name).exists() or not self.rejected(name).exists():
            return None
        marker = self.marker(name)
        return read_done(marker.parent, digest, name=marker.name)

    def commit_shard(self, name: str, kept: list[Doc], rejected: list[Doc], payload: dict, digest: str = "") -> None:
        """Write a shard's kept and rejected records, then its marker (the marker last: it means complete).

        The marker is the shard's done-record: ``digest`` (what the shard was made from, see ``stage_digest``)
        and ``payload`` (its stats). The old marker goes first, so a shard being rewritten is never complete
        with the wrong rows; both files are written in full before either is renamed, so a write that fails
        (a full disk) leaves no new file under a real name.
        """
        paths = (self.shard(name), self.rejected(name))
        marker = self.marker(name)
        clear_done(marker.parent, name=marker.name)
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
        write_done(marker.parent, digest, payload, name=marker.name)

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
