"""The rule rewards of DPO and GRPO, and the arithmetic problems they check, on literal strings."""

from __future__ import annotations

import doctest
import re

import pytest

import tasks.train.arithmetic as arithmetic
import tasks.train.rewards as rewards
from tasks.train.arithmetic import SYSTEM, Problem, make_problems, to_messages
from tasks.train.rewards import accuracy_reward, chinese_number, extract_number, format_reward, language_reward, rule_reward


def test_doctests_pass():
    for module, examples in ((rewards, 8), (arithmetic, 1)):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted >= examples, module.__name__


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("零", 0),
        ("〇", 0),
        ("一", 1),
        ("两", 2),
        ("十", 10),
        ("十二", 12),
        ("二十", 20),
        ("二十一", 21),
        ("九十九", 99),
        ("一百", 100),
        ("一百零五", 105),
        ("一百一十", 110),
        ("一百五", 150),
        ("两百", 200),
        ("三百四十五", 345),
        ("一千", 1000),
        ("一千零一十", 1010),
        ("两千零二十四", 2024),
        ("二〇二四", 2024),
        ("一万", 10_000),
        ("一万零三百", 10_300),
        ("两万五", 25_000),
        ("三万零五十", 30_050),
        ("十万", 100_000),
        ("一亿两千万", 120_000_000),
        ("壹佰贰拾叁", 123),
        ("3万5千", 35_000),
        ("12", 12),
    ],
)
def test_chinese_number_parses(text, value):
    assert chinese_number(text) == value


@pytest.mark.parametrize("text", ["", "十几", "二三十", "万", "书", "十二本", "three"])
def test_chinese_number_refuses_what_is_not_one_number(text):
    assert chinese_number(text) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("21", 21),
        ("２１", 21),  # full-width digits
        ("２１本", 21),
        ("21本", 21),
        ("21 个", 21),
        ("二十一本", 21),
        ("1,050元", 1050),
        ("１，０５０元", 1050),  # full-width digits and comma
        ("共9.0元", 9),
        ("一百零五个", 105),
        ("两人共有二十一本书", 21),
    ],
)
def test_extract_number_normalises(text, value):
    assert extract_number(text) == value


def test_accuracy_reward_on_answers_in_many_spellings():
    completions = [
        "<think>12-3=9，12+9=21</think><answer>21</answer>",
        "<think>…</think><answer>二十一</answer>",
        "<think>…</think><answer>２１本</answer>",
        "<think>…</think><answer>20</answer>",
        "小红有9本，两人共有21本",  # no tag: the last number
        "<think>答案是21</think><answer>不知道</answer>",  # the tag is what counts
        "",
    ]
    assert accuracy_reward(completions, answer=["21"] * len(completions)) == [1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0]


def test_rewards_take_trl_conversational_completions():
    texts = ["<think>两人共有二十一本</think><answer>21</answer>", "The answer is 20"]
    convo = [[{"role": "assistant", "content": t}] for t in texts]
    for completions in (texts, convo):
        assert accuracy_reward(completions, answer=["21", "21"]) == [1.0, 0.0]
        assert format_reward(completions) == [1.0, 0.0]
        assert language_reward(completions) == [1.0, 0.0]
        assert rule_reward(completions, answer=["21", "21"]) == [3.0, 0.0]


def test_format_reward_exact_and_partial():
    assert format_reward(
        [
            "<think>12-3=9</think><answer>21</answer>",
            "  <think>12-3=9</think>\n<answer>21</answer>\n",  # surrounding whitespace is fine
            "<think></think><answer>21</answer>",  # an empty think is still the format (SFT without reasoning)
            "<think>x</think><answer> </answer>",  # but an empty answer is not
            "<answer>21</answer><think>x</think>",  # wrong order
            "<think>x</think><answer>21</answer>然后",  # text after the answer
            "<think>x</think><think>y</think><answer>21</answer>",  # a tag twice
            "<think>x",
            "21",
        ]
    ) == [1.0, 1.0, 1.0, 0.8, 0.8, 0.8, 0.4, 0.2, 0.0]


def test_language_reward_is_the_han_share_of_letters():
    assert language_reward(
        [
            "<think>一共二十一本</think><answer>21</answer>",
            "The answer is 21",
            "答案是 forty",
            "小明有 3 books",
            "<think></think><answer>21</answer>",
            "すうがく",  # kana are letters but not Han
        ]
    ) == [1.0, 0.0, 3 / 8, 3 / 8, 0.0, 0.0]


def test_problems_are_deterministic_varied_and_correct():
    problems = make_problems(64, seed=3)
    assert problems == make_problems(64, seed=3)
    assert problems != make_problems(64, seed=4)
    assert len({p.question for p in problems}) == 64
    ops = set()
    for p in problems:
        assert p.solution.endswith(f"答案是{p.answer}。")
        for a, op, b, c in re.findall(r"(\d+)([-+×÷])(\d+)=(\d+)", p.solution):
            a, b, c = int(a), int(b), int(c)
            assert {"+": a + b, "-": a - b, "×": a * b, "÷": a / b}[op] == c, p
            ops.add(op)
        assert int(p.answer) >= 0
    assert ops == {"+", "-", "×", "÷"}


