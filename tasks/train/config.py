"""The train stage's config models: the model (``ModelConfig``), the settings every trainer shares
(``TrainSettings``, ``CheckpointSettings``), pretraining (``PretrainConfig``) and generation (``GenerationSettings``).

Every trainer's config (pretrain here; SFT, distillation, DPO and GRPO next to their trainers) is a
``TrainSettings`` plus its own fields: the optimizer, schedule, batch and accumulation, step budget, seed,
precision, threads and registry name are declared once, with one name each. A stage that wants another
default re-states only the default, with the shared type (``learning_rate: LearningRate = 5e-5``), so bounds
and descriptions cannot drift. ``trainer_arguments`` maps the shared part to HF/TRL arguments once; each
``to_*_config`` adds its stage's own. Nothing here imports torch, transformers or trl at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:  # transformers and torch load in seconds; recipes and the CLI import these configs without them
    from transformers import TrainingArguments


class ModelConfig(BaseModel):
    """The causal language model: a Qwen2- or Llama-style decoder built from these sizes, or any HF model to continue from."""

    model_config = ConfigDict(extra="forbid")

    arch: Literal["qwen2", "llama"] = Field("qwen2", description="Architecture built from scratch: qwen2 (q/k/v biases) or llama (no biases). Both: RMSNorm, SwiGLU, RoPE, grouped-query attention.")
    base_model: str = Field(
        "",
        max_length=500,
        description="Any HF model path or hub id to continue pretraining from instead (its own tokenizer is used, "
        "the sizes below are ignored). Empty: build a new model from the sizes below.",
    )
    hidden_size: int = Field(192, ge=8, le=65_536, description="Width of the residual stream (the default, with 4 layers: ~2M parameters, minutes on 2 CPU cores).")
    num_layers: int = Field(4, ge=1, le=512, description="Decoder layers.")
    num_heads: int = Field(6, ge=1, le=1024, description="Attention (query) heads; hidden_size must divide by it into an even head size.")
    num_kv_heads: int = Field(2, ge=1, le=1024, description="Key/value heads (grouped-query attention); must divide num_heads. Equal to num_heads: plain multi-head.")
    intermediate_size: int = Field(512, ge=8, le=1_048_576, description="SwiGLU inner width (≈ 8/3 × hidden_size, rounded up to a multiple of 64, as Llama does).")
    max_position_embeddings: int = Field(2048, ge=8, le=1_048_576, description="Longest context the model is built for; must be at least pack.seq_len.")
    rope_theta: float = Field(10_000.0, gt=0, le=1e9, description="RoPE base; larger bases suit longer contexts (Qwen2 uses 1e6 at 32K).")
    tie_word_embeddings: bool = Field(True, description="Share input and output embeddings; in a small model the embedding is most of the parameters.")
    initializer_range: float = Field(0.02, gt=0, le=1, description="Std of the normal initialisation of weights.")
    rms_norm_eps: float = Field(1e-6, gt=0, le=1e-2, description="Epsilon of RMSNorm.")
    pad_vocab_to_multiple: int = Field(
        64,  # nanoGPT's 50257 → 50304 made GPT-2 ~25% faster on GPU; a few unused rows cost nothing
        ge=1,
        le=4096,
        description="Round the embedding rows up to a multiple of this (tensor cores like it); 1: exactly the tokenizer's size.",
    )
    attn_implementation: Literal["sdpa", "eager"] = Field("sdpa", description="Attention kernel: PyTorch scaled_dot_product_attention, or the reference eager code.")

    @model_validator(mode="after")
    def _heads_fit(self) -> ModelConfig:
        if self.hidden_size % self.num_heads or (self.hidden_size // self.num_heads) % 2:
            raise ValueError(f"hidden_size {self.hidden_size} must split into num_heads {self.num_heads} heads of an even size (RoPE rotates pairs)")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_kv_heads {self.num_kv_heads} must divide num_heads {self.num_heads}")
        return self


# The shared settings' types: each bound and description written once, re-used where a stage changes a default.
LearningRate = Annotated[
    float,
    Field(
        gt=0,
        le=1,
        description="Peak AdamW learning rate, reached after the warm-up. Usual: pretraining a tiny model 1e-3–3e-3, a 1B+ one ~3e-4; "
        "full SFT of 1B+ ~1e-5, LoRA ~2e-4; DPO/GRPO of 7B ~1e-6 (TRL's default), the demo's tiny model ~5e-5 to move in a few steps.",
    ),
]
Schedule = Annotated[
    Literal["cosine", "linear", "constant"],
    Field(description="Decay after warm-up: cosine down to min_lr_ratio × peak, linear to 0 (HF's and TRL's default), or constant."),
]
WarmupSteps = Annotated[int, Field(ge=0, le=10_000_000, description="Optimizer steps of linear warm-up from 0 to the peak learning rate (or set warmup_ratio).")]
WarmupRatio = Annotated[float, Field(ge=0, lt=1, description="Share of the steps spent warming the learning rate up from 0 (or set warmup_steps; not both).")]
WeightDecay = Annotated[float, Field(ge=0, le=1, description="AdamW decoupled weight decay.")]
AdamBeta2 = Annotated[
    float, Field(ge=0, lt=1, description="AdamW beta2 (0.999 is HF's default; 0.95 is steadier for LLM pretraining, as in GPT-3 and Llama).")
]
MaxSteps = Annotated[int, Field(ge=0, le=100_000_000, description="Optimizer steps to train; 0: train for `epochs` instead.")]
Epochs = Annotated[float, Field(gt=0, le=10_000, description="Passes over the training examples when max_steps is 0.")]
BatchSize = Annotated[int, Field(ge=1, le=65_536, description="Examples (sequences, conversations, pairs or completions) per device per forward pass.")]
LoggingSteps = Annotated[int, Field(ge=1, le=100_000, description="Log loss, learning rate and the stage's metrics every this many steps.")]
CpuThreads = Annotated[
    int,
    Field(
        ge=0,
        le=1024,
        description="Torch intra-op threads while training (and sampling); 0: torch's default (one per core). A tiny model gains nothing from more "
        "than 1, and threads spinning on busy cores made GRPO 6-10x slower (17-30 s against 2.5-3 s a step on 2 shared cores).",
    ),
]
RegisteredModel = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9._-]*$",
        max_length=200,
        description="MLflow Model Registry name of the final model (the new version gets the alias 'candidate'); empty: log it without registering.",
    ),
]
# Keys a recipe may still carry from before a rename: refused with the new name rather than a bare "extra inputs".
RENAMED_SETTINGS = {"grad_accum": "grad_accum_steps"}


class TrainSettings(BaseModel):
    """The settings every trainer shares: AdamW and its schedule, batch and accumulation, step budget, seed,
    precision, threads and the registry name. Each stage's config is one of these plus its own fields."""

    model_config = ConfigDict(extra="forbid")

    learning_rate: LearningRate = 1e-3
    schedule: Schedule = "linear"
    min_lr_ratio: float = Field(0.1, ge=0, le=1, description="cosine: the floor as a share of the peak learning rate (0.1 as in Llama and Chinchilla).")
    warmup_steps: WarmupSteps = 0
    warmup_ratio: WarmupRatio = 0.0
    weight_decay: WeightDecay = 0.0
    adam_beta1: float = Field(0.9, ge=0, lt=1, description="AdamW beta1.")
    adam_beta2: AdamBeta2 = 0.999
    max_grad_norm: float = Field(1.0, ge=0, le=1e6, description="Clip the global gradient norm to this; 0: no clipping.")
    max_steps: MaxSteps = 0
    epochs: Epochs = 1.0
    batch_size: BatchSize = 8
    grad_accum_steps: int = Field(1, ge=1, le=65_536, description="Forward passes accumulated per optimizer step (global batch = batch_size × this × processes).")
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Seed of weight (or adapter) initialisation, data order, dropout and sampling.")
    logging_steps: LoggingSteps = 5
    bf16: bool = Field(False, description="bfloat16 mixed precision. Needs a CUDA GPU with bf16 (Ampere or newer); refused on CPU.")
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass to save GPU memory (~30% slower; TRL's default is on). GPU only; refused on CPU."
    )
    cpu_threads: CpuThreads = 0
    registered_model: RegisteredModel = ""

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for old, new in RENAMED_SETTINGS.items():
                if old in data:
                    raise ValueError(f"`{old}` is now called `{new}`: rename the key (e.g. {new}: {data[old]!r})")
        return data

    @model_validator(mode="after")
    def _one_warmup(self) -> TrainSettings:
        if self.warmup_steps and self.warmup_ratio:
            raise ValueError(f"set warmup_steps ({self.warmup_steps}) or warmup_ratio ({self.warmup_ratio}), not both: set the other to 0")
        return self


