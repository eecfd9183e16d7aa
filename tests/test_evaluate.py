"""The evaluation: numeral normaliser and vote on literal answers, held-out problems, the gate's decision, metrics that
move when a tiny model learns, and the gate promoting a better model and refusing a worse one in a real MLflow store."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import pytest

from tasks.evaluate.arith import answer_value, held_out_problems, majority_vote, training_questions
from tasks.evaluate.config import EvalConfig
from tasks.evaluate.gate import gate_decision

ROOT = Path(__file__).resolve().parent.parent
FAST = dict(arith_problems=6, self_consistency_k=2, cot_max_new_tokens=16, direct_max_new_tokens=8)


def test_answer_normaliser_reads_tags_full_width_and_chinese_numerals():
    answers = ["<think>12-3=9，12+9=21</think><answer>二十一</answer>", "<answer>２１本</answer>", "两人共有21本。", "<answer>一百零五元</answer>", "不知道", "<answer>1,050</answer>"]
    assert [answer_value(a) for a in answers] == [Decimal(21), Decimal(21), Decimal(21), Decimal(105), None, Decimal(1050)]


def test_vote_takes_the_majority_of_normalised_answers_and_breaks_ties_by_first_seen():
    assert majority_vote(["<answer>21</answer>", "<answer>二十一</answer>", "<answer>20</answer>", "我不会"]) == Decimal(21)
    assert majority_vote(["<answer>20</answer>", "<answer>21</answer>", "<answer>21本</answer>", "<answer>二十</answer>"]) == Decimal(20)
    assert majority_vote(["不知道", "没有答案"]) is None


def test_held_out_problems_are_never_seen_by_sft_dpo_or_grpo():
    from tasks.train.dpo import DPOConfig
    from tasks.train.grpo import GRPOConfig
    from tasks.train.sft import SFTConfig

    sft, dpo, grpo = SFTConfig(), DPOConfig(), GRPOConfig()
    seen = training_questions([str(ROOT / p) for p in sft.data_paths], [(dpo.num_prompts, dpo.problem_seed, "all"), (grpo.num_problems, grpo.problem_seed, grpo.problem_level)])
    problems, dropped = held_out_problems(EvalConfig(), seen)
    assert (len(problems), dropped) == (200, 0)
    # a user who trains GRPO on the evaluation's own seed: those questions leave the held-out set
    leaked = training_questions([], [(50, 0, "all")])
    problems, dropped = held_out_problems(EvalConfig(), leaked)
    assert dropped == 50 and len(problems) == 150 and not {p.question for p in problems} & leaked
    # the curriculum level is its own set: GRPO on curriculum problems leaks into a curriculum evaluation only
    curriculum = training_questions([], [(50, 0, "curriculum")])
    assert held_out_problems(EvalConfig(), curriculum)[1] == 0
    problems, dropped = held_out_problems(EvalConfig(arith_level="curriculum"), curriculum)
    assert dropped >= 50 and not {p.question for p in problems} & curriculum


def test_gate_promotes_no_worse_and_refuses_worse_with_the_reason():
    gate = ["arith.self_consistency", "ppl.heldout"]
    assert gate_decision({"arith.self_consistency": 0.3, "ppl.heldout": 80.0}, None, gate, 0.0).reasons == ("no champion yet",)
    better = gate_decision({"arith.self_consistency": 0.3, "ppl.heldout": 80.0}, {"arith.self_consistency": 0.3, "ppl.heldout": 90.0}, gate, 0.0)
    assert better.promote and better.reasons == ("arith.self_consistency 0.3 >= champion 0.3", "ppl.heldout 80 <= champion 90")
    worse = gate_decision({"arith.self_consistency": 0.25, "ppl.heldout": 80.0}, {"arith.self_consistency": 0.3, "ppl.heldout": 90.0}, gate, 0.0)
    assert not worse.promote and worse.reasons == ("arith.self_consistency 0.25 is worse than champion 0.3",)
    assert gate_decision({"ppl.heldout": 91.0}, {"ppl.heldout": 90.0}, ["ppl.heldout"], 0.02).promote
    assert gate_decision({"ppl.heldout": 80.0}, None, gate, 0.0).reasons == ("arith.self_consistency was not measured on the candidate",)


def test_perplexity_matches_the_models_own_loss(tiny_base):
    import math

    import torch

    from tasks.evaluate.likelihood import text_perplexity
    from tasks.evaluate.stage import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(tiny_base[0])
    text = "本报讯综合新华社消息：春节前夕，各地铁路部门增开临时列车。"
    ids = torch.tensor([[tokenizer.eos_token_id, *tokenizer(text, add_special_tokens=False).input_ids]])
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss.item()
    assert text_perplexity(model, tokenizer, [text], 256, 4).ppl == pytest.approx(math.exp(loss), rel=1e-4)


def train_on_eval_tasks(model_dir: Path, out: Path, steps: int) -> Path:
    """Save a copy of the model trained ``steps`` AdamW steps on held-out news, labelled reviews and right answers."""
    import torch

    from tasks.evaluate.choice import MC_INSTRUCTION, read_questions, read_reviews, sentiment_prompt
    from tasks.evaluate.stage import load_model_and_tokenizer, read_texts

    cfg = EvalConfig()
    model, tokenizer = load_model_and_tokenizer(model_dir)
    texts = read_texts(ROOT / cfg.heldout_path)[:40]
    texts += [sentiment_prompt(r.text, []) + r.label for r in read_reviews(ROOT / cfg.sentiment_path) if r.split == "test"]
    texts += [f"{MC_INSTRUCTION}\n{q.question}\n答案：{q.options['ABCD'.index(q.answer)]}" for q in read_questions(ROOT / cfg.mc_paths[0])]
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    torch.manual_seed(0)
    rng = random.Random(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        batch = rng.sample(encoded, 16)
        width = max(len(b) for b in batch)
        ids = torch.tensor([b + [tokenizer.pad_token_id] * (width - len(b)) for b in batch])
        labels = torch.tensor([b + [-100] * (width - len(b)) for b in batch])
        model(input_ids=ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def better_model(tiny_base, tmp_path_factory) -> Path:
    return train_on_eval_tasks(tiny_base[0], tmp_path_factory.mktemp("better") / "model", steps=40)


def test_a_model_trained_on_the_tasks_scores_better(tiny_base, better_model):
    from tasks.evaluate.stage import evaluate_model

    cfg = EvalConfig(**FAST)
    before, after = evaluate_model(tiny_base[0], cfg), evaluate_model(better_model, cfg)
    assert before.eval_digest == after.eval_digest  # the same sets: the metrics compare
    assert after.metrics["ppl.heldout"] < 0.5 * before.metrics["ppl.heldout"]
    assert after.metrics["mc.accuracy"] > before.metrics["mc.accuracy"]
    assert set(before.metrics) >= {"icl.sentiment.k0", "icl.sentiment.k3", "arith.greedy", "arith.cot", "arith.self_consistency", "gen.format_rate", "gen.chinese_rate"}
    assert before.metrics["arith.problems"] == 6.0 and len(before.samples) == 6


def test_gate_promotes_a_better_model_and_refuses_a_worse_one(tiny_base, better_model, mlflow_uri, tmp_path):
    from flows.evaluate import promote_chat_model
    from flows.recipe import RunConfig
    from flows.runs import RunContext
    from tasks.evaluate.stage import evaluate_model
    from tasks.store import RunStore
    from tasks.tracking import Tracker

    cfg = EvalConfig(**FAST, gate_metrics=["ppl.heldout", "arith.self_consistency"])
    tracker = Tracker.start_flow(mlflow_uri, "liandan-test", "gate", tmp_path / "artifacts", {}, "http://127.0.0.1:5000")
    ctx = RunContext(RunStore.open(tmp_path, "gate"), tracker, RunConfig(runs_dir=str(tmp_path), tracking_uri=mlflow_uri), "gate")
    client = tracker.client

    def register(model_dir: Path) -> tuple[str, bool, str]:
        run = tracker.start_stage("evaluate", None)
        client.log_artifacts(run, str(model_dir), "model")
        result = evaluate_model(model_dir, cfg)
        version, decision = promote_chat_model(ctx, cfg, f"runs:/{run}/model", run, result, run)
        return version, decision.promote, client.get_run(run).data.tags["gate.reason"]

    assert register(tiny_base[0]) == ("1", True, "no champion yet")
    version, promoted, reason = register(better_model)
    assert (version, promoted) == ("2", True) and reason.startswith("ppl.heldout")
    version, promoted, reason = register(tiny_base[0])
    assert (version, promoted) == ("3", False) and reason.startswith("ppl.heldout") and "is worse than champion" in reason
    assert str(client.get_model_version_by_alias("liandan-chat", "champion").version) == "2"
    assert str(client.get_model_version_by_alias("liandan-chat", "candidate").version) == "3"
    assert client.get_model_version("liandan-chat", "3").tags["gate.decision"] == "refused"
