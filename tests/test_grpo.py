"""GRPO: the config mapping and its batch check, the problem set, and real steps on the tiny model."""

from __future__ import annotations

import dataclasses
import doctest
import re

import pytest
import torch
import trl
from pydantic import ValidationError

import tasks.train.grpo as grpo
from tasks.train.config import has_cuda
from tasks.train.grpo import GRPOConfig, problem_dataset, to_grpo_config, train_grpo
from tasks.train.model import load_model_strict

cpu_only = pytest.mark.skipif(has_cuda(), reason="checks the refusal of GPU settings on a machine without a GPU")


def test_to_grpo_config_maps_every_field(tmp_path):
    cfg = GRPOConfig(
        num_generations=3, max_completion_length=40, temperature=0.7, beta=0.01, loss_type="grpo", learning_rate=2e-5, max_steps=9,
        batch_size=6, grad_accum_steps=2, accuracy_weight=2.0, format_weight=0.5, language_weight=0.1, seed=3, logging_steps=4,
    )  # fmt: skip
    args = to_grpo_config(cfg, str(tmp_path), tracking=False)
    assert isinstance(args, trl.GRPOConfig)
    assert (args.num_generations, args.max_completion_length, args.temperature, args.beta, args.loss_type) == (3, 40, 0.7, 0.01, "grpo")
    assert (args.learning_rate, args.max_steps, args.per_device_train_batch_size, args.gradient_accumulation_steps) == (2e-5, 9, 6, 2)
    assert args.reward_weights == [2.0, 0.5, 0.1] and (args.seed, args.logging_steps) == (3, 4)
    assert args.generation_batch_size == 12  # batch_size × grad_accum_steps on one process: 4 whole groups of 3
    assert args.use_cpu is not has_cuda()
    assert args.bf16 is False and args.gradient_checkpointing is False and args.use_vllm is False
    assert args.report_to == [] and args.save_strategy == "no"
    assert to_grpo_config(cfg, str(tmp_path), tracking=True).report_to == ["mlflow"]


def test_offered_loss_types_exist_in_trl():
    offered = GRPOConfig.model_fields["loss_type"].annotation.__args__
    documented = set(re.findall(r"'(\w+)'", {f.name: f for f in dataclasses.fields(trl.GRPOConfig)}["loss_type"].metadata["help"]))
    assert set(offered) <= documented


def test_generation_batch_must_hold_whole_groups():
    GRPOConfig(batch_size=8, num_generations=4)
    GRPOConfig(batch_size=2, grad_accum_steps=3, num_generations=6)
    with pytest.raises(ValidationError, match=r"batch_size × grad_accum_steps = 6 × 1 = 6 .* must divide by num_generations 4"):
        GRPOConfig(batch_size=6, num_generations=4)
    with pytest.raises(ValidationError, match="num_generations"):
        GRPOConfig(num_generations=1, batch_size=2)  # a group of one has no advantage
    with pytest.raises(ValidationError, match="at least one of"):
        GRPOConfig(accuracy_weight=0, format_weight=0, language_weight=0)
    with pytest.raises(ValueError, match="divisible by num_generations"):  # TRL's own check agrees with ours
        trl.GRPOConfig(output_dir="unused", use_cpu=True, bf16=False, activation_checkpointing=False, per_device_train_batch_size=6, num_generations=4)


@cpu_only
def test_gpu_settings_refused_on_cpu(tmp_path):
    for setting, name in (({"use_vllm": True}, "grpo.use_vllm"), ({"bf16": True}, "grpo.bf16"), ({"gradient_checkpointing": True}, "grpo.gradient_checkpointing")):
        with pytest.raises(ValueError, match=name):
            to_grpo_config(GRPOConfig(**setting), str(tmp_path))


def test_problem_dataset_is_conversational_with_answers():
    ds = problem_dataset(16, seed=5)
    assert ds.column_names == ["prompt", "answer"] and len(ds) == 16
    row = ds[0]
    assert [m["role"] for m in row["prompt"]] == ["system", "user"] and row["answer"].isdigit()
    assert problem_dataset(16, seed=5)["answer"] == ds["answer"]


def test_reward_summary_doctest():
    assert doctest.testmod(grpo).failed == 0


