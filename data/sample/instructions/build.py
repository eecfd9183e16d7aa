"""Regenerate the demo instruction set from the sample corpus: alpaca.jsonl and sharegpt.jsonl beside this file.

    python data/sample/instructions/build.py           # writes both files; deterministic, rebuilds are byte-identical
    python data/sample/instructions/build.py --check   # exits 1 when the committed files differ from a rebuild

Every answer is derived from the text, so it is known, not invented: the title of a page is its gold file's
first line; a paragraph's summary is its lead sentence; its channel is the site section it sits in; dates and
numbers are read off with a regular expression. Arithmetic word problems come with step-by-step solutions
from ``tasks.train.arithmetic`` (seed 3; none of them is in the held-out evaluation set of seed 0).
Pages that are spam (thread-1007) or copies of another page (1002, 1005, 1008 repost the rail article) and
paragraphs with contact details (phone numbers, e-mail, URLs) are left out: instruction data should not teach
the model to repeat them.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOLD = HERE.parent / "gold"
EVAL_PROBLEMS = HERE.parent / "arithmetic" / "problems.jsonl"
SKIP = {"forum/thread-1007.html.txt", "forum/thread-1002.html.txt", "forum/thread-1005.html.txt", "forum/thread-1008.html.txt", "index.html.txt"}
CHANNELS = {"news": "新闻", "forum": "论坛", "shop": "商城", "docs": "资料"}
CONTACT = re.compile(r"\d[\d\- ]{6,}\d|@|https?://|www\.|\.example")
SENTENCE = re.compile(r"[^。！？!?]+[。！？!?]+")
DATE = re.compile(r"(?:\d{4}年)?\d{1,2}月\d{1,2}日")
DIGITS = re.compile(r"(?<![A-Za-z\d.])\d+(?:\.\d+)?(?![A-Za-z\d])")  # not the 2312 of GB2312 or the 5 of Big5
MAX_CHARS = 150  # a paragraph is cut after the sentence that passes this: short enough for the demo model's context
CURRICULUM_ROWS = 800  # cold-start rows: the demo's SFT sees each one or two times
CURRICULUM_HELD_OUT = 200  # make_problems(200, seed=0, level="curriculum"): the held-out set benchmarks/demo_stages.py scores
DIRECT_EVERY = 5  # one row in five answers directly, as the evaluation's arith.greedy prompt asks
CHANNEL_ROWS = 12  # channel questions per section: news alone has more paragraphs than the other three together

TITLE_PROMPTS = ("为下面这段文字拟一个标题。", "请给下面的内容起一个合适的标题。", "阅读下面的文字，写出它的标题。")
SUMMARY_PROMPTS = ("用一句话概括下面这段话的主要内容。", "请用一句话总结下面这段文字。")
CHANNEL_PROMPT = "判断下面这段文字来自青禾网的哪个频道：新闻、论坛、商城还是资料。只回答频道名称。"
DATE_PROMPT = "下面这段文字中最先提到的日期是哪一天？请按原文写出。"
NUMBER_PROMPT = "列出下面这段文字中所有用阿拉伯数字写出的数，按出现顺序，用顿号隔开。"
FOLLOW_UP = "这段文字出自青禾网的哪个频道？"
CHANNEL_REPLY = "这段文字出自青禾网的{channel}频道。"


def pages() -> list[tuple[str, str, list[str]]]:
    """Return (section, title, paragraphs) of every gold page kept, in path order."""
    out = []
    for path in sorted(GOLD.rglob("*.txt")):
        rel = path.relative_to(GOLD).as_posix()
        if rel in SKIP:
            continue
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        body = ["".join(lines[1:])] if rel.endswith(".png.txt") else lines[1:]  # an image's lines are wrapped, not paragraphs
        out.append((rel.split("/")[0], lines[0], body))
    return out


def clip(paragraph: str) -> str:
    """Return the paragraph up to the end of the sentence that passes MAX_CHARS."""
    if len(paragraph) <= MAX_CHARS:
        return paragraph
    kept = ""
    for s in SENTENCE.findall(paragraph):
        kept += s
        if len(kept) >= MAX_CHARS:
            break
    return kept or paragraph[:MAX_CHARS]


def usable(paragraph: str) -> bool:
    """Return whether a paragraph is long enough to ask about and free of contact details."""
    return len(paragraph) >= 20 and not CONTACT.search(paragraph)


def alpaca(instruction: str, text: str, output: str, system: str = "") -> dict:
    """Return one alpaca row (``system`` only when given)."""
    return {"instruction": instruction, "input": text, "output": output, **({"system": system} if system else {})}


def text_rows(rng: random.Random) -> list[dict]:
    """Return the alpaca rows derived from the corpus: titles, lead-sentence summaries, channels, dates, numbers."""
    rows = []
    by_section: dict[str, list[str]] = {}
    for section, title, paragraphs in pages():
        body = [clip(p) for p in paragraphs if usable(p)]
        if body:
            rows.append(alpaca(rng.choice(TITLE_PROMPTS), body[0], title))
        by_section.setdefault(section, []).extend(body)
        for p in body:
            sentences = SENTENCE.findall(p)
            if len(sentences) >= 2:
                rows.append(alpaca(rng.choice(SUMMARY_PROMPTS), p, sentences[0].strip()))
            if DATE.search(p):
                rows.append(alpaca(DATE_PROMPT, p, DATE.search(p).group()))
            numbers = [m.group() for m in DIGITS.finditer(DATE.sub("", p))]
            if numbers:
                rows.append(alpaca(NUMBER_PROMPT, p, "、".join(numbers)))
    for section, body in by_section.items():
        for p in rng.sample(body, min(CHANNEL_ROWS, len(body))):
            rows.append(alpaca(CHANNEL_PROMPT, p, CHANNELS[section]))
    return rows


def conversation_rows(rng: random.Random) -> list[dict]:
    """Return sharegpt rows of two turns each: the title of a page, then the channel it came from."""
    rows = []
    for section, title, paragraphs in pages():
        body = [clip(p) for p in paragraphs if usable(p)]
        if not body:
            continue
        turns = [
            ("human", f"{rng.choice(TITLE_PROMPTS)}\n\n{body[0]}"),
            ("gpt", title),
            ("human", FOLLOW_UP),
            ("gpt", CHANNEL_REPLY.format(channel=CHANNELS[section])),
        ]
        rows.append({"conversations": [{"from": who, "value": text} for who, text in turns]})
    return rows


def arithmetic_problems(n: int) -> list:
    """Return ``n`` generated word problems (seed 3), none of them in the held-out evaluation set."""
    from tasks.train.arithmetic import make_problems, read_problems

    held_out = {p.question for p in read_problems(EVAL_PROBLEMS)}
    return [p for p in make_problems(n + 20, seed=3) if p.question not in held_out][:n]


def curriculum_rows(n: int, direct_every: int) -> list[dict]:
    """Return messages rows of the cold-start curriculum (``make_problems(n, seed=5, level="curriculum")``): step-by-step
    replies in the think/answer format, and every ``direct_every``-th one answered directly (the evaluation's
    direct prompt: no reasoning, ``<answer>N</answer>``). None shares a question with the evaluation's sets."""
    from tasks.evaluate.arith import DIRECT_SYSTEM
    from tasks.train.arithmetic import SYSTEM, format_answer, make_problems, read_problems

    held_out = {p.question for p in read_problems(EVAL_PROBLEMS)} | {p.question for p in make_problems(CURRICULUM_HELD_OUT, seed=0, level="curriculum")}
    problems = [p for p in make_problems(n + n // 2, seed=5, level="curriculum") if p.question not in held_out]
    problems = list({p.question: p for p in problems}.values())[:n]  # a one-digit question can come up twice
    rows = []
    for i, p in enumerate(problems):
        direct = i % direct_every == direct_every - 1
        system, reply = (DIRECT_SYSTEM, f"<answer>{p.answer}</answer>") if direct else (SYSTEM, format_answer(p))
        rows.append({"messages": [{"role": "system", "content": system}, {"role": "user", "content": p.question}, {"role": "assistant", "content": reply}]})
    return rows


def build() -> dict[str, list[dict]]:
    """Return the rows of both files: alpaca (corpus tasks + half the arithmetic) and sharegpt (dialogues + the other half)."""
    from tasks.train.arithmetic import SYSTEM, format_answer

    rng = random.Random(0)
    problems = arithmetic_problems(60)
    alpaca_rows = text_rows(rng) + [alpaca(p.question, "", format_answer(p), system=SYSTEM) for p in problems[:30]]
    sharegpt_rows = conversation_rows(rng) + [
        {"conversations": [{"from": "system", "value": SYSTEM}, {"from": "human", "value": p.question}, {"from": "gpt", "value": format_answer(p)}]}
        for p in problems[30:]
    ]
    return {"alpaca.jsonl": alpaca_rows, "sharegpt.jsonl": sharegpt_rows, "arithmetic.jsonl": curriculum_rows(CURRICULUM_ROWS, DIRECT_EVERY)}


def render(rows: list[dict]) -> str:
    """Return rows as JSON lines (UTF-8 text, one object a line)."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def main(argv: list[str] | None = None) -> int:
    """Write (or, with --check, compare) both files, then check every row loads as a conversation."""
    parser = argparse.ArgumentParser(description="Build the demo instruction set from data/sample/gold and generated arithmetic.")
    parser.add_argument("--check", action="store_true", help="compare with the files on disk instead of writing them")
    args = parser.parse_args(argv)
    stale = []
    for name, rows in build().items():
        path, text = HERE / name, render(rows)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {len(rows)} rows to {path}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python {Path(__file__).relative_to(HERE.parents[2])}", file=sys.stderr)
        return 1
    from tasks.train.instructions import load_conversations

    loaded = load_conversations([HERE / name for name in build()])
    assert len(loaded) == sum(len(rows) for rows in build().values())
    return 0


if __name__ == "__main__":
    sys.exit(main())
