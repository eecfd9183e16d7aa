"""The mixture stage's steps: apply a plan's copies to a shard, or plan and apply over one in-memory list.

A document with 0 copies leaves as ``mixture_downsampled`` (the detail names its source); every other one is
kept once with a new column ``mix_copies`` (≥ 1), which the pack stage honours by packing its tokens that many
times. Documents are never duplicated as rows: kept + rejected = input, and the ledger balances.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, get_args

from tasks.mixture.config import MixtureConfig
from tasks.mixture.plan import DocColumns, MixturePlan, plan_records
from tasks.records import Doc, Reject
from tasks.steps import ShardResult, Step, run_steps

STAGE = "mixture"

MixtureReason = Literal[
    "mixture_downsampled",  # its source is over its share of the budget and its hash rank fell outside the kept prefix
]
MIXTURE_REASONS: tuple[str, ...] = get_args(MixtureReason)


@dataclass
class MixtureFilter:
    """Batch step: the planned copies of one shard's documents, in shard order (ids checked against the plan)."""

    ids: list[str]
    copies: list[int]
    name: str = "mixture"

    def __call__(self, docs: list[Doc]) -> list[Doc | Reject]:
        if [d.get("id") or "" for d in docs] != self.ids:
            raise ValueError(f"the shard's {len(docs)} documents are not the {len(self.ids)} the mixture plan was made from: plan again")
        return [
            {**doc, "mix_copies": int(n)} if n > 0 else Reject("mixture_downsampled", doc.get("source") or "")
            for doc, n in zip(docs, self.copies)
        ]

    def tally(self, results: list[Doc | Reject]) -> dict[str, int]:
        """Return documents kept and copies, overall and per source, and the characters of the mixture."""
        counts: Counter[str] = Counter()
        for r in results:
            if isinstance(r, Reject):
                counts[f"dropped.{r.detail}"] += 1
                continue
            source = r.get("source") or ""
            counts[f"kept.{source}"] += 1
            counts[f"copies.{source}"] += r["mix_copies"]
            counts["copies"] += r["mix_copies"]
            counts["chars_mixed"] += len(r.get("text") or "") * r["mix_copies"]
        return dict(counts)


@dataclass
class BatchMixer:
    """Batch step: plan the mixture of one in-memory list (``liandan step mixture``) and apply it; keeps the plan."""

    cfg: MixtureConfig
    name: str = "mixture"
    plan: MixturePlan | None = field(default=None, init=False)

    def __call__(self, docs: list[Doc]) -> list[Doc | Reject]:
        cols = DocColumns.from_docs(docs)
        copies, self.plan = plan_records(cols, self.cfg, lambda rows: [docs[i].get("text") or "" for i in rows.tolist()])
        return MixtureFilter(cols.ids, copies.tolist())(docs)

    def tally(self, results: list[Doc | Reject]) -> dict[str, int]:
        return MixtureFilter([], []).tally(results)


def build_steps(cfg: MixtureConfig) -> list[Step]:
    """Return the stage's steps for one in-memory list of records (``liandan step mixture``)."""
    return [BatchMixer(cfg)]


def mix_records(docs: list[Doc], cfg: MixtureConfig) -> ShardResult:
    """Return kept rows (with ``mix_copies``), rejected rows and stats of mixing one in-memory list of records."""
    return run_steps(STAGE, build_steps(cfg), docs)
