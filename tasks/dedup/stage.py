"""The dedup stage: exact and near duplicates across all shards of a run, one document kept per cluster.

Three phases, so that it works across shards without holding a corpus in memory:

1. ``signatures(docs, cfg)`` per shard (map): each document's id, shard, position, length, the
   128-bit hash of its dedup key (NFKC, case-folded, without whitespace or punctuation) and its
   MinHash signature with the LSH band keys.
2. ``find_duplicates(rows, cfg)`` once over every shard's signatures (reduce): documents with equal
   exact hashes are one group; each band's bucket collisions between groups become candidate pairs,
   kept only when their estimated Jaccard similarity reaches ``cfg.threshold`` (an LSH collision alone
   is no proof: at 32 × 4 a pair at Jaccard 0.3 collides in some band one time in four); union-find
   joins the verified pairs into clusters. Each cluster keeps its first document in run order (shard
   name, then position), or its longest with ``keep="longest"``; every other member is rejected as
   ``exact_duplicate`` (its dedup key equals the kept one's) or ``near_duplicate``, with the kept id as
   the detail. Chains join: if A≈B and B≈C, A and C share a cluster even below the threshold, as in
   datatrove's and the FineWeb pipeline's MinHash dedup.
3. ``DuplicateFilter`` per shard (map): the ordinary step that rejects the non-representatives.

``BatchDeduplicator`` runs the three phases over one in-memory list (``liandan step dedup``).

Defaults, measured on the sample site's gold texts (``data/sample/gold``) and on
``tests/data/dedup/`` (exact Jaccard of character n-grams of the dedup key): the reposts of the rail
article, its three same-topic articles (a commentary, the Linjiang side's report — both written
apart — and a first-week follow-up that repeats one paragraph verbatim), and the most similar pair
of different texts among the sample's other 28:

    shingle size   repost 1002   repost 1005   same topic, written apart   follow-up   unrelated
    3              0.915         0.805         0.031                       0.136       0.041
    4              0.903         0.800         0.017                       0.114       0.025
    5              0.893         0.796         0.010                       0.101       0.014
    6              0.882         0.791         0.006                       0.096       0.010
    8              0.864         0.780         0.001                       0.091       0.006

Any size separates them; 5 is the middle (datatrove's MinHash uses 5-grams too, of words): 3 lets a
topic's shared names lift texts written apart, 8 makes each edited character cost more. The threshold 0.7 sits 0.096 under the harder repost (2.7 standard deviations of a 128-value
estimate at 0.8) and 0.6 over the follow-up; on the benchmark's injected copies (see
``benchmarks/dedup_throughput.py``) it catches 97% of copies at or above 0.7 and none below 0.6.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import pyarrow as pa

from tasks.dedup.config import SIGNATURE_FIELDS, DedupConfig
from tasks.dedup.minhash import MINHASH_VERSION, DedupKey, MinHasher, exact_hash
from tasks.records import Doc, Reject
from tasks.steps import ShardResult, Step, run_steps

STAGE = "dedup"

DedupReason = Literal[
    "exact_duplicate",  # its dedup key (NFKC, no whitespace or punctuation) equals the kept document's
    "near_duplicate",  # its estimated Jaccard similarity to a cluster member reaches cfg.threshold
]
DEDUP_REASONS: tuple[str, ...] = get_args(DedupReason)

MAX_PIVOT_ROUNDS = 8  # bucket members unlike every pivot so far get a new pivot, at most this many times
_PAIR_CHUNK = 1 << 15  # candidate pairs compared at once: 32768 × 2 × 128 uint32 = 32 MB


@dataclass
class Signatures:
    """The signature rows of some documents, as columns."""

    ids: np.ndarray  # object array of str
    shards: np.ndarray  # object array of str: the input shard's file name ("" in memory)
    positions: np.ndarray  # int64: index in the shard
    chars: np.ndarray  # int64: characters of the text as stored
    key_chars: np.ndarray  # int64: characters of the dedup key; 0 means nothing to compare (passes)
    exact: np.ndarray  # (n, 16) uint8: BLAKE2b-128 of the dedup key
    bands: np.ndarray  # (n, bands) uint64: LSH bucket keys
    minhash: np.ndarray  # (n, num_perm) uint32

    def __len__(self) -> int:
        return len(self.ids)

    def to_rows(self) -> list[dict]:
        """Return one dict per document (exact as bytes, bands and minhash as lists of ints)."""
        return [
            {
                "id": self.ids[i],
                "shard": self.shards[i],
                "position": int(self.positions[i]),
                "chars": int(self.chars[i]),
                "key_chars": int(self.key_chars[i]),
                "exact": self.exact[i].tobytes(),
                "bands": self.bands[i].tolist(),
                "minhash": self.minhash[i].tolist(),
            }
            for i in range(len(self))
        ]

    @classmethod
    def from_rows(cls, rows: list[dict], cfg: DedupConfig) -> Signatures:
        return cls(
            ids=_strings([r["id"] for r in rows]),
            shards=_strings([r["shard"] for r in rows]),
            positions=np.array([r["position"] for r in rows], dtype=np.int64),
            chars=np.array([r["chars"] for r in rows], dtype=np.int64),
            key_chars=np.array([r["key_chars"] for r in rows], dtype=np.int64),
            exact=np.frombuffer(b"".join(r["exact"] for r in rows), dtype=np.uint8).reshape(-1, 16),
            bands=np.array([r["bands"] for r in rows], dtype=np.uint64).reshape(-1, cfg.bands),
            minhash=np.array([r["minhash"] for r in rows], dtype=np.uint32).reshape(-1, cfg.num_perm),
        )

    def to_table(self) -> pa.Table:
        """Return the rows as an Arrow table; bands and minhash are fixed-size lists."""
        n = len(self)
        return pa.table(
            {
                "id": pa.array(list(self.ids), pa.string()),
                "shard": pa.array(list(self.shards), pa.string()),
                "position": pa.array(self.positions, pa.int64()),
                "chars": pa.array(self.chars, pa.int64()),
                "key_chars": pa.array(self.key_chars, pa.int64()),
                "exact": pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, pa.py_buffer(self.exact.tobytes())]),
                "bands": pa.FixedSizeListArray.from_arrays(pa.array(self.bands.reshape(-1), pa.uint64()), self.bands.shape[1]),
                "minhash": pa.FixedSizeListArray.from_arrays(pa.array(self.minhash.reshape(-1), pa.uint32()), self.minhash.shape[1]),
            }
        )

    @classmethod
    def from_table(cls, table: pa.Table, cfg: DedupConfig) -> Signatures:
        def matrix(name: str, dtype: type, width: int) -> np.ndarray:
            return table.column(name).combine_chunks().flatten().to_numpy(zero_copy_only=False).astype(dtype).reshape(-1, width)

        return cls(
            ids=_strings(table.column("id").to_pylist()),
            shards=_strings(table.column("shard").to_pylist()),
            positions=table.column("position").to_numpy().astype(np.int64),
            chars=table.column("chars").to_numpy().astype(np.int64),
            key_chars=table.column("key_chars").to_numpy().astype(np.int64),
            exact=np.frombuffer(b"".join(table.column("exact").to_pylist()), dtype=np.uint8).reshape(-1, 16),
            bands=matrix("bands", np.uint64, cfg.bands),
            minhash=matrix("minhash", np.uint32, cfg.num_perm),
        )

    @classmethod
    def concat(cls, parts: list[Signatures], cfg: DedupConfig) -> Signatures:
        if not parts:
            return cls.from_rows([], cfg)
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in cls.__dataclass_fields__})


def _strings(values: list[str]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


class Signer:
    """Callable: the signature rows of a list of documents; holds the key normaliser and the hash functions."""

    def __init__(self, cfg: DedupConfig) -> None:
        self.cfg = cfg
        self.key = DedupKey()
        self.hasher = MinHasher(cfg.shingle_size, cfg.bands, cfg.rows, cfg.seed, cfg.method)

    def __call__(self, docs: list[Doc], shard: str = "") -> Signatures:
        # a missing or non-string text has nothing to compare: it gets an empty key and passes the stage
        texts = [text if isinstance(text := doc.get("text"), str) else "" for doc in docs]
        keys = [self.key(text) for text in texts]
        minhash = self.hasher(keys)
        return Signatures(
            ids=_strings([str(doc.get("id") or "") for doc in docs]),
            shards=_strings([shard] * len(docs)),
            positions=np.arange(len(docs), dtype=np.int64),
            chars=np.array([len(t) for t in texts], dtype=np.int64),
            key_chars=np.array([len(k) for k in keys], dtype=np.int64),
            exact=np.frombuffer(b"".join(exact_hash(k) for k in keys), dtype=np.uint8).reshape(-1, 16),
            bands=self.hasher.band_keys(minhash),
            minhash=minhash,
        )


def signature_digest(cfg: DedupConfig) -> str:
    """Return a digest of what stored signatures depend on: the signature fields and the algorithm version."""
    payload = json.dumps({"version": MINHASH_VERSION, **cfg.model_dump(include=set(SIGNATURE_FIELDS))}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def signatures(docs: list[Doc], cfg: DedupConfig, shard: str = "") -> list[dict]:
    """Return one signature row per document: id, shard, position, chars, key_chars, exact, bands, minhash."""
    return Signer(cfg)(docs, shard).to_rows()


# ---------------------------------------------------------------------- clustering


@dataclass
class Clusters:
    """Which document represents each signature row, and how the clusters were found."""

    kept: np.ndarray  # int64: the row index of the document each row is represented by (itself when kept)
    exact: np.ndarray  # bool: the row's dedup key equals its representative's
    candidate_pairs: int = 0  # bucket collisions compared
    verified_pairs: int = 0  # of those, at or above the threshold

    def reason(self, row: int) -> DedupReason | None:
        """Return why a row is rejected, or None when it is kept."""
        if self.kept[row] == row:
            return None
        return "exact_duplicate" if self.exact[row] else "near_duplicate"

    def counts(self) -> dict[str, int]:
        removed = self.kept != np.arange(len(self.kept))
        return {
            "clusters": len(np.unique(self.kept[removed])),
            "exact_duplicate": int((removed & self.exact).sum()),
            "near_duplicate": int((removed & ~self.exact).sum()),
            "candidate_pairs": self.candidate_pairs,
            "verified_pairs": self.verified_pairs,
        }


def cluster(sig: Signatures, cfg: DedupConfig) -> Clusters:
    """Return the clusters of exact and near duplicates among signature rows, with one representative each."""
    n = len(sig)
    rank = _keep_order(sig, cfg.keep)
    signed = np.flatnonzero(sig.key_chars > 0)
    # exact groups: rows with equal dedup keys, each led by its first row in keep order
    halves = sig.exact[signed].view(np.uint64).reshape(-1, 2)
    by_hash = np.lexsort((rank[signed], halves[:, 1], halves[:, 0]))
    leads = _run_starts(halves[by_hash])
    group = np.empty(len(signed), dtype=np.int64)
    group[by_hash] = np.cumsum(leads) - 1
    leaders = signed[by_hash[leads]]  # leaders[g] is the row that stands for exact group g
    parent = list(range(len(leaders)))
    candidates = verified = 0
    if cfg.near_duplicates and len(leaders) > 1:
        a, b, candidates = _verified_pairs(sig, leaders, rank[leaders], cfg.threshold)
        verified = len(a)
        for x, y in zip(a.tolist(), b.tolist()):
            _union(parent, x, y)
    roots = np.array(parent, dtype=np.int64)
    while not np.array_equal(roots, roots[roots]):  # pointer jumping: every group's root at once
        roots = roots[roots]
    component = np.arange(n, dtype=np.int64) + len(leaders)  # a row with nothing to compare is alone
    component[signed] = roots[group]
    order = np.lexsort((rank, component))
    starts = np.flatnonzero(_run_starts(component[order]))
    representative = np.empty(n, dtype=np.int64)
    representative[order] = np.repeat(order[starts], np.diff(np.r_[starts, n]))
    exact = np.all(sig.exact == sig.exact[representative], axis=1) & (sig.key_chars > 0)
    return Clusters(kept=representative, exact=exact, candidate_pairs=candidates, verified_pairs=verified)


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Return where each run of equal values (equal rows, for a 2-D array) starts, as a boolean mask."""
    starts = np.ones(len(values), dtype=bool)
    differs = values[1:] != values[:-1]
    starts[1:] = differs.any(axis=1) if differs.ndim > 1 else differs
    return starts