def test_train_grpo_changes_the_policy_with_varied_rewards(tiny_base, tmp_path):
    model_dir, tokenizer_dir = tiny_base
    cfg = GRPOConfig(max_steps=3, num_generations=4, batch_size=8, max_completion_length=24, num_problems=8, logging_steps=1, cpu_threads=1)
    summary = train_grpo(cfg, str(model_dir), str(tokenizer_dir), str(tmp_path / "grpo"))
    assert summary["steps"] == 3 and summary["completions"] == 24
    assert summary["parameters_changed"]
    rewards = summary["rewards"]
    assert list(summary["reward_mean"]) == ["accuracy_reward", "format_reward", "language_reward"]  # the active ones: the chain reward is off
    # an untrained model writes gibberish: no format, but a varying share of Han characters
    assert 0.0 < summary["reward_mean"]["language_reward"] <= 1.0
    assert all(0.0 <= mean <= 1.0 for mean in summary["reward_mean"].values())
    assert rewards["reward_std"]["max"] > 0.0 and summary["reward_std"] > 0.0  # non-degenerate: GRPO has advantages to learn from
    assert rewards["frac_reward_zero_std"]["mean"] < 1.0
    assert len(summary["samples"]) == 8 and {"question", "completion", *summary["reward_mean"]} <= set(summary["samples"][0])

    trained, base = load_model_strict(summary["model_dir"]), load_model_strict(str(model_dir))
    before, after = dict(base.named_parameters()), dict(trained.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in before)


@pytest.mark.parametrize(
    ("weights", "unscorable"),
    [
        ({}, False),
        ({"accuracy_weight": 2.0, "format_weight": 0.0, "language_weight": 0.3}, False),
        ({"format_weight": 0.0, "language_weight": 0.0}, True),
        ({"chain_weight": 1.0}, False),  # the chain reward reads the question from the prompts TRL passes, as DPO's ranking passes them
    ],
)
def test_grpo_and_dpo_ranking_give_literal_completions_the_same_score(tiny_base, tmp_path, weights, unscorable):
    from trl import GRPOTrainer

    from tasks.tokenize.train import load_tokenizer
    from tasks.train.arithmetic import make_problems, to_prompt
    from tasks.train.dpo import DPOConfig, rank_pairs
    from tasks.train.grpo import reward_functions
    from tasks.train.rewards import weighted_reward

    model_dir, tokenizer_dir = tiny_base
    problem = make_problems(1, seed=0)[0]
    answer = "见下图" if unscorable else problem.answer  # a reference with no number: accuracy cannot judge
    texts = [f"<think>{problem.solution}</think><answer>{problem.answer}</answer>", "<answer>0</answer>", "I have no idea", f"答案是{problem.answer}"]
    grpo_cfg, dpo_cfg = GRPOConfig(num_generations=4, batch_size=4, **weights), DPOConfig(**weights)
    trainer = GRPOTrainer(
        model=load_model_strict(str(model_dir)),
        reward_funcs=reward_functions(grpo_cfg),
        args=to_grpo_config(grpo_cfg, str(tmp_path)),
        train_dataset=problem_dataset(4, seed=0),
        processing_class=load_tokenizer(tokenizer_dir),
    )
    prompt = to_prompt(problem)
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    per_reward = trainer._calculate_rewards([{"prompt": prompt, "answer": answer}] * 4, [prompt] * 4, completions, [[0]] * 4)
    # TRL's sum (GRPOTrainer._generate_and_score_completions): weighted, skipping NaN; a row no reward scored stays NaN
    grpo_scores = (per_reward * trainer.reward_weights.unsqueeze(0)).nansum(dim=1)
    grpo_scores[torch.isnan(per_reward).all(dim=1)] = torch.nan
    grpo_scores = [None if s != s else s for s in grpo_scores.tolist()]

    dpo_scores = weighted_reward(completions, dpo_cfg, answer=[answer] * 4, prompts=[prompt] * 4)
    assert [s is None for s in dpo_scores] == [s is None for s in grpo_scores] == [unscorable] * 4
    assert [s for s in dpo_scores if s is not None] == pytest.approx([s for s in grpo_scores if s is not None])
    pairs, stats = rank_pairs([prompt], [answer], [texts], min_gap=0.0, weights=dpo_cfg)
    if "chain_weight" in weights:
        assert per_reward[:, -1].tolist() == [1.0, 0.0, 0.0, 0.0]  # only the worked solution has a chain
    if unscorable:
        assert pairs == [] and stats["skipped_no_gap"] == 1  # nothing to rank: neither chosen nor rejected
    else:
        best, worst = max(grpo_scores), min(grpo_scores)
        assert pairs[0]["reward_gap"] == pytest.approx(best - worst) and stats["mean_reward"] == pytest.approx(sum(grpo_scores) / 4)
        assert pairs[0]["chosen"][0]["content"] == texts[grpo_scores.index(best)] and pairs[0]["rejected"][0]["content"] == texts[grpo_scores.index(worst)]
