"""What the clean stage shows a person re-tuning it: one histogram per stored signal with its threshold drawn,
and sample lines of the documents each reason rejected, de-identified before they leave the stage.

The histograms are read back from the ``signals`` column of the stage's shards, kept and rejected alike
(score first, decide later: nothing is recomputed), and split into kept documents, documents this
signal's filter rejected, and documents another rule rejected, so the cut-off's effect is visible.
Clean runs before de-identification, so every sample line (and its reject detail) passes through the
deid masker (``mask_sample_lines``: identifiers, addresses and person names) before it is returned.
Figures use matplotlib's object API (no pyplot global state, safe off the main thread); the caller logs them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from tasks.clean.config import SPAM_CATEGORIES, CleanConfig, FilterName
from tasks.clean.signals import DUP_NGRAMS, TOP_NGRAMS
from tasks.clean.stage import CLEAN_REASONS
from tasks.deid.config import DeidConfig
from tasks.deid.stage import mask_sample_lines

SAMPLE_LINES = 10  # per reject reason
_MAX_LINE_CHARS = 300
_POOL = 20  # candidate documents kept per wanted line: enough to choose from without reading every shard
_BINS = 30
SPAM_HITS = "spam_hits"  # derived: the category hits summed, what min_spam_hits is compared with
# Per-rule edit counts (removed_chars.url, changed_chars.nfkc …) are stored too, but no threshold reads them;
# their totals are the stage's counters.
_EDIT_PREFIXES = ("removed_chars.", "removed_lines.", "changed_chars.")

# signal -> (the filter that reads it, the reasons it rejects with)
_DECIDES: dict[str, tuple[FilterName, tuple[str, ...]]] = {
    "chatter_ratio": ("chatter", ("chatter",)),
    "n_chars": ("length", ("too_short",)),
    "han_ratio": ("lang", ("not_chinese",)),
    "bad_char_ratio": ("mojibake", ("mojibake",)),
    "spam_line_ratio": ("spam", ()),  # spam reasons are per category: filled in below
    "spam_density": ("spam", ()),
    SPAM_HITS: ("spam", ()),
    "spam_context": ("spam", ()),
    "char_entropy": ("entropy", ("low_entropy",)),
    "dup_line_char_ratio": ("repetition", ("repetitive_lines",)),
    "dup_sentence_char_ratio": ("repetition", ("repetitive_lines",)),
    "n_words": ("repetition", ("repetitive_ngrams",)),
    **{f"top_{n}gram_ratio": ("repetition", ("repetitive_ngrams",)) for n in TOP_NGRAMS},
    **{f"dup_{n}gram_ratio": ("repetition", ("repetitive_ngrams",)) for n in DUP_NGRAMS},
    "symbol_ratio": ("symbols", ("symbol_ratio",)),
    "stopword_ratio": ("stopwords", ("stopword_ratio_low", "stopword_ratio_high")),
}


def signal_thresholds(cfg: CleanConfig) -> dict[str, list[tuple[str, float]]]:
    """Return, per signal, the (config field, value) cut-offs a filter compares it with.

    >>> signal_thresholds(CleanConfig())["stopword_ratio"]
    [('min_stopword_ratio', 0.06), ('max_stopword_ratio', 0.7)]
    """
    out: dict[str, list[tuple[str, float]]] = {
        "chatter_ratio": [("max_chatter_ratio", cfg.max_chatter_ratio)],
        "n_chars": [("min_chars", cfg.min_chars)],
        "han_ratio": [("min_han_ratio", cfg.min_han_ratio)],
        "bad_char_ratio": [("max_bad_char_ratio", cfg.max_bad_char_ratio)],
        "spam_line_ratio": [("max_spam_line_ratio", cfg.max_spam_line_ratio)],
        "spam_density": [("max_spam_density", cfg.max_spam_density)],
        SPAM_HITS: [("min_spam_hits", cfg.min_spam_hits)],
        "spam_context": [("spam_context_guard", cfg.spam_context_guard)],
        "char_entropy": [("min_entropy", cfg.min_entropy)],  # short texts face min_entropy_share × log2(n_chars)
        "dup_line_char_ratio": [("max_dup_line_char_ratio", cfg.max_dup_line_char_ratio)],
        "dup_sentence_char_ratio": [("max_dup_sentence_char_ratio", cfg.max_dup_sentence_char_ratio)],
        "n_words": [("repetition_min_words", cfg.repetition_min_words)],
        "symbol_ratio": [("max_symbol_ratio", cfg.max_symbol_ratio)],
        "stopword_ratio": [("min_stopword_ratio", cfg.min_stopword_ratio), ("max_stopword_ratio", cfg.max_stopword_ratio)],
    }
    for i, n in enumerate(TOP_NGRAMS):
        out[f"top_{n}gram_ratio"] = [(f"max_top_ngram_ratios[{i}]", cfg.max_top_ngram_ratios[i])]
    for i, n in enumerate(DUP_NGRAMS):
        out[f"dup_{n}gram_ratio"] = [(f"max_dup_ngram_ratios[{i}]", cfg.max_dup_ngram_ratios[i])]
    return out


def read_signals(paths: Iterable[Path]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Return (signal name -> values, reason per row: "" when kept) over scored shards, kept and rejected alike.

    Only the ``signals`` and ``reason`` columns are read; rows without signals (rejected before scoring: empty,
    too_long, invalid_text) are left out. Per-rule edit counts are left out; ``spam_hits`` is added.
    """
    columns: dict[str, list[np.ndarray]] = {}
    reasons: list[np.ndarray] = []
    for path in paths:
        names = pq.read_schema(path).names
        if "signals" not in names:
            continue  # an empty shard, or one whose rows all left before scoring
        table = pq.read_table(path, columns=["signals", *(["reason"] if "reason" in names else [])])
        signals = table.column("signals").combine_chunks()
        scored = signals.is_valid().to_numpy(zero_copy_only=False)
        if not scored.any():
            continue
        for field in signals.type:
            if not field.name.startswith(_EDIT_PREFIXES):
                values = signals.field(field.name).to_numpy(zero_copy_only=False).astype(float)
                columns.setdefault(field.name, []).append(values[scored])
        reason = table.column("reason").to_numpy(zero_copy_only=False) if "reason" in names else np.full(len(table), "")
        reasons.append(reason.astype(str)[scored])
    out = {name: np.concatenate(parts) for name, parts in columns.items()}
    n = sum(map(len, reasons))
    if any(len(v) != n for v in out.values()):  # a signal missing from some shards: not one schema
        out = {name: v for name, v in out.items() if len(v) == n}
    spam = [out[f"spam_{c}"] for c in SPAM_CATEGORIES if f"spam_{c}" in out]
    if spam:
        out[SPAM_HITS] = np.sum(spam, axis=0)
    return out, np.concatenate(reasons) if reasons else np.array([], dtype=str)


