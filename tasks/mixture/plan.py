"""The mixture plan: how many copies of each document the mixed corpus holds (0 = dropped), decided once over all shards.

``plan_mixture`` reads only each shard's ``id``, ``source`` and text length, computes per-source weights (static,
temperature or DoReMi), splits the character budget into per-source targets (``weights.source_targets``) and
turns each target into per-document copies:

* every document of a source gets ``k = floor(target / chars)`` copies (whole epochs first, at most max_epochs);
* the remainder goes, one more copy each, to a prefix of the source's documents ranked by a hash of
  (seed, id) — the prefix whose characters come closest to the remainder. Down-sampling is the case k = 0.

The ranking depends only on the seed and the ids, so the same seed gives the same sample on any machine and a
different seed another one; with many documents each is small against the target and the budget is met within
a document's length. The plan is written to ``<stage>/_plan.parquet`` (shard, position, id, source, chars,
copies) with the mixture table and a digest of its inputs and config in the Parquet metadata: a re-run with
the same shards and config reads it back instead of planning (and training DoReMi's proxies) again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tasks.mixture.config import MixtureConfig
from tasks.mixture.weights import source_targets, static_weights, temperature_weights, uniform_weights
from tasks.records import Doc
from tasks.store import file_digest, stage_digest

if TYPE_CHECKING:  # torch and transformers load only when DoReMi runs
    from tasks.mixture.doremi import DoremiResult

PLAN_FILE = "_plan.parquet"
PLAN_SCHEMA = pa.schema(
    [
        ("shard", pa.string()),
        ("position", pa.int64()),
        ("id", pa.string()),
        ("source", pa.string()),
        ("chars", pa.int64()),
        ("copies", pa.int32()),
    ]
)


@dataclass
class DocColumns:
    """One entry per document of the corpus, in run order (shard name, then position): what the plan needs of it."""

    shards: list[str]
    positions: np.ndarray  # int64: index in its shard
    ids: list[str]
    sources: list[str]
    chars: np.ndarray  # int64: characters of the text

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_docs(cls, docs: list[Doc], shard: str = "") -> DocColumns:
        """Return the columns of an in-memory list of records."""
        return cls(
            shards=[shard] * len(docs),
            positions=np.arange(len(docs), dtype=np.int64),
            ids=[d.get("id") or "" for d in docs],
            sources=[d.get("source") or "" for d in docs],
            chars=np.array([len(d.get("text") or "") for d in docs], dtype=np.int64),
        )

    @classmethod
    def from_shards(cls, paths: list[Path], batch_rows: int = 65_536) -> DocColumns:
        """Return the columns of Parquet shards, reading id, source and the text's length a batch at a time."""
        shards, positions, ids, sources, chars = [], [], [], [], []
        for path in paths:
            start = 0
            for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=["id", "source", "text"]):
                n = batch.num_rows
                shards.extend([path.name] * n)
                positions.append(np.arange(start, start + n, dtype=np.int64))
                ids.extend(batch.column("id").to_pylist())
                sources.extend(s or "" for s in batch.column("source").to_pylist())
                chars.append(pc.fill_null(pc.utf8_length(batch.column("text")), 0).to_numpy(zero_copy_only=False).astype(np.int64))
                start += n
        empty = np.zeros(0, dtype=np.int64)
        return cls(shards, np.concatenate([empty, *positions]), ids, sources, np.concatenate([empty, *chars]))

    def by_source(self) -> dict[str, np.ndarray]:
        """Return each source's row indices, in run order."""
        groups: dict[str, list[int]] = {}
        for i, s in enumerate(self.sources):
            groups.setdefault(s, []).append(i)
        return {s: np.array(rows, dtype=np.int64) for s, rows in sorted(groups.items())}


def rank_keys(ids: list[str], seed: int) -> np.ndarray:
    """Return a 64-bit key per id from a hash of (seed, id): the order in which a source's documents are taken."""
    return np.array([int.from_bytes(hashlib.blake2b(f"{seed}:{i}".encode(), digest_size=8).digest(), "big") for i in ids], dtype=np.uint64)


