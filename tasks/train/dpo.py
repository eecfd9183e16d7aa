"""Direct preference optimisation with TRL's DPOTrainer: pairs from a file, or built on-policy, or both.

On-policy pairs (the seed's RLHF with rule feedback): the policy samples several answers to each arithmetic
problem, ``tasks.train.rewards.weighted_reward`` scores them with the config's reward weights (the same
registry and weighted sum GRPO trains on: accuracy, format, language, by default 1/0.5/0.25), and the best and
the worst scorable answers become chosen and rejected when they differ by at least ``min_reward_gap``. The reference
model is a frozen copy of the policy, loaded strictly from the same folder.

Writes ``<output_dir>/model/`` (weights + tokenizer, loadable strictly) and ``<output_dir>/summary.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from tasks.store import resolve_data_path
from tasks.train.config import (
    BatchSize,
    CpuThreads,
    GenerationSettings,
    LearningRate,
    MaxSteps,
    RegisteredModel,
    TrainSettings,
    check_gpu_features,
    has_cuda,
    trainer_arguments,
)
from tasks.train.rewards import RewardWeights

if TYPE_CHECKING:  # torch, transformers and trl load in seconds; the flow and recipes import the config without them
    import trl
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer

    from tasks.train.arithmetic import Problem

# The pairwise losses of TRL 1.16's DPOTrainer (trl/trainer/dpo_config.py); "aot_unpaired" needs unpaired data
# and "sft" is not a preference loss, so neither is offered.
DPOLoss = Literal["sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot", "apo_zero", "apo_down", "discopop", "sigmoid_norm"]

DEFAULT_PAIRS = "data/sample/preferences/pairs.jsonl"


class DPOConfig(RewardWeights, TrainSettings):
    """DPO: preference pairs (from a file and/or sampled from the policy and ranked by the weighted rule rewards),
    a frozen reference copy of the policy, and TRL's DPOTrainer with beta and the loss type below."""

    learning_rate: LearningRate = 5e-5
    max_steps: MaxSteps = 30
    batch_size: BatchSize = 4
    cpu_threads: CpuThreads = 1
    registered_model: RegisteredModel = "liandan-dpo"
    beta: float = Field(0.1, gt=0, le=10, description="How far the policy may move from the reference: higher keeps it closer (for ipo it is the regulariser τ).")
    loss_type: DPOLoss = Field("sigmoid", description="Preference loss: sigmoid (the DPO paper), hinge (SLiC), ipo, robust (noisy labels), apo_zero, … as TRL 1.16 names them.")
    max_length: int = Field(512, ge=16, le=131_072, description="Prompt + answer tokens kept per sequence (longer ones are truncated at the end).")
    pairs_path: str = Field(
        DEFAULT_PAIRS,
        min_length=1,
        max_length=2000,
        description="JSON-lines preference pairs (prompt/chosen/rejected, conversational or plain text). A relative path is "
        "looked up in the working directory, then in the project folder (where the bundled pairs live).",
    )
    pairs_source: Literal["file", "on_policy", "both"] = Field(
        "both", description="file: the pairs in pairs_path; on_policy: sample the policy on arithmetic problems and rank with the rule rewards; both: all of them."
    )
    num_prompts: int = Field(16, ge=1, le=100_000, description="on_policy: arithmetic problems to sample answers for.")
    problem_seed: int = Field(1, ge=0, le=2**32 - 1, description="on_policy: seed of the generated problems (the bundled evaluation set uses seed 0).")
    samples_per_prompt: int = Field(4, ge=2, le=64, description="on_policy: answers sampled per problem; best and worst become a pair.")
    temperature: float = Field(1.0, gt=0, le=5, description="on_policy: sampling temperature.")
    max_new_tokens: int = Field(64, ge=1, le=8192, description="on_policy: longest sampled answer, in tokens.")
    min_reward_gap: float = Field(
        0.5, ge=0, le=300, description="on_policy: a problem yields a pair only when its best and worst weighted rule rewards (0–1.75 at the default weights) differ by at least this."
    )


