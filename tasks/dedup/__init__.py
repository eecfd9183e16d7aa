"""Dedup: exact and near-duplicate removal across all shards of a run (MinHash + LSH over character n-grams)."""

from tasks.dedup.config import DedupConfig
from tasks.dedup.minhash import MINHASH_VERSION, DedupKey, MinHasher, estimated_jaccard, exact_hash
from tasks.dedup.stage import (
    DEDUP_REASONS,
    STAGE,
    BatchDeduplicator,
    Clusters,
    DedupReason,
    DuplicateFilter,
    Signatures,
    Signer,
    build_steps,
    cluster,
    dedup_records,
    find_duplicates,
    signatures,
)

__all__ = [
    "DEDUP_REASONS",
    "MINHASH_VERSION",
    "STAGE",
    "BatchDeduplicator",
    "Clusters",
    "DedupConfig",
    "DedupKey",
    "DedupReason",
    "DuplicateFilter",
    "MinHasher",
    "Signatures",
    "Signer",
    "build_steps",
    "cluster",
    "dedup_records",
    "estimated_jaccard",
    "exact_hash",
    "find_duplicates",
    "signatures",
]