def test_the_seed_example_and_messages():
    seed = Problem("小明有12本书，比小红多3本，两人共有多少本？", "21", "小红有12-3=9本。两人共有12+9=21本。答案是21。")
    messages = to_messages(seed, with_reasoning=True)
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[0]["content"] == SYSTEM
    reply = messages[2]["content"]
    assert reply == "<think>小红有12-3=9本。两人共有12+9=21本。答案是21。</think><answer>21</answer>"
    assert rule_reward([reply], answer=["21"]) == [3.0]
    short = to_messages(seed, with_reasoning=False)[2]["content"]
    assert short == "<think></think><answer>21</answer>"
    assert accuracy_reward([short], answer=["21"]) == format_reward([short]) == [1.0]


def test_generated_solutions_score_full_marks():
    problems = make_problems(40, seed=0)
    replies = [to_messages(p)[2]["content"] for p in problems]
    assert rule_reward(replies, answer=[p.answer for p in problems]) == [3.0] * 40
    wrong = [str(int(p.answer) + 1) for p in problems]
    assert accuracy_reward(replies, answer=wrong) == [0.0] * 40


def test_the_registry_names_every_reward_once_with_one_weight():
    from tasks.train.rewards import REWARDS, RewardWeights

    assert list(REWARDS) == ["accuracy_reward", "format_reward", "language_reward", "chain_reward"]  # the names TRL logs: rewards/<name>/mean
    assert list(RewardWeights().weights()) == list(REWARDS)
    assert RewardWeights().weights() == {"accuracy_reward": 1.0, "format_reward": 0.5, "language_reward": 0.25, "chain_reward": 0.0}
    assert list(RewardWeights(language_weight=0).active()) == ["accuracy_reward", "format_reward"]  # the chain reward is off by default
    with pytest.raises(ValueError, match="at least one of"):
        RewardWeights(accuracy_weight=0, format_weight=0, language_weight=0)


def test_a_reference_without_a_number_is_unscorable():
    completions = ["<think>…</think><answer>21</answer>", "<answer>21</answer>", "<answer>21</answer>"]
    assert accuracy_reward(completions, answer=["21", "", "见下图"]) == [1.0, None, None]
    assert rule_reward(completions, answer=["21", "见下图", "21"]) == [2.0, 0.4, 1.4]  # None adds nothing; the other rewards still score


def test_weighted_reward_is_none_only_when_no_active_reward_scores():
    from tasks.train.rewards import RewardWeights, weighted_reward

    accuracy_only = RewardWeights(format_weight=0, language_weight=0)
    texts = ["<answer>21</answer>", "<answer>20</answer>", "<answer>21</answer>"]
    assert weighted_reward(texts, accuracy_only, answer=["21", "21", "?"]) == [1.0, 0.0, None]
    assert weighted_reward(texts, RewardWeights(), answer=["21", "21", "?"]) == [pytest.approx(1.2), pytest.approx(0.2), pytest.approx(0.2)]


def test_the_chain_reward_pays_the_reasoning_not_a_lucky_answer():
    from tasks.train.rewards import chain_reward

    problems = make_problems(70, seed=0, level="curriculum")  # every curriculum template, a third in Chinese numerals
    prompts = [to_messages(p)[:2] for p in problems]
    replies = [to_messages(p)[2]["content"] for p in problems]
    assert chain_reward(replies, prompts=prompts) == [1.0] * 70  # column steps (十位3+2+1=6) and 七是7 readings included
    assert chain_reward(replies, prompts=None) == [None] * 70  # no question, nothing to check against
    # 小明有5个橘子，小杰又给了小明6个: the same right answer after chains that are wrong in different ways
    question = [[{"role": "user", "content": "小明有5个橘子，小杰又给了小明6个，现在小明有多少个橘子？"}]] * 5
    chains = [
        "<think>现在有5+6=11</think><answer>11</answer>",  # the reasoning: every check holds
        "<think>现在有5+7=11</think><answer>11</answer>",  # 7 is not the question's; 5+7=11 is false
        "<think>现在有4+7=11</think><answer>11</answer>",  # the right sum of numbers the question does not hold
        "<think>现在有5+6=12</think><answer>11</answer>",  # a false step, and the answer is not its result
        "<answer>11</answer>",  # no chain at all
    ]
    assert accuracy_reward(chains, answer=["11"] * 5) == [1.0] * 5
    assert chain_reward(chains, prompts=question) == pytest.approx([1.0, 0.5, 2 / 3, 1 / 3, 0.0])


def test_dpo_ranks_by_the_chain_reward_when_it_is_weighed():
    from tasks.train.dpo import rank_pairs
    from tasks.train.rewards import RewardWeights

    prompt = [{"role": "user", "content": "小丽有4个气球，用掉3个，还剩多少个？"}]
    samples = ["<think>还剩4-3=1</think><answer>1</answer>", "<think>还剩5-4=1</think><answer>1</answer>"]  # the same answer
    tied, _ = rank_pairs([prompt], ["1"], [samples], 0.0, weights=RewardWeights())
    assert tied == []  # accuracy, format and language cannot tell them apart
    pairs, _ = rank_pairs([prompt], ["1"], [samples], 0.0, weights=RewardWeights(chain_weight=1.0))
    assert [p["chosen"][0]["content"] for p in pairs] == [samples[0]] and [p["rejected"][0]["content"] for p in pairs] == [samples[1]]
