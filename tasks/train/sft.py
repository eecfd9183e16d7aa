"""Supervised fine-tuning with TRL's SFTTrainer: full, LoRA or QLoRA, loss on the assistant's tokens only.

Instruction rows (alpaca, sharegpt or messages; ``tasks.train.instructions``) become conversations that the
tokenizer's chat template renders; its ``{% generation %}`` markers give TRL the assistant mask, so the
prompt and the system message are context, never targets. LoRA trains low-rank adapters on the attention
and MLP projections while the base weights stay frozen; QLoRA does the same over a 4-bit (bitsandbytes NF4)
copy of the base and needs a CUDA GPU. A LoRA result is merged into a full model (``merge_lora``) by reloading
the base at full precision and adding the adapter, the same path for LoRA and QLoRA.

Writes ``<output_dir>/checkpoints/<digest>/`` (resumable; keyed by the config and the digests of the base model,
tokenizer and data, so a rerun resumes only its own checkpoints — ``tasks.train.resume``), ``<output_dir>/model/`` (weights + tokenizer, loadable
strictly; or the adapter when not merged), ``<output_dir>/adapter/`` (LoRA, when merged) and ``summary.json``.
"""

from __future__ import annotations

import importlib.util
import math
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from tasks.train.config import (
    CheckpointSettings,
    Epochs,
    LearningRate,
    RegisteredModel,
    TrainSettings,
    WarmupRatio,
    check_gpu_features,
    has_cuda,
    trainer_arguments,
)
from tasks.train.generation import stop_token_ids as end_of_turn_ids  # noqa: F401 — the name callers knew; one implementation
from tasks.train.instructions import DataFormat

if TYPE_CHECKING:  # torch, transformers, trl and peft load in seconds; recipes and the flow import the config without them
    import datasets
    import trl
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer

    from tasks.train.instructions import Conversation

DEFAULT_DATA = ["data/sample/instructions/alpaca.jsonl", "data/sample/instructions/sharegpt.jsonl"]
# The projections of every attention and MLP block; Qwen2, Llama, Mistral and Qwen3 all name them so.
DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ADAPTER_NOTE = "ADAPTER.md"


class SFTConfig(CheckpointSettings, TrainSettings):
    """Supervised fine-tuning on instruction data: full, LoRA or QLoRA, loss on the assistant's replies only."""

    method: Literal["full", "lora", "qlora"] = Field(
        "full", description="full: train every weight; lora: low-rank adapters on a frozen base; qlora: adapters on a 4-bit base (CUDA GPU only)."
    )
    lora_r: int = Field(16, ge=1, le=1024, description="LoRA rank: the inner width of each adapter (8–64 is usual).")
    lora_alpha: int = Field(32, ge=1, le=4096, description="LoRA scaling numerator: the update is scaled by alpha / r (2 × r is a common choice).")
    lora_dropout: float = Field(0.05, ge=0, le=0.9, description="Dropout on the adapter's input.")
    lora_target_modules: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TARGETS),
        min_length=1,
        description="Module names that get adapters: by default every attention and MLP projection of Qwen2/Llama.",
    )
    merge_lora: bool = Field(True, description="Merge the adapter into a full model when done; off, model/ holds the adapter alone.")
    learning_rate: LearningRate = 1e-3
    epochs: Epochs = 3.0
    warmup_ratio: WarmupRatio = 0.05
    registered_model: RegisteredModel = "liandan-sft"
    max_length: int = Field(512, ge=16, le=1_048_576, description="Tokens kept per conversation (or per packed sequence); longer ones are cut at the end.")
    packing: bool = Field(False, description="Pack several conversations into each sequence (best-fit decreasing, no cross-attention between them).")
    eval_fraction: float = Field(0.1, ge=0, lt=1, description="Share of conversations held out for the eval loss and sample generations; 0: none.")
    data_paths: list[str] = Field(
        default_factory=lambda: list(DEFAULT_DATA),
        min_length=1,
        description="Instruction data: JSON-lines files (or JSON arrays) and/or `datasets` folders saved with save_to_disk.",
    )
    data_format: DataFormat = Field("auto", description="Row format: alpaca, sharegpt or messages; auto: told apart by each row's keys.")
    num_samples: int = Field(4, ge=0, le=1000, description="Held-out prompts answered by the final model, greedily, for the summary and the run.")
    sample_max_new_tokens: int = Field(96, ge=1, le=8192, description="Longest sample answer, in tokens.")


