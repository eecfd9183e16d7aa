"""Pack encoded documents into fixed-length sequences, and store them as Parquet shards.

Two strategies (``PackConfig.strategy``):

* ``concat`` — the GPT-2/nanoGPT recipe: documents joined (each already ends in eos) and cut every
  ``seq_len`` tokens. Only the last sequence of a group is padded; a document may span two sequences.
* ``best_fit`` — Best-fit Packing (Ding et al. 2024, arXiv 2404.10830): documents longer than ``seq_len``
  are cut into ``seq_len`` pieces, then pieces, longest first, go into the fullest sequence with room.
  No document is split needlessly; the price is padding.

Sequences are grouped by split and source: evaluation sequences hold one source each, so perplexity can
be reported per source. No token is dropped: padding fills the rest, and ``n_tokens`` counts the real ones.
The pack stage's own ``part-*.parquet`` are the documents (with ``n_tokens`` and ``split``), so its ledger
balances like every stage's; the sequences sit beside them in ``sequences/part-*.parquet``.
"""

from __future__ import annotations

import bisect
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq

from tasks.records import Doc

Split = Literal["train", "eval"]
PACKED_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("split", pa.string()),
        ("input_ids", pa.list_(pa.int32())),  # int32: vocabularies stay far below 2^31, and shards are half the size
        ("n_tokens", pa.int32()),
        ("n_pieces", pa.int32()),
    ]
)


@dataclass(frozen=True)
class Packed:
    """One training sequence: ``seq_len`` ids, the real ``n_tokens`` of them first, then padding."""

    input_ids: list[int]
    n_tokens: int
    n_pieces: int  # document pieces in it (a document cut by concat counts in both sequences)


def split_of(doc_id: str, eval_fraction: float) -> Split:
    """Return the split of a document, from a hash of its id (stable across shards and reruns).

    >>> split_of("a1b2", 0.0), split_of("a1b2", 1.0)
    ('train', 'eval')
    """
    h = int(hashlib.sha256(f"eval:{doc_id}".encode()).hexdigest()[:8], 16) / 2**32
    return "eval" if h < eval_fraction else "train"


def _padded(ids: list[int], seq_len: int, pad_id: int, pieces: int) -> Packed:
    return Packed([*ids, *([pad_id] * (seq_len - len(ids)))], len(ids), pieces)


def pack_concat(docs: Iterable[list[int]], seq_len: int, pad_id: int) -> list[Packed]:
    """Return the documents' tokens, concatenated in order and cut into ``seq_len`` sequences.

    >>> [p.input_ids for p in pack_concat([[1, 2, 0], [3, 0]], 2, pad_id=9)]
    [[1, 2], [0, 3], [0, 9]]
    """
    out: list[Packed] = []
    buf: list[int] = []
    pieces = 0
    for ids in docs:
        pos = 0
        while pos < len(ids):
            take = ids[pos : pos + seq_len - len(buf)]
            buf.extend(take)
            pieces += 1
            pos += len(take)
            if len(buf) == seq_len:
                out.append(Packed(buf, seq_len, pieces))
                buf, pieces = [], 0
    if buf:
        out.append(_padded(buf, seq_len, pad_id, pieces))
    return out


def pack_best_fit(docs: Iterable[list[int]], seq_len: int, pad_id: int) -> list[Packed]:
    """Return the documents cut into pieces of at most ``seq_len`` and packed best-fit decreasing.

    >>> [p.input_ids for p in pack_best_fit([[1, 1, 0], [2, 0], [3, 0]], 4, pad_id=9)]
    [[1, 1, 0, 9], [2, 0, 3, 0]]
    """
    pieces = [ids[i : i + seq_len] for ids in docs for i in range(0, len(ids), seq_len)]
    pieces.sort(key=len, reverse=True)  # stable: equal lengths keep document order
    bins: list[list[int]] = []
    counts: list[int] = []
    room: list[tuple[int, int]] = []  # (free tokens, bin index), sorted: the fullest bin that fits comes first
    for piece in pieces:
        at = bisect.bisect_left(room, (len(piece), -1))
        if at == len(room):
            bins.append(list(piece))
            counts.append(1)
            free, index = seq_len - len(piece), len(bins) - 1
        else:
            free, index = room.pop(at)
            bins[index].extend(piece)
            counts[index] += 1
            free -= len(piece)
        if free:
            bisect.insort(room, (free, index))
    return [_padded(ids, seq_len, pad_id, n) for ids, n in zip(bins, counts)]


def pack_records(docs: list[Doc], seq_len: int, strategy: str, pad_id: int, prefix: str = "") -> list[dict]:
    """Return packed rows (id, source, split, input_ids, n_tokens, n_pieces) of encoded records, grouped by split and source."""
    pack = pack_concat if strategy == "concat" else pack_best_fit
    groups: dict[tuple[str, str], list[list[int]]] = {}
    for doc in docs:
        groups.setdefault((doc["split"], doc.get("source") or ""), []).append(list(doc["input_ids"]))
    rows = []
    for (split, source), streams in sorted(groups.items()):
        for i, seq in enumerate(pack(streams, seq_len, pad_id)):
            rows.append({"id": f"{prefix}{split}/{source}/{i}", "source": source, "split": split, "input_ids": seq.input_ids, "n_tokens": seq.n_tokens, "n_pieces": seq.n_pieces})
    return rows


def write_packed(path: Path, rows: list[dict]) -> None:
    """Write packed rows to a Parquet shard atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(pa.Table.from_pylist(rows, schema=PACKED_SCHEMA), tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_packed(paths: Iterable[Path]) -> pa.Table:
    """Return the packed sequences of several shards as one (memory-mapped) Arrow table."""
    tables = [pq.read_table(p, memory_map=True) for p in paths]
    return pa.concat_tables(tables) if tables else PACKED_SCHEMA.empty_table()
