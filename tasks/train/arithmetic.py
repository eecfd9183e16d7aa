"""Chinese arithmetic word problems with known answers and step-by-step solutions: the verifiable set that
SFT teaches, GRPO rewards and the eval gate scores.

The seed's example is the first template: "小明有12本书，比小红多3本，两人共有多少本？" → 小红 9 本, 共 21 本.
Every answer is a non-negative integer, so a rule can check it (tasks/train/rewards.py).

    python -m tasks.train.arithmetic --n 200 --seed 0 --out data/sample/arithmetic/problems.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

SYSTEM = (
    "你是一个认真解题的助手。请先在<think></think>中一步一步写出推理过程，"
    "再在<answer></answer>中只写出最终答案（一个数字）。"
    "格式：<think>推理过程</think><answer>答案</answer>"
)

NAMES = ("小明", "小红", "小刚", "小丽", "小华", "小芳", "小军", "小美", "小亮", "小雪", "小林", "小东", "小雨", "小杰", "小玲", "小强")
# (object, measure word): the measure word must fit the object, or the problem reads wrong to a native speaker
OBJECTS = (
    ("书", "本"),
    ("苹果", "个"),
    ("铅笔", "支"),
    ("糖果", "颗"),
    ("邮票", "张"),
    ("气球", "个"),
    ("贴纸", "张"),
    ("橘子", "个"),
    ("花", "朵"),
    ("练习本", "本"),
    ("玻璃珠", "颗"),
    ("饼干", "块"),
)
CONTAINERS = (("盒", "盒"), ("袋", "袋"), ("箱", "箱"), ("包", "包"))
GOODS = ("文具", "水果", "故事书", "玩具", "零食", "笔记本")


@dataclass(frozen=True)
class Problem:
    """One word problem: the question, its integer answer as digits, and a worked solution ending with the answer."""

    question: str
    answer: str
    solution: str


def _two_names(rng: random.Random) -> tuple[str, str]:
    a, b = rng.sample(NAMES, 2)
    return a, b


def _more_total(rng: random.Random, most_more: int = 15, most: int = 40, columns: bool = False) -> Problem:
    """The seed's own problem (小明有12本书，比小红多3本，两人共有多少本？); ``columns``: the two sums worked in column steps."""
    a, b = _two_names(rng)
    obj, u = rng.choice(OBJECTS)
    y = rng.randint(1, most_more)
    x = rng.randint(y + 1, most)
    other, total = x - y, 2 * x - y
    question = f"{a}有{x}{u}{obj}，比{b}多{y}{u}，两人共有多少{u}？"
    if columns:  # the curriculum's short chain: the two sums, each in one-digit steps, nothing retold
        return Problem(question, str(total), f"{b}有{column_steps(x, '-', y)}。共有{column_steps(x, '+', other)}")
    return Problem(question, str(total), f"{a}比{b}多{y}{u}，所以{b}有{x}-{y}={other}{u}。两人共有{x}+{other}={total}{u}。答案是{total}。")


def _less_total(rng: random.Random) -> Problem:
    a, b = _two_names(rng)
    obj, u = rng.choice(OBJECTS)
    x, y = rng.randint(2, 40), rng.randint(1, 15)
    other, total = x + y, 2 * x + y
    return Problem(
        f"{a}有{x}{u}{obj}，比{b}少{y}{u}，两人一共有多少{u}？",
        str(total),
        f"{a}比{b}少{y}{u}，所以{b}有{x}+{y}={other}{u}。两人一共有{x}+{other}={total}{u}。答案是{total}。",
    )


def _add(rng: random.Random) -> Problem:
    a, b = _two_names(rng)
    obj, u = rng.choice(OBJECTS)
    x, y = rng.randint(2, 60), rng.randint(2, 40)
    total = x + y
    return Problem(
        f"{a}有{x}{u}{obj}，{b}又送给{a}{y}{u}，现在{a}有多少{u}{obj}？",
        str(total),
        f"{a}原来有{x}{u}，又得到{y}{u}，现在有{x}+{y}={total}{u}。答案是{total}。",
    )


