"""What the mixture stage shows a person: the share of each source before and after mixing, and DoReMi's weights per step.

Figures use matplotlib's object API (``matplotlib.figure.Figure``: no pyplot global state, safe off the main
thread); the caller saves or logs them. Nothing here talks to MLflow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TABLE_COLUMNS = ("source", "weight", "docs_before", "docs_after", "copies", "chars_before", "chars_after", "share_before", "share_after", "epochs", "warning")


def table_rows(table: Sequence[dict]) -> list[dict]:
    """Return the mixture table's rows with their columns in display order (a Prefect table artifact, an MLflow table)."""
    return [{c: row.get(c) for c in TABLE_COLUMNS} for row in table]


def mixture_chart(table: Sequence[dict]):
    """Return a Figure: each source's share of the characters before and after mixing, side by side bars."""
    from matplotlib.figure import Figure

    sources = [r["source"] or "(none)" for r in table]
    x = np.arange(len(sources))
    fig = Figure(figsize=(max(4.0, 0.9 * len(sources) + 2), 3.6))
    ax = fig.add_subplot()
    before = ax.bar(x - 0.2, [r["share_before"] for r in table], 0.4, label="before", color="#9bbbd9")
    after = ax.bar(x + 0.2, [r["share_after"] for r in table], 0.4, label="after", color="#4f81bd")
    ax.bar_label(before, labels=[f"{r['share_before']:.0%}" for r in table], fontsize=7)
    ax.bar_label(after, labels=[f"{r['share_after']:.0%}\n×{r['epochs']:g}" for r in table], fontsize=7)
    ax.set_xticks(x, sources)
    ax.set_ylabel("share of characters")
    ax.set_ylim(0, max([0.1, *(r["share_before"] for r in table), *(r["share_after"] for r in table)]) * 1.3)
    ax.set_title("mixture by source (after: ×epochs over the source's text)")
    ax.legend()
    fig.tight_layout()
    return fig


def weights_chart(history: Sequence[dict[str, float]], average: dict[str, float] | None = None):
    """Return a Figure: each source's DoReMi weight after every proxy step, with the averaged weight as a dashed line."""
    from matplotlib.figure import Figure

    sources = sorted({s for step in history for s in step})
    fig = Figure(figsize=(6, 3.6))
    ax = fig.add_subplot()
    steps = np.arange(1, len(history) + 1)
    for source in sources:
        line = ax.plot(steps, [step.get(source, 0.0) for step in history], label=source, linewidth=1.2)[0]
        if average and source in average:
            ax.axhline(average[source], color=line.get_color(), linestyle="--", linewidth=1)
    ax.set_xlabel("proxy step")
    ax.set_ylabel("weight α")
    ax.set_ylim(0, 1)
    ax.set_title("DoReMi weights per step (dashed: the average, the mixture used)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
