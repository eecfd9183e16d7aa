"""The record every stage reads and writes, the rejection it may return instead, and batch helpers.

A document is one dict: ``id`` (stable hash), ``source`` (the unit of mixture weighting), ``url``,
``text`` and ``meta`` (a dict: title, charset, fetched_at, content_type, …). Stages add columns and
never rename them. A step that drops a document returns a ``Reject`` with a snake_case reason; the
step loop turns it into a rejected row that keeps the whole document plus ``stage``, ``reason`` and
``detail``, so nothing is dropped silently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Doc = dict[str, Any]

CORE_FIELDS = ("id", "source", "url", "text", "meta")
REJECT_FIELDS = ("stage", "reason", "detail")


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


def coerce_doc(row: Any, line: int | None = None) -> Doc:
    """Return ``row`` as a record, filling ``id``/``source``/``meta`` defaults; raise RecordError naming the bad field."""
    where = f"line {line}: " if line is not None else ""
    if not isinstance(row, dict):
        raise RecordError(f"{where}a record must be a JSON object, got {type(row).__name__}")
    doc = dict(row)
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
        meta = json.loads(meta)
    if not isinstance(meta, dict):
        raise RecordError(f"{where}field 'meta' must be an object, got {type(meta).__name__}")
    doc["meta"] = meta
    return doc


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


def read_jsonl(path: str | Path) -> tuple[list[Doc], list[Doc]]:
    """Return (records, bad rows) of a JSONL file; a bad row is quarantined with reason ``invalid_record``."""
    docs: list[Doc] = []
    bad: list[Doc] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                docs.append(coerce_doc(json.loads(line), line=n))
            except (json.JSONDecodeError, RecordError) as e:
                raw = {"id": doc_id(f"{path}:{n}"), "source": "", "url": "", "text": line.rstrip("\n"), "meta": {"line": n}}
                bad.append(reject_row(raw, "read", Reject("invalid_record", str(e))))
    return docs, bad


def write_jsonl(path: str | Path, rows: Iterable[Doc]) -> int:
    """Write rows as UTF-8 JSONL (Chinese kept readable) and return how many were written."""
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            n += 1
    return n