def _spend(rng: random.Random) -> Problem:
    a = rng.choice(NAMES)
    goods = rng.choice(GOODS)
    y = rng.randint(3, 60)
    x = rng.randint(y + 1, 100)
    left = x - y
    return Problem(
        f"{a}带了{x}元钱，买{goods}花了{y}元，还剩多少元？",
        str(left),
        f"{a}原来有{x}元，花了{y}元，还剩{x}-{y}={left}元。答案是{left}。",
    )


def _multiply(rng: random.Random) -> Problem:
    a = rng.choice(NAMES)
    obj, u = rng.choice(OBJECTS)
    box, bu = rng.choice(CONTAINERS)
    x, y = rng.randint(2, 12), rng.randint(2, 9)
    total = x * y
    return Problem(
        f"每{box}{obj}有{x}{u}，{a}买了{y}{bu}，一共有多少{u}{obj}？",
        str(total),
        f"每{box}有{x}{u}，{y}{bu}就有{x}×{y}={total}{u}。答案是{total}。",
    )


def _divide(rng: random.Random) -> Problem:
    a = rng.choice(NAMES)
    obj, u = rng.choice(OBJECTS)
    y, each = rng.randint(2, 9), rng.randint(2, 12)
    x = y * each  # built from the quotient, so the division always comes out even
    return Problem(
        f"{a}有{x}{u}{obj}，平均分给{y}个同学，每个同学分到多少{u}？",
        str(each),
        f"把{x}{u}平均分成{y}份，每份是{x}÷{y}={each}{u}。答案是{each}。",
    )


def _times_total(rng: random.Random) -> Problem:
    a, b = _two_names(rng)
    obj, u = rng.choice(OBJECTS)
    x, k = rng.randint(2, 15), rng.randint(2, 5)
    other, total = k * x, (k + 1) * x
    return Problem(
        f"{a}有{x}{u}{obj}，{b}的{obj}是{a}的{k}倍，两人共有多少{u}{obj}？",
        str(total),
        f"{b}有{x}×{k}={other}{u}。两人共有{x}+{other}={total}{u}。答案是{total}。",
    )


def _change(rng: random.Random) -> Problem:
    a = rng.choice(NAMES)
    obj, u = rng.choice(OBJECTS)
    price, n = rng.randint(2, 9), rng.randint(2, 6)
    cost = price * n
    paid = rng.choice([p for p in (20, 50, 100) if p > cost])
    back = paid - cost
    return Problem(
        f"一{u}{obj}{price}元，{a}买了{n}{u}，付了{paid}元，应该找回多少元？",
        str(back),
        f"{n}{u}{obj}一共要{price}×{n}={cost}元。应该找回{paid}-{cost}={back}元。答案是{back}。",
    )


TEMPLATES: tuple[Callable[[random.Random], Problem], ...] = (_more_total, _less_total, _add, _spend, _multiply, _divide, _times_total, _change)


# The cold-start curriculum (§5.2.3): what a few-million-parameter model can learn in minutes — one- and two-digit
# addition and subtraction (sums below 100, no negative results) in the same word-problem style, the two-digit
# sums worked column by column (units, carry or borrow, tens) so every step is a one-digit fact, and about a
# third of the questions writing their numbers in Chinese numerals (十二), which the reasoning first turns into digits.
# The chains are short — the sum and its column steps, no retelling of the story, no closing 答案是 — because a
# policy that samples 60–140 tokens per chain is clipped at GRPO's and the evaluation's budgets and a tiny model
# errs somewhere in a long one: the one-digit chain is ~9 tokens with the demo's tokenizer, the 多…共 one ~40.
_DIGITS_ZH = "零一二三四五六七八九"