def signal_histogram(name: str, values: np.ndarray, reasons: np.ndarray, cfg: CleanConfig):
    """Return a Figure: stacked histogram of one signal (kept / rejected by its filter / rejected by another
    rule), with the config's cut-offs drawn as dashed lines and named in the legend."""
    from matplotlib.figure import Figure

    finite = np.isfinite(values)
    values, reasons = values[finite], reasons[finite]
    thresholds = signal_thresholds(cfg).get(name, [])
    filter_name, own = _DECIDES.get(name, (None, ()))
    if filter_name == "spam":
        own = tuple(f"spam_{c}" for c in cfg.spam_categories)
    kept = reasons == ""
    mine = np.isin(reasons, own) if own else np.zeros(len(reasons), dtype=bool)
    if filter_name is None:  # a signal no filter reads: kept against rejected
        groups, labels = [values[kept], values[~kept]], [f"kept ({kept.sum()})", f"rejected ({(~kept).sum()})"]
    else:
        other = ~kept & ~mine
        groups = [values[kept], values[mine], values[other]]
        labels = [f"kept ({kept.sum()})", f"rejected by {filter_name} ({mine.sum()})", f"rejected by another rule ({other.sum()})"]
    edges, log = _bin_edges(values, [v for _, v in thresholds])
    fig = Figure(figsize=(6, 3.6))
    fig.subplots_adjust(left=0.11, right=0.97, bottom=0.14, top=0.9)  # fixed margins: tight_layout costs ~0.3 s a figure
    ax = fig.add_subplot()
    # stacked as one step outline per group (ax.stairs): an ax.hist bar per bin and group is ~5x slower to draw
    below = np.zeros(len(edges) - 1)
    for group, label, colour in zip(groups, labels, ["#4f81bd", "#c0504d", "#bfbfbf"]):
        counts = below + np.histogram(group, bins=edges)[0]
        ax.stairs(counts, edges, baseline=below, fill=True, color=colour, label=label)
        below = counts
    off = filter_name is not None and filter_name not in cfg.filters
    for field, value in thresholds:
        ax.axvline(value, color="black", linestyle="--", linewidth=1.2, label=f"{field} = {value:g}" + (" (filter off)" if off else ""))
    if log:
        ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel(name)
    ax.set_ylabel("documents")
    ax.set_title(f"{name} of {len(values)} scored documents")
    ax.legend(fontsize="small", loc="upper right")  # "best" searches placements at every draw
    return fig


