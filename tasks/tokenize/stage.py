"""The tokenize and pack stages over a run folder: train the tokenizer once, then encode and pack shard by shard.

``runs/<run>/tokenize/`` holds the saved tokenizer (``save_pretrained`` + ``liandan_tokenizer.json``) and
``compression.json``. ``runs/<run>/pack/`` is a document stage like the data stages (``part-*.parquet``
the encoded documents with ``n_tokens`` and ``split``, ``rejected/`` the blank ones, a balanced ledger),
and holds the packed sequences in ``pack/sequences/part-*.parquet``; a training document carrying the mixture
stage's ``mix_copies`` is packed that many times (``repeat_copies``). Both resume: a finished tokenizer or
shard made from the same input with the same config is not redone.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from tasks.steps import ShardStats, Step, per_doc, run_steps, shard_digest
from tasks.store import DONE_FILE, StageDir, atomic_write_json, clear_done, config_digest, file_digest, read_done, read_shard, stage_digest, write_done
from tasks.tokenize.compression import compression_report
from tasks.tokenize.config import PackConfig, TokenizerConfig
from tasks.tokenize.encode import DocumentEncoder
from tasks.tokenize.pack import pack_records, split_of, write_packed
from tasks.tokenize.train import SIDECAR, iter_documents, load_tokenizer, save_tokenizer, train_tokenizer

TOKENIZE = "tokenize"
PACK = "pack"
COMPRESSION_FILE = "compression.json"
SEQUENCES_DIR = "sequences"


def shards_digest(shards: list[Path]) -> str:
    """Return a digest of a list of shards by name and size (cheap; shards are written once and never edited)."""
    return hashlib.sha256("".join(f"{p.name}:{p.stat().st_size};" for p in shards).encode()).hexdigest()[:16]


def _head(rows: Iterator[dict], n: int) -> Iterator[dict]:
    for i, row in enumerate(rows):
        if i >= n:
            return
        yield row


def build_tokenizer(shards: list[Path], out: StageDir, cfg: TokenizerConfig, base_model: str = "") -> tuple[ShardStats, dict]:
    """Train the tokenizer on the shards' texts into ``out`` (or take ``base_model``'s own); return stats and compression.

    Kept documents are the ones the tokenizer trained on; blank ones are rejected as ``empty_text``.
    """
    digest = stage_digest(cfg, [shards_digest(shards), base_model])
    done = read_done(out.root, digest)
    if done is not None:
        stats = ShardStats.from_dict(done["stats"])
        stats.counters = {**stats.counters, "stage_skipped": 1}
        return stats, json.loads((out.root / COMPRESSION_FILE).read_text(encoding="utf-8"))

    clear_done(out.root)
    started = time.perf_counter()
    stats = ShardStats()
    if base_model:
        # continued pretraining keeps the base model's vocabulary: its embeddings are indexed by it
        tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(base_model)
        saved_cfg = None
    else:
        reasons: Counter[str] = Counter()

        def texts() -> Iterator[str]:
            for row in iter_documents(shards, ("text",)):
                text = row["text"] or ""
                stats.docs_in += 1
                stats.chars_in += len(text)
                if not text.strip():
                    reasons["empty_text"] += 1
                    continue
                stats.docs_kept += 1
                yield text
                if cfg.max_train_docs and stats.docs_kept >= cfg.max_train_docs:
                    return

        tokenizer = train_tokenizer(texts(), cfg)
        stats.docs_rejected = sum(reasons.values())
        stats.rejected_by_reason = dict(reasons)
        stats.chars_out = stats.chars_in
        saved_cfg = cfg
    compression = compression_report(tokenizer.backend_tokenizer, _head(iter_documents(shards), cfg.report_docs))
    stats.counters = {"vocab_size": len(tokenizer), "report_docs": compression["all"]["docs"]}
    stats.seconds = time.perf_counter() - started
    out.root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out.root / COMPRESSION_FILE, compression)
    save_tokenizer(tokenizer, out.root, saved_cfg, {"base_model": base_model, "stats": stats.to_dict()})
    write_done(out.root, digest, {"base_model": base_model, "stats": stats.to_dict()})
    return stats, compression


def tokenizer_digest(tokenizer_dir: str | Path) -> str:
    """Return the digest of a saved tokenizer's files, so retraining it invalidates packed shards."""
    files = sorted(p for p in Path(tokenizer_dir).iterdir() if p.suffix in {".json", ".jinja", ".model", ".txt"} and p.name not in {SIDECAR, COMPRESSION_FILE, DONE_FILE})
    return hashlib.sha256("".join(file_digest(p) for p in files).encode()).hexdigest()[:16]