def check_hardware(cfg: SFTConfig, cuda: bool) -> None:
    """Raise with the setting to change when ``cfg`` asks for a GPU feature this machine lacks."""
    if cfg.method == "qlora" and not cuda:
        raise ValueError("sft.method=qlora trains over a 4-bit bitsandbytes model, which needs a CUDA GPU; none is visible. Use sft.method=lora on CPU.")
    if cfg.method == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
        raise ValueError("sft.method=qlora needs bitsandbytes: pip install bitsandbytes (or use sft.method=lora).")
    check_gpu_features("sft", cfg.bf16, cfg.gradient_checkpointing, cuda)


def to_sft_config(cfg: SFTConfig, output_dir: str, tracking: bool = False, *, save: bool = True) -> trl.SFTConfig:
    """Return TRL's SFTConfig for ``cfg`` (checkpoints under ``output_dir``); the rest stays at TRL's defaults.

    Args:
        tracking: report to MLflow (into the active run, which the caller opens on the stage's child run).
        save: write resumable checkpoints every ``save_steps`` (off for a trainer whose state is not all in the model).
    """
    import trl

    cuda = has_cuda()
    check_hardware(cfg, cuda)
    return trl.SFTConfig(
        output_dir=output_dir,
        **trainer_arguments(cfg, cuda, tracking),
        assistant_only_loss=True,
        packing=cfg.packing,
        max_length=cfg.max_length,
        per_device_eval_batch_size=cfg.batch_size,
        logging_first_step=True,  # the loss curve starts at step 1: the base model's loss on the instructions
        save_strategy="steps" if save else "no",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        dataloader_num_workers=0,  # the conversations are tokenized up front; workers would only fork the process
    )


def lora_config(cfg: SFTConfig):
    """Return peft's LoraConfig for ``cfg`` (a causal LM's adapters, biases untouched)."""
    from peft import LoraConfig

    return LoraConfig(
        task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, target_modules=list(cfg.lora_target_modules), bias="none"
    )


def load_for_training(cfg: SFTConfig, base_model_dir: str) -> PreTrainedModel:
    """Return the base model ready to train by ``cfg.method``: as is (full), wrapped with adapters (lora), or 4-bit with adapters (qlora)."""
    import torch

    from tasks.train.model import load_model_strict

    if cfg.method == "full":
        return load_model_strict(base_model_dir)
    from peft import get_peft_model

    if cfg.method == "lora":
        model = load_model_strict(base_model_dir)
    else:  # qlora: check_hardware has made sure of CUDA and bitsandbytes
        from peft import prepare_model_for_kbit_training
        from transformers import BitsAndBytesConfig

        quant = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",  # NF4 + double quantisation, as in the QLoRA paper (arxiv 2305.14314)
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if cfg.bf16 else torch.float16,
        )
        model = load_model_strict(base_model_dir, quantization_config=quant, device_map={"": torch.cuda.current_device()})
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    torch.manual_seed(cfg.seed)  # the adapters' A matrices start random: the same seed, the same start
    return get_peft_model(model, lora_config(cfg))


def merge_adapter(base_model_dir: str, adapter_dir: str | Path, bf16: bool = False) -> PreTrainedModel:
    """Return the base model, loaded strictly at full precision (or bf16), with the LoRA adapter in ``adapter_dir`` merged in."""
    import torch
    from peft import PeftModel

    from tasks.train.model import load_model_strict

    base = load_model_strict(base_model_dir, dtype=torch.bfloat16 if bf16 else torch.float32)
    return PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()