def chinese_numeral(n: int) -> str:
    """Return 0–99 in Chinese numerals, as a primary-school problem writes them.

    >>> [chinese_numeral(n) for n in (0, 7, 10, 12, 20, 35)]
    ['零', '七', '十', '十二', '二十', '三十五']
    """
    if not 0 <= n <= 99:
        raise ValueError(f"{n} is outside 0–99")
    tens, units = divmod(n, 10)
    if tens == 0:
        return _DIGITS_ZH[units]
    return ("" if tens == 1 else _DIGITS_ZH[tens]) + "十" + (_DIGITS_ZH[units] if units else "")


def column_steps(a: int, op: Literal["+", "-"], b: int) -> str:
    """Return ``a op b`` worked out in one-digit steps (a one-digit sum in one step): the sum first, the result last.

    >>> column_steps(3, "+", 4)
    '3+4=7'
    >>> column_steps(38, "+", 25)
    '38+25：个位8+5=13，写3进1；十位3+2+1=6；得63'
    >>> column_steps(14, "-", 8)
    '14-8=6'
    >>> column_steps(52, "-", 17)
    '52-17：个位2不够减7，借1得12-7=5；十位5-1-1=3；得35'
    """
    c = a + b if op == "+" else a - b
    if (op == "+" and a < 10 and b < 10) or (op == "-" and a <= 18 and b < 10 and c < 10):  # a fact of the 20 table
        return f"{a}{op}{b}={c}"
    (ta, ua), (tb, ub) = divmod(a, 10), divmod(b, 10)
    if op == "+":
        s = ua + ub
        units = f"个位{ua}+{ub}={s}，写{s - 10}进1" if s >= 10 else f"个位{ua}+{ub}={s}"
        tens = f"十位{ta}+{tb}+1={ta + tb + 1}" if s >= 10 else f"十位{ta}+{tb}={ta + tb}"
    else:
        units = f"个位{ua}不够减{ub}，借1得{ua + 10}-{ub}={ua + 10 - ub}" if ua < ub else f"个位{ua}-{ub}={ua - ub}"
        tens = f"十位{ta}-1-{tb}={ta - 1 - tb}" if ua < ub else f"十位{ta}-{tb}={ta - tb}"
    return f"{a}{op}{b}：{units}；{tens}；得{c}"


def _say(n: int, zh: bool) -> str:
    """A count before a measure word: 两, not 二, for 2."""
    return ("两" if n == 2 else chinese_numeral(n)) if zh else str(n)


def _reading(numbers: tuple[int, ...], zh: bool) -> str:
    """The first step of a problem written in Chinese numerals: what each number is in digits."""
    return "".join(f"{_say(n, True)}是{n}，" for n in numbers) if zh else ""


def _gain(rng: random.Random, x: int, y: int, zh: bool) -> Problem:
    a, b = _two_names(rng)
    obj, u = rng.choice(OBJECTS)
    total = x + y
    return Problem(
        f"{a}有{_say(x, zh)}{u}{obj}，{b}又给了{a}{_say(y, zh)}{u}，现在{a}有多少{u}{obj}？",
        str(total),
        f"{_reading((x, y), zh)}现在有{column_steps(x, '+', y)}",
    )


def _loss(rng: random.Random, x: int, y: int, zh: bool) -> Problem:
    a = rng.choice(NAMES)
    obj, u = rng.choice(OBJECTS)
    left = x - y
    verb = rng.choice(("送给同学", "用掉", "分给弟弟"))
    return Problem(
        f"{a}有{_say(x, zh)}{u}{obj}，{verb}{_say(y, zh)}{u}，还剩多少{u}？",
        str(left),
        f"{_reading((x, y), zh)}还剩{column_steps(x, '-', y)}",
    )


def _one_digit_add(rng: random.Random) -> Problem:
    return _gain(rng, rng.randint(1, 9), rng.randint(1, 9), rng.random() < 1 / 3)