class CheckpointSettings(BaseModel):
    """Resumable checkpoints, for the trainers that write them (pretraining, SFT, sequence-level distillation)."""

    model_config = ConfigDict(extra="forbid")

    save_steps: int = Field(100, ge=1, le=100_000_000, description="Write a resumable checkpoint (model, optimizer, scheduler, RNG) every this many steps.")
    save_total_limit: int = Field(2, ge=1, le=1000, description="Keep only this many most recent checkpoints.")
    resume: bool = Field(True, description="Continue from the newest checkpoint of this same training (`checkpoints/<digest>/`) when there is one.")


def settings_of(cfg: BaseModel, *parts: type[BaseModel]) -> dict[str, Any]:
    """Return ``cfg``'s values of the fields that ``parts`` (shared settings models it is composed of) declare.

    How one trainer's config is built from another's shared part: ``SFTConfig(**settings_of(distill, TrainSettings), ...)``.

    >>> settings_of(PretrainConfig(save_steps=7, max_steps=9), CheckpointSettings)
    {'save_steps': 7, 'save_total_limit': 2, 'resume': True}
    """
    names = {name for part in parts for name in part.model_fields}
    return cfg.model_dump(include=names)


class GenerationSettings(BaseModel):
    """How a model generates: length, greedy or sampled (temperature, top-p, top-k), answers per prompt, batching, seed.

    The one set of generation knobs of every trainer (SFT samples, distillation's teacher, DPO's on-policy pairs)
    and the evaluation; ``tasks.train.generation`` applies it, stopping at `<|im_end|>` and eos.
    """

    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int = Field(128, ge=1, le=131_072, description="Longest completion, in tokens (it also stops earlier at `<|im_end|>` or eos).")
    temperature: float = Field(0.0, ge=0, le=5, description="Sampling temperature; 0: greedy (the most likely token every step, the same answer every time).")
    top_p: float = Field(1.0, gt=0, le=1, description="Sampling only: keep the smallest set of tokens whose probabilities sum to this (nucleus sampling); 1: all tokens.")
    top_k: int = Field(0, ge=0, le=1_000_000, description="Sampling only: keep the k most likely tokens; 0: no limit.")
    num_return_sequences: int = Field(1, ge=1, le=1024, description="Completions per prompt (greedy ones are all alike: sample for several distinct ones).")
    batch_size: int = Field(8, ge=1, le=65_536, description="Prompts per generate call (each with all its completions), left-padded to one length.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of sampling (set once before the first batch).")


