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


def _more_total(rng: random.Random) -> Problem:
    a, b = _two_names(rng)
    obj, u = rng.choice(OBJECTS)
    y = rng.randint(1, 15)
    x = rng.randint(y + 1, 40)
    other, total = x - y, 2 * x - y
    return Problem(
        f"{a}有{x}{u}{obj}，比{b}多{y}{u}，两人共有多少{u}？",
        str(total),
        f"{a}比{b}多{y}{u}，所以{b}有{x}-{y}={other}{u}。两人共有{x}+{other}={total}{u}。答案是{total}。",
    )


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


def make_problems(n: int, seed: int) -> list[Problem]:
    """Return ``n`` problems cycling through the templates (so every operation appears), the same for the same seed."""
    rng = random.Random(seed)
    return [TEMPLATES[i % len(TEMPLATES)](rng) for i in range(n)]


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
