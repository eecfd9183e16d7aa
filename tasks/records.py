r"""The record every stage reads and writes, the rejection it may return instead, and batch helpers.

A document is one dict: ``id`` (stable hash), ``source`` (the unit of mixture weighting), ``url``,
``text`` and ``meta`` (a dict: title, charset, fetched_at, content_type, …). Stages add columns and
never rename them. A step that drops a document returns a ``Reject`` with a snake_case reason; the
step loop turns it into a rejected row that keeps the whole document plus ``stage``, ``reason`` and
``detail``, so nothing is dropped silently.

Hostile input never fails a reader: every line or row is a record or an ``invalid_record`` reject
whose detail names the line ("line 3: Expecting value at column 1"). Text is repaired before anything
writes it, by one function every reader uses (``repair_text``; ``coerce_doc`` applies it to every
string of a record, keys and ``meta`` included):

- invalid UTF-8 is decoded with U+FFFD in place of each bad byte sequence and flagged
  (``line:invalid_utf8`` in ``meta["repairs"]``), not quarantined: one bad byte in a long page should
  not lose the page, and clean's ``mojibake`` filter rejects the text whose replacement characters
  make it unreadable; a line that is not JSON after decoding is quarantined as usual;
- a lone surrogate (``"\ud800"``, which JSON allows and UTF-8 cannot encode) becomes U+FFFD
  (``lone_surrogate``); a split pair that still forms a character is joined back;
- NUL and the other C0/C1 control characters except tab, line feed, form feed and carriage return are
  removed (``control_char``), as ftfy's ``remove_control_chars`` does: they carry no text, and NUL
  ends strings in the C libraries downstream.

Flags land in ``meta["repairs"]`` as ``"<field>:<flag>"``, so a repaired record stays traceable.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal, get_args

Doc = dict[str, Any]

CORE_FIELDS = ("id", "source", "url", "text", "meta")
REJECT_FIELDS = ("stage", "reason", "detail")

RecordReason = Literal[
    "invalid_record",  # a line or row of the input that is not a record (not JSON, wrong types, no text)
    "unwritable_record",  # a record a stage kept that cannot be stored (a field over the size cap, a clashing column type)
    "step_error",  # a step raised on this record alone (a column of the wrong type from outside the chain)
]
RECORD_REASONS: tuple[str, ...] = get_args(RecordReason)  # any stage may reject with these, besides its own reasons

MAX_FIELD_BYTES = 64 << 20  # one value's UTF-8 size cap (64 MiB): far above any document, far below Arrow's 2 GiB per array


@dataclass(frozen=True)
class Reject:
    """A step's verdict that a document leaves the stage, and why."""

    reason: str  # snake_case, one of the stage's Literal reasons
    detail: str = ""  # free text for a human: the status code, the exception, the matched rule


