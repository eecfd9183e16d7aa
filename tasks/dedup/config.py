"""The dedup stage's one config model; its fields are the flow parameters and the recipe section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.dedup.minhash import SignatureMethod

# Fields that change the stored signatures; the others (threshold, keep, near_duplicates) only change
# the clustering, so re-tuning them re-clusters without re-signing a single shard.
SIGNATURE_FIELDS = ("shingle_size", "bands", "rows", "seed", "method")


class DedupConfig(BaseModel):
    """De-duplication across all shards of a run: exact copies by a hash of the normalised text, near
    copies by MinHash + LSH over character n-grams; one document of each cluster is kept."""

    model_config = ConfigDict(extra="forbid")

    shingle_size: int = Field(
        default=5,  # sample reposts 0.80/0.89, same-topic articles <= 0.10: the table in stage.py's docstring
        ge=1,
        le=64,
        description="Characters per shingle (n-gram of the text with whitespace and punctuation removed). "
        "Smaller makes different texts look more alike; larger makes small edits cost more.",
    )
    bands: int = Field(
        default=32,
        ge=1,
        le=256,
        description="LSH bands. Two documents become a candidate pair when all rows of any one band agree; "
        "the signature has bands × rows values.",
    )
    rows: int = Field(
        default=4,  # 32 × 4: a pair at Jaccard 0.7 collides in some band with probability 0.99998
        ge=1,
        le=32,
        description="Signature values per LSH band. More rows make a band stricter (fewer candidates below "
        "the threshold), more bands catch more true pairs.",
    )
    threshold: float = Field(
        default=0.7,
        gt=0.0,
        le=1.0,
        description="A candidate pair is a near duplicate when its estimated Jaccard similarity (the share of "
        "equal signature values) is at least this.",
    )
    keep: Literal["first", "longest"] = Field(
        default="first",
        description="Which document of a cluster stays: 'first' in run order (shard name, then position: the "
        "copy crawled first), or 'longest' text (ties by run order).",
    )
    near_duplicates: bool = Field(
        default=True,
        description="Also remove near duplicates; off, only exact copies of the normalised text are removed.",
    )
    method: SignatureMethod = Field(
        default="one_permutation",
        description="How signatures are computed: 'one_permutation' (one hash per shingle, binned, densified; "
        "about 8× faster) or 'k_permutations' (the textbook MinHash, one hash function per value).",
    )
    seed: int = Field(
        default=42,
        ge=0,
        le=2**32 - 1,
        description="Seed of the hash functions; signatures made with different seeds cannot be compared.",
    )

    @property
    def num_perm(self) -> int:
        """Values per signature."""
        return self.bands * self.rows