def check_hardware(cfg: DPOConfig, cuda: bool) -> None:
    """Raise with the setting to change when ``cfg`` asks for a GPU feature this machine lacks."""
    check_gpu_features("dpo", cfg.bf16, cfg.gradient_checkpointing, cuda)


def to_dpo_config(cfg: DPOConfig, output_dir: str, tracking: bool = False) -> trl.DPOConfig:
    """Return TRL's DPOConfig for ``cfg`` (checkpoints under ``output_dir``); the rest stays at TRL's defaults."""
    import trl

    cuda = has_cuda()
    check_hardware(cfg, cuda)
    return trl.DPOConfig(
        output_dir=output_dir,
        **trainer_arguments(cfg, cuda, tracking),
        beta=cfg.beta,
        loss_type=[cfg.loss_type],
        max_length=cfg.max_length,
        logging_first_step=True,  # the margins start at 0: step 1 shows the untrained pair ranking
        save_strategy="no",  # a short stage: the final model is saved once, by us
        dataloader_num_workers=0,
    )


def load_pairs(path: str | Path) -> list[dict]:
    """Return the preference pairs of a JSON-lines file, each with prompt, chosen and rejected.

    A relative path missing from the working directory is read from the project folder (the bundled sample).
    """
    path = resolve_data_path(path)
    pairs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        missing = {"prompt", "chosen", "rejected"} - row.keys()
        if missing:
            raise ValueError(f"{path}:{n} lacks {sorted(missing)}: a preference pair needs prompt, chosen and rejected")
        pairs.append({k: row[k] for k in ("prompt", "chosen", "rejected")})
    return pairs


def sampling_settings(cfg: DPOConfig) -> GenerationSettings:
    """Return how the policy samples its on-policy answers: ``samples_per_prompt`` at ``temperature``, seeded by ``seed``."""
    return GenerationSettings(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, num_return_sequences=cfg.samples_per_prompt, seed=cfg.seed)


def sample_completions(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[list[dict]], cfg: DPOConfig) -> list[list[str]]:
    """Return ``cfg.samples_per_prompt`` sampled answers (text, cut at `<|im_end|>` or eos) for each conversational prompt."""
    from tasks.train.generation import generate_texts

    return generate_texts(model, tokenizer, prompts, sampling_settings(cfg))


def rank_pairs(prompts: list[list[dict]], answers: list[str], completions: list[list[str]], min_gap: float, *, weights: RewardWeights) -> tuple[list[dict], dict]:
    """Return best-vs-worst pairs by weighted rule reward for each prompt whose gap is at least ``min_gap``, and the tally.

    The score is ``weighted_reward``'s, GRPO's own; an unscorable sample (None) is neither chosen nor rejected, and
    a prompt with fewer than two scorable samples has no gap (counted in ``skipped_no_gap``).
    """
    from tasks.train.rewards import weighted_reward

    pairs, skipped, scores = [], 0, []
    for prompt, answer, samples in zip(prompts, answers, completions, strict=True):
        rewards = weighted_reward(samples, weights, answer=[answer] * len(samples), prompts=[prompt] * len(samples))
        scored = [i for i, r in enumerate(rewards) if r is not None]
        scores.extend(rewards[i] for i in scored)
        if len(scored) < 2:
            skipped += 1
            continue
        best = max(scored, key=rewards.__getitem__)
        worst = min(scored, key=rewards.__getitem__)
        if rewards[best] - rewards[worst] < max(min_gap, 1e-9):  # equal rewards say nothing about preference
            skipped += 1
            continue
        pairs.append(
            {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": samples[best]}],
                "rejected": [{"role": "assistant", "content": samples[worst]}],
                "reward_gap": rewards[best] - rewards[worst],
            }
        )
    stats = {"prompts": len(prompts), "pairs": len(pairs), "skipped_no_gap": skipped, "mean_reward": sum(scores) / len(scores) if scores else 0.0}
    return pairs, stats