def doc_id(key: str) -> str:
    """Return the stable 16-hex-digit id of a document keyed by its URL (or its text when it has none)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def make_doc(url: str, text: str = "", source: str = "web", meta: dict | None = None, **columns: Any) -> Doc:
    """Return a new record with its id derived from the URL."""
    return {"id": doc_id(url or text), "source": source, "url": url, "text": text, "meta": dict(meta or {}), **columns}


class RecordError(ValueError):
    """A row that cannot be a record: the message names the field."""


TextFlag = Literal["invalid_utf8", "lone_surrogate", "control_char"]

# C0 controls but tab, LF, FF, CR; DEL; C1 controls (ftfy's remove_control_chars keeps the same four)
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def repair_text(value: str) -> tuple[str, list[TextFlag]]:
    r"""Return ``value`` safe to encode and store, and the flags of what was repaired (empty: unchanged).

    >>> repair_text("正文\ud800\x00结束")
    ('正文�结束', ['lone_surrogate', 'control_char'])
    """
    flags: list[TextFlag] = []
    if _SURROGATE.search(value):
        # a pair split into two code points joins back into its character; a lone half becomes U+FFFD
        value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        flags.append("lone_surrogate")
    if _CONTROL_CHARS.search(value):
        value = _CONTROL_CHARS.sub("", value)
        flags.append("control_char")
    return value, flags


def decode_line(raw: bytes) -> tuple[str, list[TextFlag]]:
    """Return the text of one input line decoded as UTF-8, bad byte sequences replaced by U+FFFD, and its flags."""
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError:
        return raw.decode("utf-8", "replace"), ["invalid_utf8"]


def _repair_value(value: Any, field: str, repairs: set[str]) -> Any:
    """Return ``value`` with every string in it (dict keys included) repaired; record the flags under ``field``."""
    if isinstance(value, str):
        fixed, flags = repair_text(value)
        repairs.update(f"{field}:{flag}" for flag in flags)
        return fixed
    if isinstance(value, dict):
        return {_repair_value(str(k), field, repairs): _repair_value(v, field, repairs) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_repair_value(v, field, repairs) for v in value]
    return value


def coerce_doc(row: Any, line: int | None = None, *, where: str | None = None, flags: Iterable[str] = ()) -> Doc:
    """Return ``row`` as a record with every string repaired and ``id``/``source``/``meta`` defaults filled.

    Raises RecordError naming the bad field, prefixed by ``where`` ("row 7 of a.parquet") or ``line``.
    ``flags`` are repairs made before the row was parsed ("line:invalid_utf8"); they join the record's
    own in ``meta["repairs"]``.
    """
    where = f"{where}: " if where else f"line {line}: " if line is not None else ""
    if not isinstance(row, dict):
        raise RecordError(f"{where}a record must be a JSON object, got {type(row).__name__}")
    repairs: set[str] = set(flags)
    doc = {}
    for key, value in row.items():
        name = _repair_value(str(key), "key", repairs)
        doc[name] = _repair_value(value, name, repairs)
    for field in ("url", "text", "source", "id"):
        if field in doc and doc[field] is not None and not isinstance(doc[field], str):
            raise RecordError(f"{where}field '{field}' must be a string, got {type(doc[field]).__name__}")
    doc.setdefault("url", "")
    doc.setdefault("text", "")
    doc["url"] = doc["url"] or ""
    doc["text"] = doc["text"] or ""
    if not doc["url"] and not doc["text"]:
        raise RecordError(f"{where}a record needs a 'url' or a 'text'")
    doc["source"] = doc.get("source") or "web"
    doc["id"] = doc.get("id") or doc_id(doc["url"] or doc["text"])
    meta = doc.get("meta") or {}
    if isinstance(meta, str):
        try:
            meta = _repair_value(json.loads(meta, strict=False), "meta", repairs)
        except (ValueError, RecursionError) as e:
            raise RecordError(f"{where}field 'meta' is a string but not JSON: {e}") from None
    if not isinstance(meta, dict):
        raise RecordError(f"{where}field 'meta' must be an object, got {type(meta).__name__}")
    if repairs:
        earlier = meta.get("repairs")
        meta = {**meta, "repairs": sorted(repairs | set(earlier if isinstance(earlier, list) else []))}
    doc["meta"] = meta
    return doc


def _clip(text: str, max_bytes: int) -> str:
    """Return ``text`` cut to at most ``max_bytes`` of UTF-8 (on a character boundary)."""
    return text if len(text) * 4 <= max_bytes else text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def invalid_record(origin: str, where: str, raw: str, error: str, max_bytes: int = MAX_FIELD_BYTES, line: int | None = None) -> Doc:
    """Return the ``invalid_record`` reject of one bad input line or row: ``raw`` kept (repaired, clipped) as its text.

    ``where`` names the spot in the input ("line 3", "row 7", "record at offset 1024"); the detail
    starts with it, and ``meta`` keeps ``input``, ``where`` (and ``line`` when given) for a human to find it.
    """
    text, _ = repair_text(raw)
    clipped = _clip(text, max_bytes)
    detail = f"{where}: {error}" + (f" (kept the first {max_bytes} bytes of {len(text.encode('utf-8'))})" if clipped != text else "")
    row = {"id": doc_id(f"{origin}:{where}"), "source": "", "url": "", "text": clipped, "meta": {"input": origin, "where": where, **({"line": line} if line is not None else {})}}
    return reject_row(row, "read", Reject("invalid_record", repair_text(detail)[0]))


def parse_jsonl_line(raw: bytes, n: int, origin: str, max_bytes: int = MAX_FIELD_BYTES) -> tuple[Doc | None, Doc | None]:
    """Return (record, None) for a good JSONL line ``n`` (1-based), or (None, its ``invalid_record`` reject).

    The line is decoded with replacement (flagged), parsed leniently (raw control characters inside
    strings are allowed, then removed by the repair) and coerced; a line over ``max_bytes`` is not
    parsed at all.
    """
    where = f"line {n}"
    if len(raw) > max_bytes:
        return None, invalid_record(origin, where, raw[:max_bytes].decode("utf-8", "ignore"), f"{len(raw)} bytes, over the {max_bytes}-byte cap", max_bytes, n)
    text, flags = decode_line(raw)
    text = text.removeprefix("\ufeff")  # a UTF-8 byte-order mark some editors write (also mid-file, where files were joined)
    bad_utf8 = f"invalid UTF-8 ({text.count(chr(0xFFFD))} characters replaced); " if flags else ""
    try:
        row = json.loads(text, strict=False)
    except json.JSONDecodeError as e:
        return None, invalid_record(origin, where, text.rstrip("\r\n"), f"{bad_utf8}{e.msg} at column {e.colno}", max_bytes, n)
    except (ValueError, RecursionError) as e:  # nesting too deep for the parser, an integer too long to convert
        return None, invalid_record(origin, where, text.rstrip("\r\n"), f"{bad_utf8}not a JSON value: {type(e).__name__}", max_bytes, n)
    try:
        return coerce_doc(row, n, flags=[f"line:{f}" for f in flags]), None
    except RecordError as e:
        message = str(e).removeprefix(f"{where}: ")
        return None, invalid_record(origin, where, text.rstrip("\r\n"), f"{bad_utf8}{message}", max_bytes, n)


def iter_jsonl(f: BinaryIO, origin: str, max_bytes: int = MAX_FIELD_BYTES) -> Iterator[tuple[Doc | None, Doc | None]]:
    """Yield (record, None) or (None, reject) for each non-blank line of a binary JSONL stream, in order.

    Blank lines are not records and yield nothing; a ``.jsonl.gz`` reader passes ``gzip.open(path)``.
    """
    for n, raw in enumerate(f, start=1):
        if raw.strip():
            yield parse_jsonl_line(raw, n, origin, max_bytes)


def reject_row(doc: Doc, stage: str, reject: Reject) -> Doc:
    """Return the rejected row for ``doc``: the document itself plus stage, reason and detail."""
    return {**doc, "stage": stage, "reason": reject.reason, "detail": reject.detail}


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Yield lists of at most ``size`` items, in order."""
    if size < 1:
        raise ValueError("batch size must be >= 1")
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def read_jsonl(path: str | Path, max_bytes: int = MAX_FIELD_BYTES) -> tuple[list[Doc], list[Doc]]:
    """Return (records, bad rows) of a JSONL file; a bad row is quarantined with reason ``invalid_record``."""
    docs: list[Doc] = []
    bad: list[Doc] = []
    with open(path, "rb") as f:
        for doc, reject in iter_jsonl(f, str(path), max_bytes):
            if doc is not None:
                docs.append(doc)
            else:
                bad.append(reject)
    return docs, bad


