"""Tasks scored by which continuation the model finds likelier: in-context sentiment (the seed's §5.2.1) and
multiple choice in C-Eval/CMMLU's CSV format.

- ``icl.sentiment.k<N>``: the seed's instruction (请判断以下评论文本的情感倾向（正向/负向）), N labelled reviews, then
  the review to judge; the prediction is whichever label word (正向, 负向) is likelier after 情感倾向：. The test set is
  balanced, so a model that always says one word scores 0.5.
- ``mc.accuracy``: each question, then 答案： followed by each option's text; the likeliest option is the
  prediction (per-token mean log-probability by default, so a long option is not penalised for its length).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tasks.evaluate.likelihood import continuation_logprobs

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

SENTIMENT_INSTRUCTION = "请判断以下评论文本的情感倾向（正向/负向）。"
LABELS = ("正向", "负向")
MC_COLUMNS = ("id", "question", "A", "B", "C", "D", "answer")
MC_INSTRUCTION = "以下是单项选择题，请选出正确答案。"


@dataclass(frozen=True)
class Review:
    text: str
    label: str  # 正向 or 负向
    split: str  # demo: an in-context example; test: scored


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    options: tuple[str, str, str, str]
    answer: str  # A, B, C or D


def read_reviews(path: Path) -> list[Review]:
    """Return the labelled reviews of a JSON-lines file (``text``, ``label`` 正向/负向, ``split`` demo/test)."""
    reviews = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("label") not in LABELS or row.get("split", "test") not in ("demo", "test"):
            raise ValueError(f"{path}:{n}: label must be one of {LABELS} and split demo or test, got {row.get('label')!r}, {row.get('split')!r}")
        reviews.append(Review(row["text"], row["label"], row.get("split", "test")))
    return reviews


def sentiment_prompt(review: str, demos: list[Review]) -> str:
    """Return the seed's sentiment prompt with ``demos`` as worked examples, ending where the label word goes.

    >>> print(sentiment_prompt("物流很快，质量也好。", [Review("太差了，不推荐。", "负向", "demo")]))
    请判断以下评论文本的情感倾向（正向/负向）。
    评论：太差了，不推荐。
    情感倾向：负向
    <BLANKLINE>
    评论：物流很快，质量也好。
    情感倾向：
    """
    shots = "".join(f"评论：{d.text}\n情感倾向：{d.label}\n\n" for d in demos)
    return f"{SENTIMENT_INSTRUCTION}\n{shots}评论：{review}\n情感倾向："


def sentiment_accuracy(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, reviews: list[Review], shots: int, batch_size: int, max_length: int
) -> float:
    """Return the share of test reviews whose label word the model finds likelier than the other, after ``shots`` examples."""
    demos = [r for r in reviews if r.split == "demo"][:shots]
    if len(demos) < shots:
        raise ValueError(f"icl.sentiment.k{shots} needs {shots} demo reviews; the set has {len(demos)}")
    tests = [r for r in reviews if r.split == "test"]
    pairs = [(sentiment_prompt(r.text, demos), label) for r in tests for label in LABELS]
    scores = [lp for lp, _ in continuation_logprobs(model, tokenizer, pairs, batch_size, max_length)]
    right = sum(LABELS[0 if scores[2 * i] >= scores[2 * i + 1] else 1] == r.label for i, r in enumerate(tests))
    return right / len(tests) if tests else 0.0


def read_questions(path: Path) -> list[Question]:
    """Return the questions of a C-Eval/CMMLU-format CSV (id, question, A, B, C, D, answer; other columns ignored)."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = set(MC_COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: a C-Eval-format CSV needs columns {list(MC_COLUMNS)}; missing {sorted(missing)}")
        questions = []
        for n, row in enumerate(reader, 2):
            answer = (row["answer"] or "").strip().upper()
            if answer not in ("A", "B", "C", "D"):
                raise ValueError(f"{path}:{n}: answer must be A, B, C or D, got {row['answer']!r} (C-Eval's test split has no answers: use dev or val)")
            questions.append(Question(row["id"], row["question"].strip(), (row["A"], row["B"], row["C"], row["D"]), answer))
    return questions


def mc_accuracy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    questions: list[Question],
    scoring: Literal["mean", "sum"],
    batch_size: int,
    max_length: int,
) -> float:
    """Return the share of questions whose right option is the likeliest continuation of the question."""
    pairs = [(f"{MC_INSTRUCTION}\n{q.question}\n答案：", str(option).strip()) for q in questions for option in q.options]
    scores = continuation_logprobs(model, tokenizer, pairs, batch_size, max_length)
    right = 0
    for i, q in enumerate(questions):
        four = scores[4 * i : 4 * i + 4]
        values = [lp / max(n, 1) if scoring == "mean" else lp for lp, n in four]
        right += "ABCD"[values.index(max(values))] == q.answer
    return right / len(questions) if questions else 0.0