def build_on_policy_pairs(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, problems: list[Problem], cfg: DPOConfig) -> tuple[list[dict], dict]:
    """Return pairs sampled from the policy on ``problems`` and ranked by the weighted rule rewards, and the tally."""
    from tasks.train.arithmetic import to_prompt

    prompts = [to_prompt(p) for p in problems]
    completions = sample_completions(model, tokenizer, prompts, cfg)
    return rank_pairs(prompts, [p.answer for p in problems], completions, cfg.min_reward_gap, weights=cfg)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (0: as they are), then restore the count the process had."""
    import torch

    threads = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(threads)  # the flow process goes on with its own setting


def log_history_values(trainer: Trainer, key: str) -> list[float]:
    """Return every value the trainer logged under ``key`` during training, in order."""
    return [e[key] for e in trainer.state.log_history if key in e]


def train_dpo(cfg: DPOConfig, policy_dir: str, tokenizer_dir: str, output_dir: str, report_to_mlflow: bool = False) -> dict:
    """Train the policy at ``policy_dir`` with DPO against a frozen copy of itself; return the summary.

    With ``report_to_mlflow`` the trainer logs into the active MLflow run (the caller opens the stage's run).
    """
    from datasets import Dataset
    from trl import DPOTrainer

    from tasks.store import atomic_write_json
    from tasks.tokenize.train import load_tokenizer
    from tasks.train.arithmetic import make_problems
    from tasks.train.model import load_model_strict, parameter_checksum
    from tasks.train.save import save_trained

    out = Path(output_dir)
    args = to_dpo_config(cfg, str(out / "checkpoints"), tracking=report_to_mlflow)  # refuses GPU settings first
    tokenizer = load_tokenizer(tokenizer_dir)
    policy = load_model_strict(policy_dir)
    reference = load_model_strict(policy_dir)
    reference.requires_grad_(False)
    reference.eval()
    before, reference_before = parameter_checksum(policy), parameter_checksum(reference)

    with torch_threads(cfg.cpu_threads):
        file_pairs = load_pairs(cfg.pairs_path) if cfg.pairs_source in ("file", "both") else []
        policy_pairs, on_policy = [], {"prompts": 0, "pairs": 0, "skipped_no_gap": 0, "mean_reward": 0.0}
        if cfg.pairs_source in ("on_policy", "both"):
            policy_pairs, on_policy = build_on_policy_pairs(policy, tokenizer, make_problems(cfg.num_prompts, cfg.problem_seed), cfg)
        pairs = file_pairs + [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in policy_pairs]
        if not pairs:
            raise ValueError(f"no preference pairs: pairs_source={cfg.pairs_source} found none (every on-policy sample scored alike; lower min_reward_gap or sample more)")
        trainer = DPOTrainer(model=policy, ref_model=reference, args=args, train_dataset=Dataset.from_list(pairs), processing_class=tokenizer)
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started

    model_dir = save_trained(trainer, tokenizer, tokenizer_dir, out / "model")
    losses = log_history_values(trainer, "loss")
    margins = log_history_values(trainer, "rewards/margins")
    accuracies = log_history_values(trainer, "rewards/accuracies")
    steps = trainer.state.global_step
    summary = {
        "model_dir": str(model_dir),
        "pairs": len(pairs),
        "pairs_file": len(file_pairs),
        "pairs_on_policy": len(policy_pairs),
        "on_policy": on_policy,
        "on_policy_samples": policy_pairs[:8],  # a few chosen/rejected answers to read in MLflow
        "steps": steps,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "loss_curve": [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e],
        "first_reward_margin": margins[0] if margins else None,
        "last_reward_margin": margins[-1] if margins else None,
        "first_reward_accuracy": accuracies[0] if accuracies else None,
        "last_reward_accuracy": accuracies[-1] if accuracies else None,
        "parameters_changed": parameter_checksum(policy) != before,
        "reference_unchanged": parameter_checksum(reference) == reference_before,
        "train_seconds": seconds,
        "seconds_per_step": seconds / steps if steps else 0.0,
    }
    atomic_write_json(out / "summary.json", summary)
    return summary
