"""GRPO with verifiable rewards: TRL's GRPOTrainer on generated Chinese arithmetic word problems.

Each problem (``tasks.train.arithmetic``) is a conversational prompt with its ``answer`` column; the policy
samples ``num_generations`` completions per prompt, and the rule rewards of the registry
(``tasks.train.rewards.REWARDS``) score them — accuracy (the number, after normalising full-width digits and
Chinese numerals), format (``<think>…</think><answer>…</answer>``, with partial credit) and language
consistency — weighted (``RewardWeights``, the same weights and sum DPO's on-policy ranking uses) and summed. Advantages are each completion's reward against its group's mean, so a group whose completions all
score alike teaches nothing: run GRPO after SFT, when the policy sometimes gets the format or the answer.

Writes ``<output_dir>/model/`` (weights + tokenizer, loadable strictly) and ``<output_dir>/summary.json``.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from tasks.train.config import (
    CpuThreads,
    LearningRate,
    LoggingSteps,
    MaxSteps,
    RegisteredModel,
    TrainSettings,
    check_gpu_features,
    has_cuda,
    trainer_arguments,
)
from tasks.train.rewards import REWARDS, RewardFunction, RewardWeights, completion_text, prompt_text

if TYPE_CHECKING:  # torch, transformers and trl load in seconds; the flow and recipes import the config without them
    import trl
    from transformers import Trainer

REWARD_NAMES = tuple(REWARDS)  # the metric names TRL logs: rewards/<name>/mean


class GRPOConfig(RewardWeights, TrainSettings):
    """GRPO: the policy samples several answers per arithmetic problem; rule rewards for accuracy, format and
    language score them against each other (group-relative advantages), with an optional KL pull to the start."""

    learning_rate: LearningRate = 5e-5
    max_steps: MaxSteps = 20
    logging_steps: LoggingSteps = 1
    cpu_threads: CpuThreads = 1
    registered_model: RegisteredModel = "liandan-grpo"
    num_generations: int = Field(4, ge=2, le=256, description="Completions sampled per prompt (the group its advantages are relative to).")
    max_completion_length: int = Field(64, ge=1, le=131_072, description="Longest completion, in tokens (a reasoning model wants hundreds to thousands).")
    temperature: float = Field(1.0, gt=0, le=5, description="Sampling temperature; the group needs diverse completions to have anything to compare.")
    beta: float = Field(0.04, ge=0, le=10, description="KL penalty to the starting policy (0.04 as in DeepSeekMath; 0: no reference model is loaded — faster, less memory).")
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo"] = Field("dapo", description="Token-loss aggregation, as TRL 1.16 names it: dapo (TRL's default, no length bias), grpo (the paper's), dr_grpo, bnpo.")
    num_problems: int = Field(64, ge=1, le=10_000_000, description="Arithmetic word problems generated for training.")
    problem_level: Literal["all", "curriculum"] = Field(
        "all", description="Problems generated: all (the eight templates, ×, ÷ and two-step sums included) or curriculum (one- and two-digit + and −, the demo's cold start)."
    )
    problem_seed: int = Field(2, ge=0, le=2**32 - 1, description="Seed of the generated problems (the bundled evaluation set uses seed 0, DPO's on-policy set seed 1).")
    use_vllm: bool = Field(False, description="Generate with vLLM colocated on the training GPU (much faster sampling). Needs a CUDA GPU and the vllm package; refused on CPU.")

    @model_validator(mode="after")
    def _groups_fit(self) -> GRPOConfig:
        # TRL generates batch_size × grad_accum_steps completions per round and needs whole groups of num_generations in it
        if (self.batch_size * self.grad_accum_steps) % self.num_generations:
            raise ValueError(
                f"batch_size × grad_accum_steps = {self.batch_size} × {self.grad_accum_steps} = {self.batch_size * self.grad_accum_steps} completions per "
                f"generation round must divide by num_generations {self.num_generations} (whole groups only); e.g. set batch_size to {self.num_generations}"
            )
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
        **trainer_arguments(cfg, cuda, tracking),
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        beta=cfg.beta,
        loss_type=cfg.loss_type,
        reward_weights=list(cfg.active().values()),  # in reward_functions(cfg) order
        save_strategy="no",  # a short stage: the final model is saved once, by us
        use_vllm=cfg.use_vllm,
        vllm_mode="colocate",  # vLLM shares the training GPU: no separate server to start
        dataloader_num_workers=0,
    )


def reward_functions(cfg: RewardWeights) -> list[RewardFunction]:
    """Return the registry's rewards that ``cfg`` weighs above 0, in the order of ``to_grpo_config``'s reward_weights."""
    return [REWARDS[name] for name in cfg.active()]


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
        rows.append({"question": prompt_text(prompt), "completion": completion_text(completion), **{name: logs["rewards"][name][i] for name in REWARD_NAMES if name in logs.get("rewards", {})}})
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
            reward_funcs=reward_functions(cfg),  # the order of args.reward_weights
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
        "completions": steps * cfg.batch_size * cfg.grad_accum_steps,
        "rewards": rewards,
        "reward_mean": {name: rewards.get(f"rewards/{name}/mean", {}).get("mean") for name in cfg.active()},  # the rewards that scored
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
