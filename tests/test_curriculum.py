"""The cold-start arithmetic curriculum (tasks.train.arithmetic, level "curriculum") and the SFT rows built from it."""

from __future__ import annotations

import doctest
import json
import re
from decimal import Decimal
from pathlib import Path

import tasks.train.arithmetic as arithmetic
from tasks.evaluate.arith import DIRECT_SYSTEM
from tasks.train.arithmetic import SYSTEM, chinese_numeral, column_steps, make_problems, to_messages
from tasks.train.rewards import extract_number, format_reward, rule_reward

ROOT = Path(__file__).resolve().parent.parent
ROWS = ROOT / "data" / "sample" / "instructions" / "arithmetic.jsonl"
STEP = re.compile(r"(\d+(?:[-+]\d+)+)=(\d+)")  # 3+4=7, and the tens column's 3+2+1=6 or 5-1-1=3


def test_docstring_examples():
    assert doctest.testmod(arithmetic).failed == 0


def test_chinese_numerals_read_back_through_the_rewards_normaliser():
    assert [extract_number(chinese_numeral(n)) for n in range(100)] == [Decimal(n) for n in range(100)]


def test_column_steps_are_one_digit_facts_that_add_up():
    for a in range(1, 100):
        for b in range(1, 100):
            for op, c in (("+", a + b), ("-", a - b)):
                if c < 0 or c > 99:
                    continue
                steps = column_steps(a, op, b)
                assert steps == f"{a}{op}{b}={c}" or (steps.startswith(f"{a}{op}{b}：") and steps.endswith(f"；得{c}")), steps  # the sum first, its result last
                for expression, value in STEP.findall(steps):
                    terms = [int(t) for t in re.findall(r"[-+]?\d+", expression)]
                    assert sum(terms) == int(value), steps
                    assert expression == f"{a}{op}{b}" or (terms[0] < 20 and all(abs(t) < 10 for t in terms[1:])), steps  # every other step is a fact of the 20 table


def test_curriculum_problems_are_addition_and_subtraction_below_100():
    problems = make_problems(210, seed=4, level="curriculum")
    assert problems == make_problems(210, seed=4, level="curriculum") and problems != make_problems(210, seed=5, level="curriculum")
    assert make_problems(8, seed=4) == make_problems(8, seed=4, level="all")  # the default set is unchanged
    zh = 0
    for p in problems:
        assert 0 <= int(p.answer) <= 99 and p.solution.endswith(p.answer) and extract_number(p.solution) == Decimal(p.answer)
        assert not re.search(r"[×÷]", p.solution)
        zh += not re.search(r"\d", p.question)
    assert 0.15 < zh / len(problems) < 0.4  # a share of the questions write their numbers in Chinese numerals
    replies = [to_messages(p)[2]["content"] for p in problems]
    assert rule_reward(replies, answer=[p.answer for p in problems]) == [3.0] * len(problems)


def test_the_bundled_rows_teach_the_format_and_share_no_question_with_the_held_out_sets():
    rows = [json.loads(line)["messages"] for line in ROWS.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 800
    questions = [m[1]["content"] for m in rows]
    held_out = {p.question for p in make_problems(200, seed=0)} | {p.question for p in make_problems(200, seed=0, level="curriculum")}
    assert len(set(questions)) == len(questions) and not held_out & set(questions)
    chains = [m[2]["content"] for m in rows if m[0]["content"] == SYSTEM]
    direct = [m[2]["content"] for m in rows if m[0]["content"] == DIRECT_SYSTEM]
    assert len(chains) == 640 and len(direct) == 160
    assert format_reward(chains) == [1.0] * len(chains)
    assert all(re.fullmatch(r"<answer>\d+</answer>", d) for d in direct)


def test_grpo_trains_on_the_level_its_config_names():
    from tasks.train.grpo import GRPOConfig, problem_dataset

    cfg = GRPOConfig(problem_level="curriculum", num_problems=7)
    rows = problem_dataset(cfg.num_problems, cfg.problem_seed, cfg.problem_level)
    expected = make_problems(7, seed=cfg.problem_seed, level="curriculum")
    assert [r["answer"] for r in rows] == [p.answer for p in expected]
    assert [r["prompt"][-1]["content"] for r in rows] == [p.question for p in expected]
    assert GRPOConfig().problem_level == "all"  # the default stays the full set
