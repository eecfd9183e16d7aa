"""The one way a trained model is saved: weights, the generation config that stops at `<|im_end|>` and eos, the tokenizer.

Every trainer (pretrain, SFT, distillation, DPO, GRPO) saves through here, so every model folder loads
strictly with its tokenizer beside it, and ``model.generate`` — GRPO's sampling, the evaluation, a user's
own call — ends a reply where training taught it to (``tasks.train.generation.generation_config``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.train.config import GenerationSettings

if TYPE_CHECKING:  # transformers loads in seconds; configs import this package without it
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer

# The files that make up a saved tokenizer (copied beside the weights; everything else in a folder may be a model).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "liandan_tokenizer.json",
)


def copy_tokenizer(tokenizer_dir: str | Path, model_dir: str | Path) -> None:
    """Copy the tokenizer's files (and only those) from ``tokenizer_dir`` into ``model_dir``.

    Copied, not re-saved: a jieba tokenizer cannot be serialised as is; and a base model's folder used as the
    tokenizer folder also holds weights, which must not overwrite the trained ones.
    """
    Path(model_dir).mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        src = Path(tokenizer_dir) / name
        if src.is_file():
            shutil.copy2(src, Path(model_dir) / name)


def set_generation_config(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, settings: GenerationSettings | None = None) -> None:
    """Give ``model`` the generation config of ``settings`` (greedy by default) with the tokenizer's stops and padding."""
    from tasks.train.generation import generation_config

    model.generation_config = generation_config(tokenizer, settings or GenerationSettings())


def save_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, tokenizer_dir: str | Path, model_dir: str | Path) -> Path:
    """Save ``model`` (weights + generation config) and the tokenizer's files to ``model_dir``; return it."""
    set_generation_config(model, tokenizer)
    model.save_pretrained(str(model_dir))
    copy_tokenizer(tokenizer_dir, model_dir)
    return Path(model_dir)


def save_trained(trainer: Trainer, tokenizer: PreTrainedTokenizerBase, tokenizer_dir: str | Path, model_dir: str | Path) -> Path:
    """Save a trainer's model the same way, through ``trainer.save_model`` (which gathers sharded ZeRO-3 / FSDP weights); return the folder.

    Every process calls it; the main process alone writes the tokenizer's files.
    """
    set_generation_config(trainer.model, tokenizer)
    trainer.save_model(str(model_dir))
    if trainer.is_world_process_zero():
        copy_tokenizer(tokenizer_dir, model_dir)
    return Path(model_dir)