class PretrainConfig(CheckpointSettings, TrainSettings):
    """Next-token pretraining: AdamW with warm-up and a cosine or linear schedule, clipping, accumulation, checkpoints."""

    learning_rate: LearningRate = 2e-3
    schedule: Schedule = "cosine"
    warmup_steps: WarmupSteps = 20
    weight_decay: WeightDecay = 0.1
    adam_beta2: AdamBeta2 = 0.95
    max_steps: MaxSteps = 150
    registered_model: RegisteredModel = "liandan-base"
    eval_steps: int = Field(50, ge=0, le=100_000_000, description="Evaluate per-source perplexity on the held-out split every this many steps; 0: only at the end.")
    eval_sequences: int = Field(256, ge=1, le=10_000_000, description="At most this many held-out sequences per source are evaluated.")
    num_processes: int = Field(1, ge=1, le=4096, description="1: train inside the flow process. More: run `accelerate launch` with this many processes (GPUs).")
    accelerate_config: str = Field("", max_length=500, description="accelerate config file for num_processes > 1 (recipes/accelerate/ddp.yaml, fsdp.yaml, zero2.yaml, zero3.yaml); empty: plain DDP.")
    dataloader_workers: int = Field(0, ge=0, le=256, description="DataLoader worker processes; 0 reads in the training process (packed shards are memory-mapped, so that is usually enough).")


def has_cuda() -> bool:
    """Return whether a CUDA device is visible (imported lazily so configs load without torch)."""
    import torch

    return torch.cuda.is_available()


def check_gpu_features(section: str, bf16: bool, gradient_checkpointing: bool, cuda: bool) -> None:
    """Raise naming ``<section>.<setting>`` when bf16 or gradient checkpointing is asked for without a GPU that has it.

    Every trainer's config (pretrain, sft, dpo, grpo) checks these two the same way.
    """
    if bf16 and not cuda:
        raise ValueError(f"{section}.bf16=true needs a CUDA GPU with bfloat16 (Ampere or newer); none is visible. Set {section}.bf16=false on CPU.")
    if bf16:
        import torch

        if not torch.cuda.is_bf16_supported():
            raise ValueError(f"{section}.bf16=true: {torch.cuda.get_device_name()} has no bfloat16 support. Set {section}.bf16=false.")
    if gradient_checkpointing and not cuda:
        raise ValueError(
            f"{section}.gradient_checkpointing=true saves GPU memory and only slows a CPU run; none is visible. Set {section}.gradient_checkpointing=false."
        )