def sequences_path(out: StageDir, name: str) -> Path:
    """Return where the packed sequences of shard ``name`` live inside the pack stage's folder."""
    return out.root / SEQUENCES_DIR / name


def assign_split(eval_fraction: float) -> Step:
    """Return the step adding ``split`` (train or eval, from a hash of the id) to each record."""
    return per_doc("split", lambda doc: {**doc, "split": split_of(doc["id"], eval_fraction)})


def repeat_copies(docs: list[dict]) -> list[dict]:
    """Return the documents to pack: each training document ``mix_copies`` times (once without the column), eval ones once.

    Copy e of every document follows copy e − 1 of all of them (epoch after epoch through the shard), so the
    repeats of a document land in different sequences instead of back to back in one window, where the model
    would learn to copy its own context. Held-out documents are packed once: evaluation measures the model,
    not the mixture.

    >>> [d["id"] for d in repeat_copies([{"id": "a", "split": "train", "mix_copies": 2}, {"id": "b", "split": "train"}])]
    ['a', 'b', 'a']
    """
    copies = [int(d.get("mix_copies") or 1) if d.get("split") != "eval" else 1 for d in docs]
    return [doc for epoch in range(max(copies, default=0)) for doc, n in zip(docs, copies) if n > epoch]


def encode_pack_shard(in_path: Path, out: StageDir, tokenizer_dir: Path, cfg: PackConfig) -> ShardStats:
    """Encode one shard's documents and pack them into sequences; commit the shard and return its stats.

    Commits the documents (with ``n_tokens`` and ``split``, without their ids) as the stage's shard, the
    blank ones as rejected ``empty_text``, and the sequences under ``sequences/``; the marker goes last.
    """
    name = in_path.name
    digest = shard_digest(in_path, f"{config_digest(cfg)}:{tokenizer_digest(tokenizer_dir)}")
    done = out.done_marker(name, digest)
    if done is not None and sequences_path(out, name).exists():
        stats = ShardStats.from_dict(done["stats"])
        stats.counters = {**stats.counters, "shards_skipped": 1}
        return stats
    tokenizer = load_tokenizer(tokenizer_dir)
    if tokenizer.eos_token_id is None:
        raise ValueError(f"the tokenizer in {tokenizer_dir} has no eos token: packing separates documents with it")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id  # padding is never a label
    encoder = DocumentEncoder(tokenizer.backend_tokenizer, tokenizer.eos_token_id, cfg.encode_batch_docs)
    result = run_steps(PACK, [encoder, assign_split(cfg.eval_fraction)], read_shard(in_path))
    packed = repeat_copies(result.kept)
    rows = pack_records(packed, cfg.seq_len, cfg.strategy, pad_id, prefix=f"{in_path.stem}/")
    counters = Counter(result.stats.counters)
    if len(packed) > len(result.kept):  # tokens_packed = tokens + tokens_repeated: packing still loses nothing
        counters["docs_repeated"] += len(packed) - len(result.kept)
        counters["tokens_repeated"] += sum(d["n_tokens"] for d in packed) - sum(d["n_tokens"] for d in result.kept)
    for row in rows:
        counters["sequences"] += 1
        counters[f"sequences.{row['split']}"] += 1
        counters["tokens_packed"] += row["n_tokens"]
        counters["pad_tokens"] += cfg.seq_len - row["n_tokens"]
    result.stats.counters = dict(counters)
    write_packed(sequences_path(out, name), rows)
    kept = [{k: v for k, v in doc.items() if k != "input_ids"} for doc in result.kept]
    out.commit_shard(name, kept, result.rejected, {"input": str(in_path), "stats": result.stats.to_dict()}, digest)
    return result.stats


def packed_sequence_shards(pack_dir: str | Path) -> list[Path]:
    """Return the sequence shards of the pack stage's complete shards, in name order."""
    out = StageDir(Path(pack_dir))
    return [sequences_path(out, p.name) for p in out.shards()]
