"""The one loop that runs a list of steps over a shard of records.

A step is a named callable over a batch: ``step(docs) -> list[Doc | Reject]``, one result per input
document, in order (the document, possibly with new columns, or the reason it leaves). Per-document
rules are wrapped with ``per_doc``. The loop owns timing, counting by reason and building the
rejected rows, so a step holds only its rule — the shape of datatrove's ``PipelineStep``.

One hostile document never fails a shard: when a step raises on a batch, the loop runs it on each
document alone and rejects only those it still raises on (``step_error``, the exception in the
detail); when every document of a batch of two or more fails alone, the fault is the step's or the
machine's, not the data's, and the exception propagates. A kept document that cannot be stored is
rejected as ``unwritable_record`` before the shard is written.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tasks.records import MAX_FIELD_BYTES, Doc, Reject, reject_row, repair_text
from tasks.store import StageDir, file_digest, read_shard, stage_digest, unwritable_rows


class Step(Protocol):
    """A named batch step: one result per input document.

    A step may also define ``tally(results) -> dict[str, int]``: counts the loop adds to the stage's
    ``counters`` (characters removed per rule, spam hits per category, …), computed from the results
    themselves so a step keeps no state between shards.
    """

    name: str

    def __call__(self, docs: list[Doc]) -> list[Doc | Reject]: ...


@dataclass
class DocStep:
    """A per-document rule lifted to a batch step."""

    name: str
    rule: Callable[[Doc], Doc | Reject]

    def __call__(self, docs: list[Doc]) -> list[Doc | Reject]:
        return [self.rule(doc) for doc in docs]


def per_doc(name: str, rule: Callable[[Doc], Doc | Reject]) -> Step:
    """Return a batch step that applies ``rule`` to each document."""
    return DocStep(name, rule)


STEP_CACHE_SIZE = 8  # step lists kept per process; a stage has one config per run, so this is several runs' worth
_step_cache: OrderedDict[tuple[int, str], list[Step]] = OrderedDict()
_step_cache_lock = threading.Lock()


def cached_steps(key: str, build: Callable[[], list[Step]]) -> list[Step]:
    """Return the steps this worker built under ``key``, calling ``build`` only the first time.

    Prefect runs one task per shard and a task cannot hand objects to the next, so a stage whose steps
    load something slow (jieba's dictionary, an OCR model) would load it again for every shard. The
    key must name everything the steps are built from (stage, config digest, folders); steps keep no
    state between shards (see ``Step``), which is what makes reusing them sound. A worker is a thread:
    the thread pool runs shards side by side and an OCR engine is not safe to share between threads,
    while a process, Dask or Ray worker runs one thread, so there it is once per process.
    """
    slot = (threading.get_ident(), key)
    with _step_cache_lock:
        if slot in _step_cache:
            _step_cache.move_to_end(slot)
            return _step_cache[slot]
    steps = build()  # outside the lock: other threads' shards need not wait for this one's model
    with _step_cache_lock:
        _step_cache[slot] = steps
        while len(_step_cache) > STEP_CACHE_SIZE:
            _step_cache.popitem(last=False)  # the least recently used: a finished stage or an old config
    return steps


def clear_cached_steps() -> int:
    """Drop every cached step list of this process (their models go with them); return how many there were."""
    with _step_cache_lock:
        n = len(_step_cache)
        _step_cache.clear()
    return n


@dataclass
class ShardStats:
    """Counts of one shard (or, summed, of one stage): kept + rejected = docs_in."""

    docs_in: int = 0
    docs_kept: int = 0
    docs_rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    seconds_by_step: dict[str, float] = field(default_factory=dict)
    chars_in: int = 0
    chars_out: int = 0
    seconds: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)  # stage-specific tallies (bytes fetched, pages routed, …)

    def add(self, other: ShardStats) -> ShardStats:
        """Return the sum of two stats."""
        return ShardStats(
            docs_in=self.docs_in + other.docs_in,
            docs_kept=self.docs_kept + other.docs_kept,
            docs_rejected=self.docs_rejected + other.docs_rejected,
            rejected_by_reason=dict(Counter(self.rejected_by_reason) + Counter(other.rejected_by_reason)),
            seconds_by_step=_sum_dicts(self.seconds_by_step, other.seconds_by_step),
            chars_in=self.chars_in + other.chars_in,
            chars_out=self.chars_out + other.chars_out,
            seconds=self.seconds + other.seconds,
            counters=dict(Counter(self.counters) + Counter(other.counters)),
        )

    def balanced(self) -> bool:
        """Return whether kept + rejected = input, overall and by reason."""
        return (
            self.docs_kept + self.docs_rejected == self.docs_in
            and sum(self.rejected_by_reason.values()) == self.docs_rejected
        )

    def to_dict(self) -> dict:
        return {
            "docs_in": self.docs_in,
            "docs_kept": self.docs_kept,
            "docs_rejected": self.docs_rejected,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "seconds_by_step": {k: round(v, 6) for k, v in self.seconds_by_step.items()},
            "chars_in": self.chars_in,
            "chars_out": self.chars_out,
            "seconds": round(self.seconds, 6),
            "counters": dict(sorted(self.counters.items())),
        }

    @classmethod
    def from_dict(cls, d: dict) -> ShardStats:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def _sum_dicts(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0.0) + v
    return out


@dataclass
class ShardResult:
    """What a stage made of one shard."""

    kept: list[Doc]
    rejected: list[Doc]
    stats: ShardStats


def _call_isolated(step: Step, docs: list[Doc]) -> list[Doc | Reject]:
    """Return ``step(docs)``; if it raises, the results of each document run alone, a ``step_error`` for each that raises."""
    try:
        return step(docs)
    except MemoryError:
        raise
    except Exception:
        results: list[Doc | Reject] = []
        for doc in docs:
            try:
                one = step([doc])
            except MemoryError:
                raise
            except Exception as e:  # the document's own fault: it fails alone
                results.append(Reject("step_error", repair_text(f"{step.name}: {type(e).__name__}: {e}")[0][:500]))
                continue
            if len(one) != 1:
                raise RuntimeError(f"step {step.name!r} returned {len(one)} results for 1 document") from None
            results.append(one[0])
        if len(docs) > 1 and all(isinstance(r, Reject) and r.reason == "step_error" for r in results):
            raise  # every document fails alone: a bug or a broken environment, not hostile input
        return results


def _text_chars(doc: Doc) -> int:
    """Return the characters of a record's text; a text that is not a string (bytes, a number) counts none, and a step rejects it."""
    text = doc.get("text")
    return len(text) if isinstance(text, str) else 0


def run_steps(stage: str, steps: Sequence[Step], docs: list[Doc], max_field_bytes: int = MAX_FIELD_BYTES) -> ShardResult:
    """Run ``steps`` in order over ``docs``; return kept rows, rejected rows and stats.

    A rejected document leaves the shard at the step that rejected it; later steps never see it.
    A step that returns the wrong number of results is a bug and raises. A kept document that
    cannot be stored (a value over ``max_field_bytes``, a lone surrogate, a column type clashing
    with the other rows': see ``unwritable_rows``) is rejected as ``unwritable_record`` last, so
    one such document never fails the shard's write.
    """
    started = time.perf_counter()
    stats = ShardStats(docs_in=len(docs), chars_in=sum(map(_text_chars, docs)))
    reasons: Counter[str] = Counter()
    counters: Counter[str] = Counter()
    rejected: list[Doc] = []
    current = list(docs)
    for step in steps:
        if not current:
            break
        t0 = time.perf_counter()
        results = _call_isolated(step, current)
        stats.seconds_by_step[step.name] = stats.seconds_by_step.get(step.name, 0.0) + time.perf_counter() - t0
        if len(results) != len(current):
            raise RuntimeError(f"step {step.name!r} returned {len(results)} results for {len(current)} documents")
        tally = getattr(step, "tally", None)
        if tally is not None:
            counters.update(tally(results))
        survivors: list[Doc] = []
        for doc, result in zip(current, results):
            if isinstance(result, Reject):
                reasons[result.reason] += 1
                rejected.append(reject_row(doc, stage, result))
            else:
                survivors.append(result)
        current = survivors
    unwritable = unwritable_rows(current, max_field_bytes)
    if unwritable:
        for i, detail in unwritable.items():
            reasons["unwritable_record"] += 1
            rejected.append(reject_row(current[i], stage, Reject("unwritable_record", detail)))
        current = [doc for i, doc in enumerate(current) if i not in unwritable]
    stats.docs_kept = len(current)
    stats.docs_rejected = len(rejected)
    stats.rejected_by_reason = dict(reasons)
    stats.counters = dict(counters)
    stats.chars_out = sum(map(_text_chars, current))
    stats.seconds = time.perf_counter() - started
    return ShardResult(kept=current, rejected=rejected, stats=stats)


def process_shard(stage: str, steps: Sequence[Step], in_path: Path, out: StageDir, cfg_digest: str) -> ShardStats:
    """Run a stage's steps over one input shard and commit its output; return the shard's stats.

    A shard already committed from the same input and config is not redone: its stats are read
    back from its marker (resume after a crash re-runs only the unfinished shards).
    """
    in_path = Path(in_path)
    name = in_path.name
    digest = shard_digest(in_path, cfg_digest)
    done = out.done_marker(name, digest)
    if done is not None:
        stats = ShardStats.from_dict(done["stats"])
        stats.counters = {**stats.counters, "shards_skipped": 1}
        return stats
    result = run_steps(stage, steps, read_shard(in_path))
    out.commit_shard(name, result.kept, result.rejected, {"input": str(in_path), "stats": result.stats.to_dict()}, digest)
    return result.stats


def shard_digest(in_path: Path, cfg_digest: str) -> str:
    """Return the digest a shard is made under: its input's bytes and ``cfg_digest``.

    ``cfg_digest`` is the stage's config digest, joined with whatever else its shards are made from (the
    quality model's digest, the dedup clusters' file), so a change to any of them redoes the shards.
    """
    return stage_digest(None, [cfg_digest, file_digest(in_path)])
