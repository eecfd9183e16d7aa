"""GRPO with verifiable rewards: TRL's GRPOTrainer on generated Chinese arithmetic word problems.

Each problem (``tasks.train.arithmetic``) is a conversational prompt with its ``answer`` column; the policy
samples ``num_generations`` completions per prompt, and three rule rewards (``tasks.train.rewards``) score
them — accuracy (the number, after normalising full-width digits and Chinese numerals), format
(``<think>…</think><answer>…</answer>``, with partial credit) and language consistency — weighted and
summed. Advantages are each completion's reward against its group's mean, so a group whose completions all
score alike teaches nothing: run GRPO after SFT, when the policy sometimes gets the format or the answer.

Writes ``<output_dir>/model/`` (weights + tokenizer, loadable strictly) and ``<output_dir>/summary.json``.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tasks.train.config import check_gpu_features, has_cuda

if TYPE_CHECKING:  # torch, transformers and trl load in seconds; the flow and recipes import the config without them
    import trl
    from transformers import Trainer

REWARD_NAMES = ("accuracy_reward", "format_reward", "language_reward")  # the metric names TRL logs: rewards/<name>/mean


class GRPOConfig(BaseModel):
    """GRPO: the policy samples several answers per arithmetic problem; rule rewards for accuracy, format and
    language score them against each other (group-relative advantages), with an optional KL pull to the start."""

    model_config = ConfigDict(extra="forbid")

    num_generations: int = Field(4, ge=2, le=256, description="Completions sampled per prompt (the group its advantages are relative to).")
    max_completion_length: int = Field(64, ge=1, le=131_072, description="Longest completion, in tokens (a reasoning model wants hundreds to thousands).")
    temperature: float = Field(1.0, gt=0, le=5, description="Sampling temperature; the group needs diverse completions to have anything to compare.")
    beta: float = Field(0.04, ge=0, le=10, description="KL penalty to the starting policy (0.04 as in DeepSeekMath; 0: no reference model is loaded — faster, less memory).")
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = Field("dapo", description="Token-loss aggregation, as TRL 1.16 names it: dapo (TRL's default, no length bias), grpo (the paper's), dr_grpo, bnpo.")
    learning_rate: float = Field(5e-5, gt=0, le=1, description="AdamW learning rate (TRL's default 1e-6 suits large models; the demo's tiny model needs more).")
    max_steps: int = Field(20, ge=1, le=10_000_000, description="Optimizer steps to train.")
    batch_size: int = Field(8, ge=1, le=4096, description="Completions per device per forward pass; batch_size × grad_accum must divide by num_generations.")
    grad_accum: int = Field(1, ge=1, le=4096, description="Forward passes accumulated per optimizer step (and per generation round: TRL generates batch_size × grad_accum completions at once).")
    accuracy_weight: float = Field(1.0, ge=0, le=100, description="Weight of the accuracy reward (1 when the answer's number is right).")
    format_weight: float = Field(0.5, ge=0, le=100, description="Weight of the format reward (1 for `<think>…</think><answer>…</answer>`, 0.2 per well-placed tag otherwise).")
    language_weight: float = Field(0.25, ge=0, le=100, description="Weight of the language reward (the share of Han characters among the letters written).")
    num_problems: int = Field(64, ge=1, le=10_000_000, description="Arithmetic word problems generated for training.")
    problem_level: Literal["all", "curriculum"] = Field(
        "all", description="Problems generated: all (the eight templates, ×, ÷ and two-step sums included) or curriculum (one- and two-digit + and −, the demo's cold start)."
    )
    problem_seed: int = Field(2, ge=0, le=2**32 - 1, description="Seed of the generated problems (the bundled evaluation set uses seed 0, DPO's on-policy set seed 1).")
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Seed of data order and sampling.")
    logging_steps: int = Field(1, ge=1, le=100_000, description="Log rewards (mean per reward, std), KL and completion lengths every this many steps.")
    bf16: bool = Field(False, description="bfloat16 mixed precision. Needs a CUDA GPU with bf16; refused on CPU.")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in the backward pass to save GPU memory (TRL's default is on). GPU only; refused on CPU.")
    use_vllm: bool = Field(False, description="Generate with vLLM colocated on the training GPU (much faster sampling). Needs a CUDA GPU and the vllm package; refused on CPU.")
    cpu_threads: int = Field(
        1,
        ge=0,
        le=1024,
        description="Torch intra-op threads while training and sampling; 0: torch's default (one per core). The demo's tiny model gains nothing from more "
        "than 1, and threads spinning on busy cores made GRPO 6-10x slower (17-30 s against 2.5-3 s a step on 2 shared cores).",
    )
    registered_model: str = Field(
        "liandan-grpo", pattern=r"^[A-Za-z0-9._-]*$", max_length=200, description="MLflow Model Registry name of the final model; empty: log it without registering."
    )

    @model_validator(mode="after")
    def _groups_fit(self) -> GRPOConfig:
        # TRL generates batch_size × grad_accum completions per round and needs whole groups of num_generations in it
        if (self.batch_size * self.grad_accum) % self.num_generations:
            raise ValueError(
                f"batch_size × grad_accum = {self.batch_size} × {self.grad_accum} = {self.batch_size * self.grad_accum} completions per generation round "
                f"must divide by num_generations {self.num_generations} (whole groups only); e.g. set batch_size to {self.num_generations}"
            )
        if not (self.accuracy_weight or self.format_weight or self.language_weight):
            raise ValueError("at least one of accuracy_weight, format_weight, language_weight must be above 0")
        return self


def check_hardware(cfg: GRPOConfig, cuda: bool) -> None:
    """Raise with the setting to change when ``cfg`` asks for a GPU feature this machine lacks."""
    check_gpu_features("grpo", cfg.bf16, cfg.gradient_checkpointing, cuda)
    if cfg.use_vllm and not cuda:
        raise ValueError("grpo.use_vllm=true generates with vLLM, which needs a CUDA GPU; none is visible. Set grpo.use_vllm=false to generate with transformers on CPU.")
    if cfg.use_vllm and importlib.util.find_spec("vllm") is None:
        raise ValueError("grpo.use_vllm=true needs the vllm package (pip install vllm, matching your torch); it is not installed. Set grpo.use_vllm=false.")


def to_grpo_config(cfg: GRPOConfig, output_dir: str, tracking: bool = False) -> trl.GRPOConfig:
    """Return TRL's GRPOConfig for ``cfg`` (checkpoints under ``output_dir``); the rest stays at TRL's defaults."""
    import trl

    cuda = has_cuda()
    check_hardware(cfg, cuda)
    return trl.GRPOConfig(
        output_dir=output_dir,
        use_cpu=not cuda,
        bf16=cfg.bf16,  # TRL turns bf16 on by default; a CPU run must say no
        fp16=False,
        activation_checkpointing=cfg.gradient_checkpointing,  # TRL turns gradient checkpointing on by default; the new name overrides it
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        beta=cfg.beta,
        loss_type=cfg.loss_type,
        learning_rate=cfg.learning_rate,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        reward_weights=[cfg.accuracy_weight, cfg.format_weight, cfg.language_weight],  # in REWARD_NAMES order
        seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        save_strategy="no",  # a short stage: the final model is saved once, by us
        use_vllm=cfg.use_vllm,
        vllm_mode="colocate",  # vLLM shares the training GPU: no separate server to start
        dataloader_num_workers=0,
        report_to=["mlflow"] if tracking else "none",
        disable_tqdm=True,
    )


def problem_dataset(num_problems: int, seed: int, level: str = "all"):
    """Return a ``datasets.Dataset`` of conversational prompts with the ``answer`` column the accuracy reward reads."""
    from datasets import Dataset

    from tasks.train.arithmetic import make_problems, to_prompt

    return Dataset.from_list([{"prompt": to_prompt(p), "answer": p.answer} for p in make_problems(num_problems, seed, level)])


def reward_summary(log_history: list[dict]) -> dict:
    """Return first, last and mean of each logged reward series (per reward mean, total reward, its std).

    >>> reward_summary([{"reward": 0.5, "reward_std": 0.1}, {"reward": 1.0, "reward_std": 0.3, "loss": 0.0}])["reward_std"]
    {'first': 0.1, 'last': 0.3, 'mean': 0.2, 'max': 0.3}
    """
    keys = ["reward", "reward_std", "frac_reward_zero_std", "kl", "completions/mean_length"] + [f"rewards/{n}/mean" for n in REWARD_NAMES]
    out = {}
    for key in keys:
        values = [e[key] for e in log_history if key in e]
        if values:
            out[key] = {"first": values[0], "last": values[-1], "mean": round(sum(values) / len(values), 10), "max": max(values)}
    return out


def last_completions(trainer: Trainer, limit: int = 16) -> list[dict]:
    """Return the last generation batch's prompts (the question), completions and rewards, for MLflow tables.

    TRL keeps them in ``trainer._logs`` (sized to one generation batch) and sends them only to wandb/trackio.
    """
    logs = getattr(trainer, "_logs", None) or {}
    rows = []
    for i, (prompt, completion) in enumerate(zip(logs.get("prompt", []), logs.get("completion", []))):
        if i >= limit:
            break
        question = prompt[-1]["content"] if isinstance(prompt, list) else prompt
        text = "".join(m["content"] for m in completion) if isinstance(completion, list) else completion
        rows.append({"question": question, "completion": text, **{name: logs["rewards"][name][i] for name in REWARD_NAMES if name in logs.get("rewards", {})}})
    return rows


def train_grpo(cfg: GRPOConfig, policy_dir: str, tokenizer_dir: str, output_dir: str, report_to_mlflow: bool = False) -> dict:
    """Train the policy at ``policy_dir`` with GRPO on arithmetic problems; return the summary.

    With ``report_to_mlflow`` the trainer logs into the active MLflow run (the caller opens the stage's run).
    """
    from trl import GRPOTrainer

    from tasks.store import atomic_write_json
    from tasks.tokenize.train import load_tokenizer
    from tasks.train.dpo import log_history_values, torch_threads
    from tasks.train.generation import stop_token_ids
    from tasks.train.model import load_model_strict, parameter_checksum
    from tasks.train.save import save_trained
    from tasks.train.rewards import accuracy_reward, format_reward, language_reward

    out = Path(output_dir)
    args = to_grpo_config(cfg, str(out / "checkpoints"), tracking=report_to_mlflow)  # refuses GPU settings first
    tokenizer = load_tokenizer(tokenizer_dir)
    policy = load_model_strict(policy_dir)
    policy.generation_config.eos_token_id = stop_token_ids(tokenizer)  # TRL stops sampling at these: the end of the assistant turn and eos
    before = parameter_checksum(policy)
    dataset = problem_dataset(cfg.num_problems, cfg.problem_seed, cfg.problem_level)

    with torch_threads(cfg.cpu_threads):
        trainer = GRPOTrainer(
            model=policy,
            reward_funcs=[accuracy_reward, format_reward, language_reward],  # REWARD_NAMES order, as reward_weights
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
        )
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started

    model_dir = save_trained(trainer, tokenizer, tokenizer_dir, out / "model")
    steps = trainer.state.global_step
    rewards = reward_summary(trainer.state.log_history)
    losses = log_history_values(trainer, "loss")
    summary = {
        "model_dir": str(model_dir),
        "problems": len(dataset),
        "steps": steps,
        "completions": steps * cfg.batch_size * cfg.grad_accum,
        "rewards": rewards,
        "reward_mean": {name: rewards.get(f"rewards/{name}/mean", {}).get("mean") for name in REWARD_NAMES},
        "reward_std": rewards.get("reward_std", {}).get("mean"),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "parameters_changed": parameter_checksum(policy) != before,
        "samples": last_completions(trainer),
        "train_seconds": seconds,
        "seconds_per_step": seconds / steps if steps else 0.0,
    }
    atomic_write_json(out / "summary.json", summary)
    return summary
