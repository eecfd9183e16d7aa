"""DPO: the config mapping, the bundled and on-policy preference pairs, and a few real steps on the tiny model."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest
import torch
import trl
from pydantic import ValidationError

from tasks.train.arithmetic import make_problems, to_prompt
from tasks.train.config import has_cuda
from tasks.train.dpo import DEFAULT_PAIRS, DPOConfig, build_on_policy_pairs, load_pairs, rank_pairs, sample_completions, to_dpo_config, torch_threads, train_dpo
from tasks.train.model import load_model_strict
from tasks.train.rewards import RewardWeights, language_reward, rule_reward

cpu_only = pytest.mark.skipif(has_cuda(), reason="checks the refusal of GPU settings on a machine without a GPU")


def test_to_dpo_config_maps_every_field(tmp_path):
    cfg = DPOConfig(beta=0.25, loss_type="ipo", learning_rate=1e-4, max_steps=7, batch_size=3, grad_accum_steps=2, max_length=128, seed=5, logging_steps=2)
    args = to_dpo_config(cfg, str(tmp_path), tracking=False)
    assert isinstance(args, trl.DPOConfig)
    assert (args.beta, args.loss_type, args.learning_rate, args.max_steps) == (0.25, ["ipo"], 1e-4, 7)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps, args.max_length, args.seed, args.logging_steps) == (3, 2, 128, 5, 2)
    assert args.use_cpu is not has_cuda()
    assert args.bf16 is False and args.fp16 is False
    assert args.gradient_checkpointing is False  # TRL's default is True
    assert args.report_to == [] and args.save_strategy == "no"
    assert to_dpo_config(cfg, str(tmp_path), tracking=True).report_to == ["mlflow"]


def test_offered_loss_types_exist_in_trl():
    offered = DPOConfig.model_fields["loss_type"].annotation.__args__
    documented = set(re.findall(r"`'(\w+)'`", {f.name: f for f in dataclasses.fields(trl.DPOConfig)}["loss_type"].metadata["help"]))
    assert set(offered) <= documented
    with pytest.raises(ValidationError):
        DPOConfig(loss_type="ppo")
    with pytest.raises(ValidationError):
        DPOConfig(samples_per_prompt=1)  # best vs worst needs two


@cpu_only
def test_gpu_settings_refused_on_cpu(tmp_path):
    with pytest.raises(ValueError, match="dpo.bf16"):
        to_dpo_config(DPOConfig(bf16=True), str(tmp_path))
    with pytest.raises(ValueError, match="dpo.gradient_checkpointing"):
        to_dpo_config(DPOConfig(gradient_checkpointing=True), str(tmp_path))


def test_bundled_pairs_prefer_the_right_chinese_answer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the relative default is found in the project folder from anywhere
    pairs = load_pairs(DEFAULT_PAIRS)
    assert 30 <= len(pairs) <= 60
    for pair in pairs:
        assert pair["prompt"][-1]["role"] == "user" and pair["chosen"][0]["role"] == pair["rejected"][0]["role"] == "assistant"
        assert pair["chosen"][0]["content"] != pair["rejected"][0]["content"]
    arithmetic = [p for p in pairs if p["prompt"][0]["role"] == "system"]
    assert len(arithmetic) == 24
    answers = [p.answer for p in make_problems(24, seed=7)]  # the README's recipe for these lines
    chosen = rule_reward([p["chosen"] for p in arithmetic], answer=answers)
    rejected = rule_reward([p["rejected"] for p in arithmetic], answer=answers)
    assert chosen == [3.0] * 24 and all(r < 3.0 for r in rejected)
    everyday = [p for p in pairs if p["prompt"][0]["role"] == "user"]
    assert sum(language_reward([p["chosen"] for p in everyday])) > sum(language_reward([p["rejected"] for p in everyday]))


def test_load_pairs_names_the_bad_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"prompt": "问", "chosen": "好", "rejected": "坏"}\n\n{"prompt": "问", "chosen": "好"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"pairs.jsonl:3 lacks \['rejected'\]"):
        load_pairs(path)


def test_rank_pairs_takes_best_against_worst_when_the_gap_is_wide_enough():
    problems = make_problems(3, seed=0)
    prompts, answers = [to_prompt(p) for p in problems], [p.answer for p in problems]
    right = [f"<think>{p.solution}</think><answer>{p.answer}</answer>" for p in problems]
    samples = [
        ["I have no idea", right[0], f"<think>想一想</think><answer>{int(answers[0]) + 1}</answer>"],  # 0, 3, 2
        ["答案是一", "答案是二"],  # both wrong, unformatted, Chinese: 1 and 1, no preference
        [right[2], "<think>算</think><answer>错</answer>"],  # 3 against 2: a gap of 1
    ]
    unweighted = RewardWeights(accuracy_weight=1, format_weight=1, language_weight=1)  # every reward counts 1: scores 0 to 3
    pairs, stats = rank_pairs(prompts, answers, samples, min_gap=0.5, weights=unweighted)
    assert stats == {"prompts": 3, "pairs": 2, "skipped_no_gap": 1, "mean_reward": pytest.approx((0 + 3 + 2 + 1 + 1 + 3 + 2) / 7)}
    assert pairs[0]["prompt"] == prompts[0] and pairs[0]["chosen"] == [{"role": "assistant", "content": right[0]}]
    assert pairs[0]["rejected"] == [{"role": "assistant", "content": "I have no idea"}] and pairs[0]["reward_gap"] == 3.0
    assert pairs[1]["prompt"] == prompts[2] and pairs[1]["reward_gap"] == 1.0
    assert rank_pairs(prompts, answers, samples, min_gap=1.5, weights=unweighted)[1]["pairs"] == 1  # only the first gap is that wide


def test_on_policy_sampling_from_the_tiny_model(tiny_base):
    model_dir, tokenizer_dir = tiny_base
    from tasks.tokenize.train import load_tokenizer

    tokenizer, model = load_tokenizer(tokenizer_dir), load_model_strict(str(model_dir))
    side = tokenizer.padding_side
    cfg = DPOConfig(samples_per_prompt=3, max_new_tokens=12, min_reward_gap=0.0)
    problems = make_problems(3, seed=1)
    with torch_threads(1):
        samples = sample_completions(model, tokenizer, [to_prompt(p) for p in problems], cfg)
        pairs, stats = build_on_policy_pairs(model, tokenizer, problems, cfg)  # samples again, from the same seed
    assert [len(s) for s in samples] == [3, 3, 3]
    assert all(isinstance(t, str) for s in samples for t in s)
    assert len({t for s in samples for t in s}) > 1  # sampled, not greedy
    assert tokenizer.padding_side == side  # restored after left-padded generation
    assert stats["prompts"] == 3 and stats["pairs"] + stats["skipped_no_gap"] == 3 and len(pairs) == stats["pairs"]
    by_prompt = {p.question: s for p, s in zip(problems, samples)}
    for pair in pairs:  # seeded: the pairs are made of exactly the answers sampled above
        drawn = by_prompt[pair["prompt"][-1]["content"]]
        assert pair["chosen"][0]["content"] in drawn and pair["rejected"][0]["content"] in drawn and pair["reward_gap"] > 0


def test_train_dpo_moves_the_policy_and_not_the_reference(tiny_base, tmp_path):
    model_dir, tokenizer_dir = tiny_base
    cfg = DPOConfig(max_steps=3, batch_size=4, learning_rate=1e-4, logging_steps=1, pairs_source="both", num_prompts=4, max_new_tokens=16, min_reward_gap=0.0, cpu_threads=1)
    summary = train_dpo(cfg, str(model_dir), str(tokenizer_dir), str(tmp_path / "dpo"))
    assert summary["steps"] == 3
    assert summary["pairs_file"] == len(load_pairs(DEFAULT_PAIRS))
    assert summary["pairs"] == summary["pairs_file"] + summary["pairs_on_policy"]
    assert summary["pairs_on_policy"] + summary["on_policy"]["skipped_no_gap"] == 4
    # at step 1 the policy is the reference, so every implicit reward is 0 and the sigmoid loss is exactly ln 2
    assert summary["first_loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert summary["first_reward_margin"] == pytest.approx(0.0, abs=1e-6)
    assert math.isfinite(summary["last_loss"]) and summary["last_loss"] < summary["first_loss"]
    assert summary["parameters_changed"] and summary["reference_unchanged"]

    trained, base = load_model_strict(summary["model_dir"]), load_model_strict(str(model_dir))
    before, after = dict(base.named_parameters()), dict(trained.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in before)
    from tasks.tokenize.train import load_tokenizer

    assert len(load_tokenizer(summary["model_dir"])) == len(load_tokenizer(tokenizer_dir))  # the tokenizer travels with the model
    im_end = load_tokenizer(tokenizer_dir).convert_tokens_to_ids("<|im_end|>")
    assert im_end in trained.generation_config.eos_token_id  # the saved model stops at the end of the assistant turn, as SFT's does


def test_train_dpo_refuses_when_no_pair_has_a_gap(tiny_base, tmp_path):
    model_dir, tokenizer_dir = tiny_base
    cfg = DPOConfig(pairs_source="on_policy", num_prompts=2, samples_per_prompt=2, max_new_tokens=4, min_reward_gap=3.0, max_steps=1)
    with pytest.raises(ValueError, match="no preference pairs"):
        train_dpo(cfg, str(model_dir), str(tokenizer_dir), str(tmp_path / "dpo"))


def test_on_policy_samples_end_with_the_assistant_turn(tiny_base):
    """A policy that has learnt to reply and then go on with a made-up user turn: its sampled answers stop at `<|im_end|>`."""
    from tasks.tokenize.train import load_tokenizer

    model_dir, tokenizer_dir = tiny_base
    tokenizer, model = load_tokenizer(tokenizer_dir), load_model_strict(str(model_dir))
    prompt = [{"role": "user", "content": "小明有3本书，小红有4本，一共几本？"}]
    conversation = [*prompt, {"role": "assistant", "content": "<answer>7</answer>"}, {"role": "user", "content": "再见"}, {"role": "assistant", "content": "明天见"}]
    ids = tokenizer(tokenizer.apply_chat_template(conversation, tokenize=False), return_tensors="pt", add_special_tokens=False).input_ids
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    with torch_threads(1):
        for _ in range(150):
            loss = model(input_ids=ids, labels=ids).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        samples = sample_completions(model, tokenizer, [prompt], DPOConfig(samples_per_prompt=3, temperature=0.05, max_new_tokens=24))
    assert samples == [["<answer>7</answer>"] * 3]
