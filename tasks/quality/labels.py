"""Labelled examples for the quality classifier: hand labels from JSONL, weak labels from the clean stage.

A labelled example is a dict ``{"text", "label", "reason", "origin"}``: label is high / medium / low, reason
says why in a few words, origin where it came from (the file name, ``weak``, ``llm``). Weak labels read
what the clean stage already decided: a document it rejected as spam, gibberish or repetition is a ``low``
example for free; kept documents of a trusted source may be given a label by config.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from tasks.quality.config import LABELS, QualityLabel
from tasks.store import StageDir

Example = dict[str, str]


class LabelError(ValueError):
    """A labelled row that cannot be used: the message names the file, the line and the field."""


def read_labelled(path: Path) -> list[Example]:
    """Return the examples of a labelled JSONL file ({text, label, reason} per line); raise LabelError on a bad row."""
    path = Path(path)
    out: list[Example] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise LabelError(f"{path}:{n}: not JSON ({e})") from e
            if not isinstance(row, dict):
                raise LabelError(f"{path}:{n}: a labelled row must be a JSON object")
            text, label = row.get("text"), row.get("label")
            if not isinstance(text, str) or not text.strip():
                raise LabelError(f"{path}:{n}: 'text' must be a non-empty string")
            if label not in LABELS:
                raise LabelError(f"{path}:{n}: 'label' must be one of {list(LABELS)}, got {label!r}")
            out.append({"text": text, "label": label, "reason": str(row.get("reason", "")), "origin": path.name})
    return out


def _columns(path: Path, wanted: Sequence[str]) -> dict[str, list]:
    """Return the wanted columns of a shard that has them (an empty shard has only the core columns)."""
    names = set(pq.read_schema(path).names)
    if not set(wanted) <= names:
        return {col: [] for col in wanted}
    return pq.read_table(path, columns=list(wanted)).to_pydict()  # not meta: its JSON is not needed


def weak_labels(
    stage_dirs: Iterable[Path],
    low_reasons: Sequence[str],
    source_labels: Mapping[str, QualityLabel] | None = None,
    max_per_label: int = 2000,
    seed: int = 0,
    min_chars: int = 20,
) -> list[Example]:
    """Return weak examples from stage folders: rejected rows whose reason is in ``low_reasons`` as ``low``,
    kept rows of a source in ``source_labels`` with its label; at most ``max_per_label`` per label (seeded sample).
    """
    source_labels = dict(source_labels or {})
    wanted = set(low_reasons)
    by_label: dict[str, list[Example]] = {label: [] for label in LABELS}
    seen: set[str] = set()

    def add(text: str, label: str, reason: str, source: str = "") -> None:
        if text and len(text) >= min_chars and text not in seen:
            seen.add(text)
            example = {"text": text, "label": label, "reason": reason, "origin": "weak"}
            by_label[label].append(example | {"source": source} if source else example)

    for folder in stage_dirs:
        stage = StageDir(Path(folder))
        for path in stage.rejected_shards():
            cols = _columns(path, ("text", "reason", "detail"))
            for text, reason, detail in zip(cols["text"], cols["reason"], cols["detail"]):
                if reason in wanted:
                    add(text, "low", f"{stage.root.name} rejected it: {reason} ({detail})")
        if source_labels:
            for path in stage.shards():
                cols = _columns(path, ("text", "source"))
                for text, source in zip(cols["text"], cols["source"]):
                    if source in source_labels:
                        add(text, source_labels[source], f"kept by {stage.root.name}, source {source}", source)
    rng = np.random.default_rng(seed)
    out: list[Example] = []
    for label in LABELS:
        rows = by_label[label]
        if len(rows) > max_per_label:
            keep = np.sort(rng.choice(len(rows), size=max_per_label, replace=False))
            rows = [rows[i] for i in keep]
        out.extend(rows)
    return out


def kept_texts(stage_dirs: Iterable[Path], sources: Sequence[str], min_chars: int = 20) -> list[str]:
    """Return the kept documents' texts of the given sources in stage folders (the trusted text for the reference LM)."""
    wanted = set(sources)
    texts: list[str] = []
    if not wanted:
        return texts
    for folder in stage_dirs:
        for path in StageDir(Path(folder)).shards():
            cols = _columns(path, ("text", "source"))
            texts.extend(t for t, s in zip(cols["text"], cols["source"]) if s in wanted and t and len(t) >= min_chars)
    return texts


def unlabelled_texts(stage_dirs: Iterable[Path], max_docs: int, seed: int = 0, min_chars: int = 20) -> list[dict]:
    """Return up to ``max_docs`` kept documents ({id, source, text}) of stage folders: a seeded sample for the annotator."""
    docs: list[dict] = []
    for folder in stage_dirs:
        for path in StageDir(Path(folder)).shards():
            cols = _columns(path, ("id", "source", "text"))
            rows = zip(cols["id"], cols["source"], cols["text"])
            docs.extend({"id": i, "source": s, "text": t} for i, s, t in rows if t and len(t) >= min_chars)
    if len(docs) > max_docs:
        keep = np.sort(np.random.default_rng(seed).choice(len(docs), size=max_docs, replace=False))
        docs = [docs[i] for i in keep]
    return docs
