"""The tokenize and pack stages as Prefect tasks: one tokenizer training, then one task per shard."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import task

from tasks.steps import ShardStats
from tasks.store import StageDir
from tasks.tokenize.compression import Compression
from tasks.tokenize.config import PackConfig, TokenizerConfig
from tasks.tokenize.stage import build_tokenizer, encode_pack_shard


@dataclass(frozen=True)
class TokenizerResult:
    """A trained (or reused) tokenizer's ledger and how well it compresses each source of the corpus."""

    stats: ShardStats  # documents trained on (kept) and blank ones (rejected); counters hold vocab_size
    compression: dict[str, Compression]  # per source, plus "all"

    @property
    def vocab_size(self) -> int:
        return int(self.stats.counters["vocab_size"])


@task(name="train_tokenizer")
def train_tokenizer_task(shards: list[str], out_dir: str, cfg: TokenizerConfig, base_model: str = "") -> TokenizerResult:
    """Return the stats and compression of training the tokenizer on ``shards`` into ``out_dir``."""
    stats, compression = build_tokenizer([Path(p) for p in shards], StageDir(Path(out_dir)), cfg, base_model)
    return TokenizerResult(stats=stats, compression={source: Compression.from_dict(row) for source, row in compression.items()})


@task(name="encode_shard")
def encode_shard(in_path: str, out_dir: str, tokenizer_dir: str, cfg: PackConfig) -> ShardStats:
    """Return the stats of encoding one shard and packing it into training sequences."""
    return encode_pack_shard(Path(in_path), StageDir(Path(out_dir)), Path(tokenizer_dir), cfg)