def _bin_edges(values: np.ndarray, marks: list[float]) -> tuple[np.ndarray, bool]:
    """Return histogram bin edges spanning the values and the cut-offs, log-spaced (True) for wide counts."""
    lo = min([float(values.min()) if len(values) else 0.0, *marks])
    hi = max([float(values.max()) if len(values) else 1.0, *marks])  # values are finite: see signal_histogram
    if hi <= lo:
        hi = lo + 1.0
    if lo >= 0 and hi > 1000:  # character and word counts span orders of magnitude
        return np.concatenate(([0.0], np.geomspace(1.0, hi * 1.01, _BINS))), True
    return np.linspace(lo, hi, _BINS + 1), False


def signal_histograms(paths: Iterable[Path], cfg: CleanConfig) -> dict[str, object]:
    """Return ``signals/<name>.png`` -> Figure for every stored signal of the shards (edit counts aside)."""
    columns, reasons = read_signals(paths)
    return {f"signals/{name}.png": signal_histogram(name, values, reasons, cfg) for name, values in sorted(columns.items())}


def rejected_samples(paths: Iterable[Path], n: int = SAMPLE_LINES, deid: DeidConfig | None = None) -> dict[str, list[dict]]:
    """Return, per reject reason, up to ``n`` rejected documents' first non-blank line and reject detail.

    Every line goes through ``mask_sample_lines`` (with ``deid``, the run's deid config) before it is returned.
    The details of the clean stage's own reasons are made of signal names and numbers and are returned as
    they are; any other detail (step_error quotes an exception, which may quote the text) is masked too.
    Documents are chosen in a fixed order (a hash of the line), so the same rejects give the same sample.
    """
    pool: dict[str, dict[str, str]] = {}
    wanted = n * _POOL
    for path in paths:
        if not {"reason", "detail", "text"} <= set(pq.read_schema(path).names):
            continue
        reasons = pq.read_table(path, columns=["reason"]).column("reason").to_pylist()
        room = {r: wanted - len(pool.get(r, ())) for r in set(reasons)}
        rows = []
        for i, r in enumerate(reasons):
            if room[r] > 0:
                rows.append(i)
                room[r] -= 1
        if not rows:
            continue  # every reason of this shard has its pool: its texts are not read
        table = pq.read_table(path, columns=["reason", "detail", "text"]).take(rows)
        for reason, detail, text in zip(*(table.column(c).to_pylist() for c in ("reason", "detail", "text"))):
            line = next((s.strip() for s in text.splitlines() if s.strip()), "") if isinstance(text, str) else ""
            pool.setdefault(reason, {}).setdefault(line[:_MAX_LINE_CHARS], detail or "")
    order = lambda line: hashlib.sha256(line.encode("utf-8", "surrogatepass")).digest()  # noqa: E731
    chosen = {reason: sorted(lines.items(), key=lambda kv: order(kv[0]))[:n] for reason, lines in sorted(pool.items())}
    to_mask = [text for reason, rows in chosen.items() for line, detail in rows
               for text in ((line,) if reason in CLEAN_REASONS else (line, detail))]
    masked = iter(mask_sample_lines(to_mask, deid) if to_mask else [])
    return {
        reason: [{"line": next(masked), "detail": detail if reason in CLEAN_REASONS else next(masked)} for _, detail in rows]
        for reason, rows in chosen.items()
    }