def generate_replies(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[Conversation],
    max_new_tokens: int,
    temperature: float = 0.0,
    seed: int = 0,
    batch_size: int = 8,
) -> list[str]:
    """Return the model's reply to each conversational prompt: greedy at temperature 0, else sampled (``tasks.train.generation``)."""
    from tasks.train.generation import GenerationSettings, generate_texts

    settings = GenerationSettings(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, batch_size=batch_size)
    return [texts[0] for texts in generate_texts(model, tokenizer, prompts, settings)]


def sample_generations(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, held_out: list[Conversation], n: int, max_new_tokens: int) -> list[dict]:
    """Return up to ``n`` held-out prompts with the reference reply and the model's greedy one."""
    from tasks.train.instructions import prompt_of

    chosen = held_out[:n]
    replies = generate_replies(model, tokenizer, [prompt_of(c) for c in chosen], max_new_tokens) if chosen else []
    return [{"prompt": c[-2]["content"], "reference": c[-1]["content"], "response": r} for c, r in zip(chosen, replies, strict=True)]


def conversations_dataset(conversations: list[Conversation]) -> datasets.Dataset:
    """Return the conversations as a ``datasets.Dataset`` with one ``messages`` column (TRL's conversational format)."""
    import datasets

    return datasets.Dataset.from_list([{"messages": c} for c in conversations])


def loss_curve(log_history: list[dict]) -> list[tuple[int, float]]:
    """Return (step, training loss) for every logged training step.

    >>> loss_curve([{"step": 1, "loss": 2.5}, {"step": 1, "eval_loss": 2.0}, {"step": 5, "loss": 1.5}])
    [(1, 2.5), (5, 1.5)]
    """
    return [(e["step"], e["loss"]) for e in log_history if "loss" in e]


def run_trainer(trainer: Trainer, cpu_threads: int, resume_from: str | None = None) -> float:
    """Train with ``cpu_threads`` torch threads (0: as is), restore the process's setting, and return the seconds."""
    import torch

    threads = torch.get_num_threads()
    if cpu_threads:
        torch.set_num_threads(cpu_threads)
    try:
        started = time.perf_counter()
        trainer.train(resume_from_checkpoint=resume_from)
        return time.perf_counter() - started
    finally:
        torch.set_num_threads(threads)  # the flow process goes on with its own setting


def sft_digest(cfg: SFTConfig, base_model_dir: str, tokenizer_dir: str) -> str:
    """Return the digest naming this fine-tuning's checkpoint folder: the config, the base model, the tokenizer and the data."""
    from tasks.store import resolve_data_path
    from tasks.train.resume import path_digest, tokenizer_input_digest, training_digest

    data = [path_digest(resolve_data_path(p)) for p in cfg.data_paths]
    return training_digest([cfg], [path_digest(base_model_dir), tokenizer_input_digest(tokenizer_dir), *data])


def count_weights(model) -> tuple[int, int]:
    """Return (parameters of the model without adapters, parameters that receive gradients)."""
    from tasks.train.model import count_parameters

    if hasattr(model, "get_nb_trainable_parameters"):  # a peft model: counts 4-bit weights at their real size, adapters apart
        trainable, total = model.get_nb_trainable_parameters()
        return total - trainable, trainable
    return count_parameters(model), sum(p.numel() for p in model.parameters() if p.requires_grad)


def save_final(trainer: Trainer, cfg: SFTConfig, base_model_dir: str, tokenizer_dir: str, out: Path) -> dict:
    """Save the trained model as ``cfg.method`` asks and return where: model_dir, adapter_dir (LoRA) and whether model/ is an adapter."""
    from tasks.train.save import copy_tokenizer, save_model, save_trained

    tokenizer = trainer.processing_class
    model_dir = out / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)  # a rerun replaces the result, never mixes two
    if cfg.method == "full":
        save_trained(trainer, tokenizer, tokenizer_dir, model_dir)
        return {"model_dir": str(model_dir), "adapter_dir": "", "is_adapter": False}
    adapter_dir = out / "adapter" if cfg.merge_lora else model_dir
    trainer.model.save_pretrained(str(adapter_dir))
    copy_tokenizer(tokenizer_dir, adapter_dir)
    if cfg.merge_lora:
        save_model(merge_adapter(base_model_dir, adapter_dir, bf16=cfg.bf16), tokenizer, tokenizer_dir, model_dir)
    else:
        (model_dir / ADAPTER_NOTE).write_text(
            f"# LoRA adapter\n\nThis folder holds a LoRA adapter (rank {cfg.lora_r}) for the base model `{base_model_dir}`, not a full model.\n"
            "Load it with `peft.PeftModel.from_pretrained(load_model_strict(base), this_folder)`, or merge it: "
            "`tasks.train.sft.merge_adapter(base, this_folder)`; `sft.merge_lora=true` saves the merged model instead.\n",
            encoding="utf-8",
        )
    return {"model_dir": str(model_dir), "adapter_dir": str(adapter_dir), "is_adapter": not cfg.merge_lora}