def _keep_order(sig: Signatures, keep: str) -> np.ndarray:
    """Return each row's rank in keep order: run order (shard name, position), or longest text first, ties in run order."""
    _, shard_code = np.unique(sig.shards.astype(str), return_inverse=True)
    keys = [sig.positions, shard_code.reshape(-1)]
    if keep == "longest":
        keys.append(-sig.chars)
    rank = np.empty(len(sig), dtype=np.int64)
    rank[np.lexsort(keys)] = np.arange(len(sig))
    return rank


def _verified_pairs(sig: Signatures, leaders: np.ndarray, rank: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Return the pairs (indices into ``leaders``) among each band's bucket collisions whose estimated
    Jaccard similarity reaches the threshold, and how many pairs were compared.

    In a bucket every member is compared with the bucket's earliest member in keep order (its pivot);
    those below the threshold are compared with the earliest of them, and so on for MAX_PIVOT_ROUNDS
    rounds, so two clusters sharing a bucket are both found while a bucket of unlike texts costs
    linear work.
    """
    found_a: list[np.ndarray] = []
    found_b: list[np.ndarray] = []
    compared = 0
    for band in range(sig.bands.shape[1]):
        keys = sig.bands[leaders, band]
        order = np.argsort(keys)  # not stable (15× faster on 1M keys): buckets are put in keep order below
        bucket = np.cumsum(_run_starts(keys[order])) - 1
        shared = np.bincount(bucket)[bucket] >= 2
        member, bucket = order[shared], bucket[shared]
        in_keep_order = np.lexsort((rank[member], bucket))
        member, bucket = member[in_keep_order], bucket[in_keep_order]
        for _ in range(MAX_PIVOT_ROUNDS):
            if len(member) < 2:
                break
            is_pivot = _run_starts(bucket)
            pivot = member[is_pivot][np.cumsum(is_pivot) - 1]
            a, b = pivot[~is_pivot], member[~is_pivot]
            similar = _similar(sig.minhash, leaders[a], leaders[b], threshold)
            compared += len(a)
            found_a.append(a[similar])
            found_b.append(b[similar])
            left = ~is_pivot
            left[left] = ~similar
            member, bucket = member[left], bucket[left]
    if not found_a:
        return np.empty(0, np.int64), np.empty(0, np.int64), compared
    pairs = np.unique(np.stack([np.concatenate(found_a), np.concatenate(found_b)], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1], compared


def _similar(minhash: np.ndarray, a: np.ndarray, b: np.ndarray, threshold: float) -> np.ndarray:
    """Return whether each pair's estimated Jaccard similarity reaches the threshold."""
    out = np.empty(len(a), dtype=bool)
    need = int(np.ceil(threshold * minhash.shape[1] - 1e-9))  # equal values needed, in integers: no rounding surprises
    for lo in range(0, len(a), _PAIR_CHUNK):
        hi = lo + _PAIR_CHUNK
        out[lo:hi] = (minhash[a[lo:hi]] == minhash[b[lo:hi]]).sum(axis=1) >= need
    return out


def _find(parent: list[int], x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:  # path compression
        parent[x], x = root, parent[x]
    return root


def _union(parent: list[int], x: int, y: int) -> None:
    """Join two sets under the smaller root, so a parent always has a smaller index than its children."""
    rx, ry = _find(parent, x), _find(parent, y)
    if rx != ry:
        parent[max(rx, ry)] = min(rx, ry)


def duplicate_rows(sig: Signatures, clusters: Clusters) -> list[dict]:
    """Return the rejected rows as dicts: id, shard, position, reason, kept_id, kept_shard, kept_position.

    A document is addressed by its id in later phases, so an id that is also a kept document's id (the
    same record twice in a run, which the crawler never emits) is left out: both copies stay, rather
    than the kept one going with its copy.
    """
    kept_ids = {sig.ids[i] for i in np.flatnonzero(clusters.kept == np.arange(len(sig)))}
    rows = []
    for i in np.flatnonzero(clusters.kept != np.arange(len(sig))):
        k = clusters.kept[i]
        if sig.ids[i] in kept_ids:
            continue
        rows.append(
            {
                "id": sig.ids[i],
                "shard": sig.shards[i],
                "position": int(sig.positions[i]),
                "reason": clusters.reason(i),
                "kept_id": sig.ids[k],
                "kept_shard": sig.shards[k],
                "kept_position": int(sig.positions[k]),
            }
        )
    return rows


def find_duplicates(signature_rows: list[dict] | Signatures, cfg: DedupConfig) -> dict[str, tuple[DedupReason, str]]:
    """Return ``{id: (reason, kept id)}`` for every document to remove, over the signatures of all shards."""
    sig = signature_rows if isinstance(signature_rows, Signatures) else Signatures.from_rows(signature_rows, cfg)
    return {row["id"]: (row["reason"], row["kept_id"]) for row in duplicate_rows(sig, cluster(sig, cfg))}


# ---------------------------------------------------------------------- steps


@dataclass
class DuplicateFilter:
    """Batch step: reject the documents named in ``duplicates`` (id → (reason, kept id)); the rest pass.

    ``representatives`` are the kept ids of clusters, counted as ``duplicate_clusters`` when they pass
    here (each cluster's representative lives in exactly one shard, so the sum over shards is the
    number of clusters).
    """

    duplicates: dict[str, tuple[str, str]]
    representatives: frozenset[str] = frozenset()
    name: str = "drop_duplicates"

    def __call__(self, docs: list[Doc]) -> list[Doc | Reject]:
        out: list[Doc | Reject] = []
        for doc in docs:
            hit = self.duplicates.get(doc.get("id"))
            out.append(Reject(hit[0], hit[1]) if hit else doc)
        return out

    def tally(self, results: list[Doc | Reject]) -> dict[str, int]:
        return {"duplicate_clusters": sum(1 for r in results if not isinstance(r, Reject) and r.get("id") in self.representatives)}


@dataclass
class BatchDeduplicator:
    """Batch step: all three phases over the batch itself — documents are addressed by position, so
    records that share an id (text-only JSONL lines are keyed by their text) are told apart."""

    cfg: DedupConfig
    name: str = "dedup_batch"
    signer: Signer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.signer = Signer(self.cfg)

    def __call__(self, docs: list[Doc]) -> list[Doc | Reject]:
        sig = self.signer(docs)
        clusters = cluster(sig, self.cfg)
        out: list[Doc | Reject] = []
        for i, doc in enumerate(docs):
            reason = clusters.reason(i)
            out.append(Reject(reason, sig.ids[clusters.kept[i]]) if reason else doc)
        return out

    def tally(self, results: list[Doc | Reject]) -> dict[str, int]:
        kept_ids = {r.detail for r in results if isinstance(r, Reject)}
        return {"duplicate_clusters": sum(1 for r in results if not isinstance(r, Reject) and r.get("id") in kept_ids)}


def build_steps(cfg: DedupConfig) -> list[Step]:
    """Return the stage's steps for one in-memory list of records (``liandan step dedup``)."""
    return [BatchDeduplicator(cfg)]


def dedup_records(docs: list[Doc], cfg: DedupConfig) -> ShardResult:
    """Return kept rows, rejected rows and stats of de-duplicating one in-memory list of records."""
    return run_steps(STAGE, build_steps(cfg), docs)