def _plain_json(value: Any, depth: int = 0) -> Any:
    """Return ``value`` as strict JSON can hold it: strings repaired, NaN/inf as null, keys as strings, deep nesting as text."""
    if isinstance(value, str):
        return repair_text(value)[0]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dict, list, tuple)) and depth >= 64:
        return repair_text(repr(value))[0]
    if isinstance(value, dict):
        return {repair_text(str(k))[0]: _plain_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_json(v, depth + 1) for v in value]
    if value is None or isinstance(value, (bool, int)):
        return value
    return repair_text(str(value))[0]


def json_line(row: Doc) -> str:
    """Return ``row`` as one line of strict JSON that encodes as UTF-8, whatever it holds (Chinese kept readable)."""
    try:
        line = json.dumps(row, ensure_ascii=False, default=str, allow_nan=False)
        line.encode("utf-8")
        return line
    except (ValueError, TypeError, RecursionError, UnicodeEncodeError):  # NaN, a lone surrogate, a non-string key, a cycle
        return json.dumps(_plain_json(row), ensure_ascii=False)


def write_jsonl(path: str | Path, rows: Iterable[Doc]) -> int:
    """Write rows as UTF-8 JSONL (Chinese kept readable) and return how many were written; no row can fail the file."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json_line(row) + "\n")
            n += 1
    return n
