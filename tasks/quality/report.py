"""What the quality stage shows a person: the confusion matrix, the score histogram by tier and by source, the
per-source tier table, and the training labels' counts per source as metrics.

Figures use matplotlib's object API (``matplotlib.figure.Figure``: no pyplot global state, safe off the main
thread); the caller saves or logs them. Nothing here talks to MLflow.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from tasks.quality.config import LABELS
from tasks.quality.stage import SCORE, TIER

TIER_COLOURS = {"high": "#4f81bd", "medium": "#f2a93b", "low": "#c0504d"}


def confusion_figure(confusion: list[list[int]], title: str = "held-out confusion matrix"):
    """Return a Figure of a confusion matrix (rows: true label, columns: predicted; LABELS order) with counts."""
    from matplotlib.figure import Figure

    matrix = np.asarray(confusion)
    fig = Figure(figsize=(4.2, 3.8))
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(LABELS)), LABELS)
    ax.set_yticks(range(len(LABELS)), LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            colour = "white" if matrix[i, j] > threshold else "black"
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=colour)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def score_histogram(scores: Iterable[float], tiers: Iterable[str], high_cutoff: float, low_cutoff: float, bins: int = 20):
    """Return a Figure: stacked histogram of quality scores coloured by tier, with the two cut-offs marked."""
    from matplotlib.figure import Figure

    scores, tiers = np.asarray(list(scores), dtype=float), np.asarray(list(tiers))
    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot()
    groups = [scores[tiers == t] for t in LABELS]
    ax.hist(groups, bins=np.linspace(0, 1, bins + 1), stacked=True, color=[TIER_COLOURS[t] for t in LABELS],
            label=[f"{t} ({len(g)})" for t, g in zip(LABELS, groups)])
    for cut in (low_cutoff, high_cutoff):
        ax.axvline(cut, color="black", linestyle="--", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("quality_score")
    ax.set_ylabel("documents")
    ax.set_title(f"quality scores of {len(scores)} documents")
    ax.legend()
    fig.tight_layout()
    return fig


def tier_table(counters: dict[str, int]) -> list[dict]:
    """Return one row per source from a stage's ``source.<source>.<tier>`` counters: source, high, medium, low,
    total, share (the source's share of all documents) and high_share (its documents' share in tier high).

    >>> tier_table({"source.news.high": 3, "source.news.low": 1, "source.forum.medium": 4, "tier.high": 3})
    [{'source': 'forum', 'high': 0, 'medium': 4, 'low': 0, 'total': 4, 'share': 0.5, 'high_share': 0.0}, \
{'source': 'news', 'high': 3, 'medium': 0, 'low': 1, 'total': 4, 'share': 0.5, 'high_share': 0.75}]
    """
    per_source: dict[str, dict[str, int]] = {}
    for key, n in counters.items():
        if not key.startswith("source."):
            continue
        source, tier = key[len("source.") :].rsplit(".", 1)  # a source name may hold dots; a tier does not
        if tier in LABELS:
            per_source.setdefault(source, dict.fromkeys(LABELS, 0))[tier] += int(n)
    grand = sum(sum(t.values()) for t in per_source.values())
    rows = []
    for source in sorted(per_source):
        tiers = per_source[source]
        total = sum(tiers.values())
        rows.append({
            "source": source,
            **tiers,
            "total": total,
            "share": round(total / grand, 4) if grand else 0.0,
            "high_share": round(tiers["high"] / total, 4) if total else 0.0,
        })
    return rows


def read_scores(paths: Iterable[Path]) -> tuple[list[float], list[str]]:
    """Return (scores, tiers) from scored shards, kept and rejected alike (only the two columns are read)."""
    scores: list[float] = []
    tiers: list[str] = []
    for path in paths:
        if not {SCORE, TIER} <= set(pq.read_schema(path).names):
            continue  # an empty shard has only the core columns
        table = pq.read_table(path, columns=[SCORE, TIER])
        scores += table.column(SCORE).to_pylist()
        tiers += table.column(TIER).to_pylist()
    return scores, tiers


def label_source_metrics(summary: dict) -> dict[str, float]:
    """Return the training examples per label source and label as metrics: ``labels.<origin>.<label>``, and
    ``labels.<origin>`` in all.

    >>> label_source_metrics({"label_sources": {"reference": {"high": 400}, "seed.jsonl": {"high": 2, "low": 3}}})
    {'labels.reference.high': 400.0, 'labels.reference': 400.0, 'labels.seed.jsonl.high': 2.0, 'labels.seed.jsonl.low': 3.0, \
'labels.seed.jsonl': 5.0}
    """
    out: dict[str, float] = {}
    for origin, counts in sorted(summary.get("label_sources", {}).items()):
        for label in LABELS:
            if label in counts:
                out[f"labels.{origin}.{label}"] = float(counts[label])
        out[f"labels.{origin}"] = float(sum(counts.values()))
    return out


def source_histogram(scores: Iterable[float], sources: Iterable[str], high_cutoff: float, low_cutoff: float, bins: int = 20):
    """Return a Figure: one row per source, the histogram of its documents' quality scores, the cut-offs marked."""
    from matplotlib.figure import Figure

    scores, sources = np.asarray(list(scores), dtype=float), np.asarray(list(sources), dtype=object)
    names = sorted(set(sources.tolist())) or ["(none)"]
    fig = Figure(figsize=(6, 1.3 + 1.1 * len(names)))
    axes = fig.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
    for ax, name in zip(axes, names):
        mine = scores[sources == name]
        ax.hist(mine, bins=np.linspace(0, 1, bins + 1), color="#4f81bd")
        for cut in (low_cutoff, high_cutoff):
            ax.axvline(cut, color="black", linestyle="--", linewidth=1)
        ax.set_ylabel(f"{name}\n({len(mine)})", rotation=0, ha="right", va="center")
    axes[-1].set_xlim(0, 1)
    axes[-1].set_xlabel("quality_score")
    axes[0].set_title("quality scores per source")
    fig.tight_layout()
    return fig


def read_source_scores(paths: Iterable[Path]) -> tuple[list[float], list[str]]:
    """Return (scores, sources) from scored shards, kept and rejected alike (only the two columns are read)."""
    scores: list[float] = []
    sources: list[str] = []
    for path in paths:
        if not {SCORE, "source"} <= set(pq.read_schema(path).names):
            continue  # an empty shard has only the core columns
        table = pq.read_table(path, columns=[SCORE, "source"])
        scores += table.column(SCORE).to_pylist()
        sources += [s or "unknown" for s in table.column("source").to_pylist()]
    return scores, sources