def ranked(rows: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Return ``rows`` ordered by their keys (ties, i.e. repeated ids, by run order)."""
    return rows[np.lexsort((rows, keys[rows]))]


def document_copies(chars: np.ndarray, target: float, max_epochs: int) -> np.ndarray:
    """Return copies per document (in the given, ranked order) whose characters come closest to ``target``.

    >>> document_copies(np.array([10, 10, 10, 10]), 24, max_epochs=4).tolist()  # down: 2 docs (20) beat 3 (30)
    [1, 1, 0, 0]
    >>> document_copies(np.array([10, 10, 10, 10]), 100, max_epochs=4).tolist()  # up: 2 epochs, then a prefix
    [3, 3, 2, 2]
    """
    total = int(chars.sum())
    copies = np.zeros(len(chars), dtype=np.int32)
    if total == 0 or target <= 0:
        return copies
    epochs = min(int(target // total), max_epochs)
    copies[:] = epochs
    rest = target - epochs * total
    if epochs < max_epochs and rest > 0:
        cum = np.cumsum(chars)
        m = int(np.searchsorted(cum, rest))  # cum[m - 1] < rest <= cum[m]: m docs fall short, m + 1 reach it
        below = int(cum[m - 1]) if m > 0 else 0
        take = m + 1 if m < len(cum) and cum[m] - rest <= rest - below else m
        copies[:take] += 1
    return copies


@dataclass
class MixturePlan:
    """The plan's summary: the mixture table (one row per source), the weights used, the budget and warnings."""

    table: list[dict]  # source, weight, docs/chars/share before and after, copies, epochs, warning
    weights: dict[str, float]
    budget_chars: int
    warnings: list[str] = field(default_factory=list)
    doremi: dict | None = None  # DoremiResult.to_dict() in doremi mode: the weights of every proxy step
    skipped: bool = False  # read back from an earlier run's plan

    def to_dict(self) -> dict:
        return asdict(self)

    def counters(self) -> dict[str, int]:
        """Return the plan's totals as integer counters for the stage's stats."""
        return {
            "plan.sources": sum(1 for r in self.table if r["docs_before"]),
            "plan.budget_chars": self.budget_chars,
            "plan.chars_after": sum(r["chars_after"] for r in self.table),
            "plan.docs_kept": sum(r["docs_after"] for r in self.table),
            "plan.copies": sum(r["copies"] for r in self.table),
            "plan.warnings": len(self.warnings),
            "plan.skipped": int(self.skipped),
        }


TextReader = Callable[[np.ndarray], list[str]]  # row indices → their texts, in the same order


def sample_texts(cols: DocColumns, keys: np.ndarray, max_chars: int, read: TextReader) -> dict[str, list[str]]:
    """Return each source's texts for DoReMi: a prefix of its hash ranking up to ``max_chars`` (at least one document)."""
    picked: dict[str, np.ndarray] = {}
    for source, rows in cols.by_source().items():
        order = ranked(rows, keys)
        n = max(1, int(np.searchsorted(np.cumsum(cols.chars[order]), max_chars, side="right")))
        picked[source] = order[:n]
    flat = np.concatenate(list(picked.values())) if picked else np.zeros(0, dtype=np.int64)
    texts = read(flat)
    out, at = {}, 0
    for source, rows in picked.items():
        out[source] = texts[at : at + len(rows)]
        at += len(rows)
    return out


def mixture_weights(cfg: MixtureConfig, cols: DocColumns, keys: np.ndarray, read: TextReader) -> tuple[dict[str, float], DoremiResult | None]:
    """Return the per-source weights of ``cfg.mode`` (over the sources with text) and, in doremi mode, DoReMi's result."""
    chars = {s: int(cols.chars[rows].sum()) for s, rows in cols.by_source().items()}
    if cfg.mode == "static":
        return static_weights(chars, cfg.weights, cfg.default_weight), None
    temperature = temperature_weights(chars, cfg.temperature)
    if cfg.mode == "temperature":
        return temperature, None
    from tasks.mixture.doremi import doremi_weights

    texts = sample_texts(cols, keys, cfg.doremi.sample_chars, read)
    texts = {s: t for s, t in texts.items() if chars[s] > 0}
    reference = temperature if cfg.doremi.reference == "temperature" else uniform_weights(sorted(texts))
    result = doremi_weights(texts, cfg.doremi, reference)
    return {s: result.weights.get(s, 0.0) for s in texts}, result


def plan_copies(cols: DocColumns, weights: Mapping[str, float], keys: np.ndarray, cfg: MixtureConfig) -> tuple[np.ndarray, list[dict], list[str]]:
    """Return copies per document, the mixture table and the warnings, for the given weights."""
    groups = cols.by_source()
    chars = {s: int(cols.chars[rows].sum()) for s, rows in groups.items()}
    natural = sum(chars.values())
    budget = cfg.budget(natural)
    targets = source_targets(weights, chars, budget, cfg.max_epochs)
    copies = np.zeros(len(cols), dtype=np.int32)
    for source, rows in groups.items():
        order = ranked(rows, keys)
        copies[order] = document_copies(cols.chars[order], targets.get(source, 0.0), cfg.max_epochs)
    after = {s: int((cols.chars[rows] * copies[rows]).sum()) for s, rows in groups.items()}
    total_after = sum(after.values())
    warnings = []
    table = []
    named = set(cfg.weights) if cfg.mode == "static" else set()
    for source in sorted(set(groups) | named):
        rows = groups.get(source, np.zeros(0, dtype=np.int64))
        weight = weights.get(source, 0.0)
        warning = ""
        if not len(rows):
            warning = f"no documents: its weight {cfg.weights[source]:g} went to the other sources"
        elif chars[source] == 0:
            warning = "no text: its documents are dropped"
        elif weight == 0:
            warning = "weight 0: its documents are dropped"
        elif after[source] + 0.5 < weight * budget and copies[rows].min() >= cfg.max_epochs:
            warning = f"capped at max_epochs={cfg.max_epochs}: {round(weight * budget) - after[source]} characters of its share went to the other sources"
        if warning:
            warnings.append(f"{source or '(no source)'}: {warning}")
        table.append(
            {
                "source": source,
                "weight": round(weight, 6),
                "docs_before": len(rows),
                "chars_before": chars.get(source, 0),
                "share_before": round(chars.get(source, 0) / natural, 6) if natural else 0.0,
                "docs_after": int((copies[rows] > 0).sum()),
                "copies": int(copies[rows].sum()),
                "chars_after": after.get(source, 0),
                "share_after": round(after.get(source, 0) / total_after, 6) if total_after else 0.0,
                "epochs": round(after[source] / chars[source], 3) if chars.get(source) else 0.0,
                "warning": warning,
            }
        )
    if natural and total_after < 0.99 * budget:
        warnings.append(f"budget of {budget} characters not reached: every source is capped at max_epochs={cfg.max_epochs}; the mixture holds {total_after}")
    return copies, table, warnings


def plan_records(cols: DocColumns, cfg: MixtureConfig, read: TextReader) -> tuple[np.ndarray, MixturePlan]:
    """Return copies per document and the plan's summary: weights by ``cfg.mode``, then copies to the budget."""
    keys = rank_keys(cols.ids, cfg.seed)
    weights, doremi = mixture_weights(cfg, cols, keys, read) if len(cols) else ({}, None)
    copies, table, warnings = plan_copies(cols, weights, keys, cfg)
    natural = int(cols.chars.sum())
    summary = MixturePlan(table, {s: round(w, 6) for s, w in weights.items()}, cfg.budget(natural), warnings, doremi.to_dict() if doremi else None)
    return copies, summary


def shard_reader(paths: list[Path], cols: DocColumns) -> TextReader:
    """Return a reader of texts by row index that loads one shard's text column at a time."""
    by_name = {p.name: p for p in paths}

    def read(rows: np.ndarray) -> list[str]:
        texts: list[str] = [""] * len(rows)
        wanted: dict[str, list[tuple[int, int]]] = {}
        for slot, row in enumerate(rows.tolist()):
            wanted.setdefault(cols.shards[row], []).append((slot, int(cols.positions[row])))
        for name, pairs in wanted.items():
            column = pq.read_table(by_name[name], columns=["text"]).column("text")
            taken = column.take(pa.array([p for _, p in pairs])).to_pylist()
            for (slot, _), text in zip(pairs, taken):
                texts[slot] = text or ""
        return texts

    return read


PLAN_DONE = "_plan.done.json"  # the plan's done-record (see tasks.store.stage_digest), written after the plan


def plan_digest(paths: list[Path], cfg: MixtureConfig) -> str:
    """Return the digest of a plan's inputs: every shard's name and bytes, and the config."""
    return stage_digest(cfg, [f"{p.name}:{file_digest(p)}" for p in paths])


def plan_mixture(shard_paths: list[Path], out_dir: Path, cfg: MixtureConfig) -> MixturePlan:
    """Return the mixture plan of all shards, written to ``<out_dir>/_plan.parquet`` (or read back when still valid)."""
    # dedup's helpers live in its task module, which imports Prefect: imported here so the plan's pure parts stay light
    from tasks.store import clear_done, read_done, write_done, write_parquet

    paths = sorted(Path(p) for p in shard_paths)
    target = Path(out_dir) / PLAN_FILE
    digest = plan_digest(paths, cfg)
    done = read_done(target.parent, digest, name=PLAN_DONE)
    if done is not None and target.exists():
        return MixturePlan(**{**done, "skipped": True})
    clear_done(target.parent, name=PLAN_DONE)
    cols = DocColumns.from_shards(paths)
    copies, summary = plan_records(cols, cfg, shard_reader(paths, cols))
    table = pa.table(
        {
            "shard": pa.array(cols.shards, pa.string()),
            "position": pa.array(cols.positions, pa.int64()),
            "id": pa.array(cols.ids, pa.string()),
            "source": pa.array(cols.sources, pa.string()),
            "chars": pa.array(cols.chars, pa.int64()),
            "copies": pa.array(copies, pa.int32()),
        },
        schema=PLAN_SCHEMA,
    )
    write_parquet(target, table, {"inputs_digest": digest, "plan": json.dumps(summary.to_dict(), ensure_ascii=False)})
    write_done(target.parent, digest, summary.to_dict(), name=PLAN_DONE)
    return summary


def read_shard_plan(plan_path: Path, shard: str) -> tuple[list[str], list[int]]:
    """Return the ids and copies of one shard's documents, in position order, from the plan file."""
    if not plan_path.exists():
        raise FileNotFoundError(f"{plan_path} is missing: run plan_mixture before mix_shard")
    table = pq.read_table(plan_path, filters=[("shard", "=", shard)], columns=["position", "id", "copies"]).sort_by("position")
    return table.column("id").to_pylist(), table.column("copies").to_pylist()