def _one_digit_sub(rng: random.Random) -> Problem:
    y = rng.randint(1, 9)
    return _loss(rng, rng.randint(y, min(y + 9, 18)), y, rng.random() < 1 / 3)


def _two_digit_add(rng: random.Random) -> Problem:
    x = rng.randint(10, 89)
    return _gain(rng, x, rng.randint(1, 99 - x), rng.random() < 1 / 3)


def _two_digit_sub(rng: random.Random) -> Problem:
    x = rng.randint(11, 99)
    return _loss(rng, x, rng.randint(1, x - 1), rng.random() < 1 / 3)


def _more_total_small(rng: random.Random) -> Problem:
    return _more_total(rng, most_more=9, most=49, columns=True)


CURRICULUM: tuple[Callable[[random.Random], Problem], ...] = (_one_digit_add, _one_digit_sub, _one_digit_add, _one_digit_sub, _two_digit_add, _two_digit_sub, _more_total_small)
Level = Literal["all", "curriculum"]
LEVELS: dict[str, tuple[Callable[[random.Random], Problem], ...]] = {"all": TEMPLATES, "curriculum": CURRICULUM}


def make_problems(n: int, seed: int, level: Level = "all") -> list[Problem]:
    """Return ``n`` problems cycling through the level's templates (so every kind appears), the same for the same seed.

    ``all``: the eight templates (two-step sums, ×, ÷, change); ``curriculum``: one- and two-digit + and − worked
    in one-digit steps, a third in Chinese numerals, and the seed's 多…共 problem — what the demo's model can learn.
    """
    rng = random.Random(seed)
    templates = LEVELS[level]
    return [templates[i % len(templates)](rng) for i in range(n)]


def format_answer(problem: Problem, with_reasoning: bool = True) -> str:
    """Return the assistant's reply: ``<think>solution</think><answer>answer</answer>`` (empty think without reasoning).

    >>> format_answer(Problem("小明有12本书，比小红多3本，两人共有多少本？", "21", "小红有12-3=9本，共12+9=21本。答案是21。"))
    '<think>小红有12-3=9本，共12+9=21本。答案是21。</think><answer>21</answer>'
    """
    think = problem.solution if with_reasoning else ""
    return f"<think>{think}</think><answer>{problem.answer}</answer>"


def to_messages(problem: Problem, with_reasoning: bool = True) -> list[dict]:
    """Return the chat (system, user question, assistant reply in the think/answer format) for SFT."""
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": problem.question},
        {"role": "assistant", "content": format_answer(problem, with_reasoning)},
    ]


def to_prompt(problem: Problem) -> list[dict]:
    """Return the conversational prompt (system and user turns) a policy completes under GRPO or DPO."""
    return to_messages(problem)[:2]


def write_problems(problems: list[Problem], path: Path) -> None:
    """Write ``problems`` as JSON lines (question, answer, solution)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(asdict(p), ensure_ascii=False) + "\n" for p in problems), encoding="utf-8")


def read_problems(path: Path) -> list[Problem]:
    """Return the problems of a JSON-lines file written by ``write_problems``."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [Problem(**json.loads(line)) for line in lines if line.strip()]


def main(argv: list[str] | None = None) -> int:
    """Write a generated problem set and check it reads back unchanged."""
    parser = argparse.ArgumentParser(description="Generate Chinese arithmetic word problems with answers and solutions.")
    parser.add_argument("--n", type=int, default=200, help="number of problems")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same problems)")
    parser.add_argument("--out", type=Path, default=Path("data/sample/arithmetic/problems.jsonl"), help="JSON-lines file to write")
    args = parser.parse_args(argv)
    problems = make_problems(args.n, args.seed)
    write_problems(problems, args.out)
    assert read_problems(args.out) == problems
    print(f"wrote {len(problems)} problems to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