def train_sft(cfg: SFTConfig, base_model_dir: str, tokenizer_dir: str, output_dir: str, report_to_mlflow: bool = False) -> dict:
    """Fine-tune the model at ``base_model_dir`` on ``cfg.data_paths`` (resuming from its own newest checkpoint) and return the summary.

    With ``report_to_mlflow`` the trainer logs params, the loss curve and the evaluation into the active MLflow
    run (the caller opens it on the stage's child run).
    """
    import trl

    from tasks.store import atomic_write_json
    from tasks.tokenize.train import load_tokenizer
    from tasks.train.instructions import load_conversations, split_conversations

    from tasks.train.resume import checkpoint_dir, last_checkpoint

    out = Path(output_dir)
    check_hardware(cfg, has_cuda())  # refuses GPU settings on CPU before any loading
    checkpoints = checkpoint_dir(out, sft_digest(cfg, base_model_dir, tokenizer_dir))
    args = to_sft_config(cfg, str(checkpoints), tracking=report_to_mlflow)
    tokenizer = load_tokenizer(tokenizer_dir)
    train_rows, eval_rows = split_conversations(load_conversations(cfg.data_paths, cfg.data_format), cfg.eval_fraction, cfg.seed)
    model = load_for_training(cfg, base_model_dir)
    parameters, trainable = count_weights(model)
    trainer = trl.SFTTrainer(
        model=model,
        args=args,
        train_dataset=conversations_dataset(train_rows),
        eval_dataset=conversations_dataset(eval_rows) if eval_rows else None,
        processing_class=tokenizer,
    )
    resume_from = last_checkpoint(checkpoints, cfg.max_steps) if cfg.resume else None
    seconds = run_trainer(trainer, cfg.cpu_threads, resume_from)
    evaluation = trainer.evaluate() if eval_rows else {}
    samples = sample_generations(trainer.model, tokenizer, eval_rows, cfg.num_samples, cfg.sample_max_new_tokens)
    saved = save_final(trainer, cfg, base_model_dir, tokenizer_dir, out)

    curve = loss_curve(trainer.state.log_history)
    # TRL counts the real (unpadded) tokens trained in this call, logged cumulatively: the last count is this call's total
    tokens = next((e["num_tokens"] for e in reversed(trainer.state.log_history) if "num_tokens" in e), 0)
    eval_loss = evaluation.get("eval_loss")
    summary = {
        **saved,
        "method": cfg.method,
        "base_model": base_model_dir,
        "parameters": parameters,
        "trainable_parameters": trainable,
        "steps": trainer.state.global_step,
        "resumed_from": str(resume_from or ""),
        "first_loss": curve[0][1] if curve else None,
        "last_loss": curve[-1][1] if curve else None,
        "loss_curve": curve,
        "eval_loss": eval_loss,
        "eval_ppl": math.exp(min(eval_loss, 50.0)) if eval_loss is not None else None,  # exp overflows past ~709; 50 already means "untrained"
        "eval_token_accuracy": evaluation.get("eval_mean_token_accuracy"),
        "train_conversations": len(train_rows),
        "eval_conversations": len(eval_rows),
        "train_tokens": tokens,
        "tokens_per_s": tokens / seconds if seconds else 0.0,
        "train_seconds": seconds,
        "samples": samples,
    }
    atomic_write_json(out / "summary.json", summary)
    return summary
