"""Where a trainer resumes from: checkpoints live under a folder keyed by the digest of what they train.

``<output_dir>/checkpoints/<digest>/checkpoint-N/``: the digest (``tasks.store.stage_digest``) covers the
configs that shape the weights and the digests of the inputs (base model, tokenizer, data), so a changed
learning rate, a retrained tokenizer or new data starts in a fresh folder and never resumes another
config's checkpoint, while a killed run with the same digest finds its own checkpoints again.

The step budget (``max_steps``, ``epochs``) and the bookkeeping settings (logging, evaluation and save
intervals, threads, processes, the registry name) are left out of the digest: they do not change what a
checkpoint holds, and a run asked to train longer continues the same training.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from tasks.store import file_digest, keyed_dir, stage_digest

CHECKPOINTS = "checkpoints"
TRAINER_STATE = "trainer_state.json"  # the HF Trainer writes it last into a checkpoint: its presence means complete
# Settings that change neither the weights a checkpoint holds nor the way on from it.
NOT_IN_CHECKPOINT = frozenset(
    {
        "max_steps",
        "epochs",
        "logging_steps",
        "eval_steps",
        "eval_sequences",
        "save_steps",
        "save_total_limit",
        "resume",
        "cpu_threads",
        "dataloader_workers",
        "num_processes",
        "accelerate_config",
        "registered_model",
        "num_samples",
        "sample_max_new_tokens",
    }
)


def path_digest(path: str | Path) -> str:
    """Return a digest of an input: a file's bytes, a folder's files (names, sizes, mtimes: cheap, and new with every save), or a hub id's name."""
    p = Path(path)
    if p.is_file():
        return file_digest(p)
    if not p.is_dir():
        return str(path)  # a hub id: its name is all we know without downloading
    files = sorted(f for f in p.rglob("*") if f.is_file())
    return files_digest(files, root=p)


def files_digest(files: Iterable[Path], root: Path | None = None) -> str:
    """Return a digest of the names, sizes and modification times of ``files`` (names relative to ``root``)."""
    listing = [(str(f.relative_to(root)) if root else f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return hashlib.sha256(json.dumps(listing).encode()).hexdigest()[:16]


def tokenizer_input_digest(path: str | Path) -> str:
    """Return a digest of a tokenizer input: its saved files' bytes (a folder), or a hub id's name."""
    from tasks.tokenize.stage import tokenizer_digest

    return tokenizer_digest(path) if Path(path).is_dir() else str(path)


def training_digest(configs: Iterable[BaseModel], inputs: Iterable[str]) -> str:
    """Return the digest naming a training's checkpoint folder: its configs (less ``NOT_IN_CHECKPOINT``) and its inputs' digests."""
    shaping = [cfg.model_dump(mode="json", exclude=set(NOT_IN_CHECKPOINT) & set(type(cfg).model_fields)) for cfg in configs]
    return stage_digest(None, [json.dumps(shaping, sort_keys=True, ensure_ascii=False), *inputs])


def checkpoint_dir(output_dir: str | Path, digest: str) -> Path:
    """Return (created) ``<output_dir>/checkpoints/<digest>``: the only folder this training writes and resumes checkpoints in."""
    return keyed_dir(Path(output_dir) / CHECKPOINTS, digest)


def last_checkpoint(folder: str | Path, max_steps: int = 0) -> str | None:
    """Return the newest complete ``checkpoint-N`` under ``folder`` (one the Trainer finished writing) with N at most
    ``max_steps`` (0: any), or None.

    A run killed while saving leaves a checkpoint without its trainer state; resuming from it would fail, so
    the one before it is taken. The step budget is not part of the folder's key (raising ``max_steps`` trains on
    from the last checkpoint), so a folder can hold checkpoints past a lowered budget: resuming one would train
    nothing and report the lower budget for weights trained longer, so the newest within the budget is taken.
    """
    found = []
    for p in Path(folder).glob("checkpoint-*"):
        step = p.name.removeprefix("checkpoint-")
        if step.isdigit() and (p / TRAINER_STATE).is_file() and (not max_steps or int(step) <= max_steps):
            found.append((int(step), p))
    return str(max(found)[1]) if found else None


def checkpoint_step(checkpoint: str | None) -> int:
    """Return the step a checkpoint folder was written at (0 for None).

    >>> checkpoint_step("runs/demo/pretrain/checkpoints/0f3a/checkpoint-20"), checkpoint_step(None)
    (20, 0)
    """
    return int(Path(checkpoint).name.split("-")[-1]) if checkpoint else 0