def check_hardware(cfg: PretrainConfig, cuda: bool) -> None:
    """Raise with the setting to change when ``cfg`` asks for a GPU feature this machine lacks."""
    check_gpu_features("pretrain", cfg.bf16, cfg.gradient_checkpointing, cuda)


_SCHEDULES = {"cosine": "cosine_with_min_lr", "linear": "linear", "constant": "constant_with_warmup"}


def trainer_arguments(cfg: TrainSettings, cuda: bool, tracking: bool) -> dict[str, Any]:
    """Return the HF/TRL training arguments of ``cfg``'s shared settings: the one mapping every ``to_*_config`` starts from.

    Args:
        cuda: a CUDA device is visible (the caller has checked the GPU settings against it).
        tracking: report to MLflow (into the active run, which the caller opens on the stage's child run).
    """
    return {
        "use_cpu": not cuda,
        "bf16": cfg.bf16,  # TRL turns bf16 on by default; a CPU run must say no
        "fp16": False,
        "activation_checkpointing": cfg.gradient_checkpointing,  # TRL turns gradient checkpointing on by default; the new name overrides it
        "learning_rate": cfg.learning_rate,
        "lr_scheduler_type": _SCHEDULES[cfg.schedule],
        "lr_scheduler_kwargs": {"min_lr_rate": cfg.min_lr_ratio} if cfg.schedule == "cosine" else {},
        "warmup_steps": cfg.warmup_ratio or cfg.warmup_steps,  # transformers 5 takes a ratio here when it is below 1 (warmup_ratio is gone)
        "weight_decay": cfg.weight_decay,
        "adam_beta1": cfg.adam_beta1,
        "adam_beta2": cfg.adam_beta2,
        "optim": "adamw_torch_fused" if cuda else "adamw_torch",
        "max_grad_norm": cfg.max_grad_norm,
        "per_device_train_batch_size": cfg.batch_size,
        "gradient_accumulation_steps": cfg.grad_accum_steps,
        "max_steps": cfg.max_steps or -1,
        "num_train_epochs": cfg.epochs,
        "seed": cfg.seed,
        "logging_steps": cfg.logging_steps,
        "report_to": ["mlflow"] if tracking else "none",
        "disable_tqdm": True,  # progress goes to the logs Prefect shows, not a terminal bar
    }


def to_training_arguments(cfg: PretrainConfig, output_dir: str, *, evaluate: bool = True, tracking: bool = False) -> TrainingArguments:
    """Return HF TrainingArguments for ``cfg`` writing checkpoints to ``output_dir``; the rest stays at HF's defaults.

    Args:
        evaluate: there is a held-out split (evaluate every ``eval_steps``, or only at the end when 0).
        tracking: report to MLflow (into the active run, which the caller opens on the stage's child run).
    """
    from transformers import TrainingArguments

    cuda = has_cuda()
    check_hardware(cfg, cuda)
    return TrainingArguments(
        output_dir=output_dir,
        **trainer_arguments(cfg, cuda, tracking),
        per_device_eval_batch_size=cfg.batch_size,
        eval_strategy="steps" if evaluate and cfg.eval_steps else "no",
        eval_steps=cfg.eval_steps or None,
        prediction_loss_only=True,
        logging_first_step=True,  # the loss curve starts at step 1: its start is the untrained model
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        dataloader_num_workers=cfg.dataloader_workers,
        remove_unused_columns=False,  # our datasets yield exactly input_ids and labels
        ddp_find_unused_parameters=False,  # every parameter gets a gradient; skipping the search saves a graph walk per step
    )


class PretrainJob(BaseModel):
    """One pretraining run as a file: where the packed data and tokenizer are, where to write, and the two configs.

    The flow writes it as ``runs/<run>/pretrain/job.yaml``; ``python -m tasks.train.pretrain --config job.yaml``
    (alone, or under ``accelerate launch``) runs it.
    """

    model_config = ConfigDict(extra="forbid")

    data_dir: str = Field(..., min_length=1, description="Folder of packed shards (runs/<run>/pack).")
    tokenizer_dir: str = Field(..., min_length=1, description="Folder of the saved tokenizer (runs/<run>/tokenize).")
    output_dir: str = Field(..., min_length=1, description="Folder for checkpoints/, the final model/ and summary.json.")
    model: ModelConfig = Field(default_factory=ModelConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
