"""Arithmetic word problems the training stages never saw, answered three ways (the seed's §5.2.2):

- ``arith.greedy``: the model is told to answer directly (no reasoning), greedy decoding;
- ``arith.cot``: the step-by-step prompt SFT teaches (reason in ``<think>``, answer in ``<answer>``), greedy;
- ``arith.self_consistency``: k chains sampled from the same prompt, the majority of their normalised answers
  (Wang et al. 2022, arxiv 2203.11171) is the answer.

Answers are read with the rewards' normaliser (``tasks.train.rewards``: the ``<answer>`` tag, else the whole
text; full-width digits, Chinese numerals, thousands separators, units), so 二十一, ２１ and 21本 all vote for 21.
``gen.format_rate`` and ``gen.chinese_rate`` are read off the sampled chains.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.evaluate.config import EvalConfig
from tasks.train.arithmetic import Level, Problem, make_problems, to_prompt
from tasks.train.rewards import extract_answer, extract_number, format_reward, language_reward

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DIRECT_SYSTEM = "你是一个解题助手。请不要写推理过程，直接在<answer></answer>中写出最终答案（一个数字）。格式：<answer>答案</answer>"


def answer_value(text: str) -> Decimal | None:
    """Return the number a completion answers: its ``<answer>`` tag's, else the last number it writes, else None.

    >>> [answer_value(t) for t in ("<think>12-3=9，12+9=21</think><answer>二十一</answer>", "共有２１本", "我不知道")]
    [Decimal('21'), Decimal('21'), None]
    """
    return extract_number(extract_answer(text))


def majority_vote(completions: Iterable[str]) -> Decimal | None:
    """Return the answer most completions give (normalised); a tie goes to the answer given first; None when none answers.

    >>> majority_vote(["<answer>21</answer>", "<answer>二十一</answer>", "<answer>20</answer>", "不知道"])
    Decimal('21')
    >>> majority_vote(["<answer>20</answer>", "<answer>21</answer>", "<answer>21本</answer>", "<answer>20</answer>"])
    Decimal('20')
    """
    values = [v for v in (answer_value(c) for c in completions) if v is not None]
    if not values:
        return None
    counts = Counter(values)
    best = max(counts.values())
    return next(v for v in values if counts[v] == best)


def training_questions(conversation_paths: Iterable[str], problem_sets: Iterable[tuple[int, int, Level]]) -> set[str]:
    """Return every question a training stage sees: user turns of SFT's conversation files and generated ``(n, seed, level)`` sets."""
    from tasks.train.instructions import load_conversations

    seen = {p.question for n, seed, level in problem_sets for p in make_problems(n, seed, level)}
    paths = [Path(p) for p in conversation_paths]
    if paths:
        seen |= {m["content"] for conversation in load_conversations(paths) for m in conversation if m["role"] == "user"}
    return seen


def held_out_problems(cfg: EvalConfig, seen: set[str]) -> tuple[list[Problem], int]:
    """Return the evaluation's problems (seed ``cfg.arith_seed``, level ``cfg.arith_level``) with every question in ``seen`` dropped, and how many were."""
    problems = make_problems(cfg.arith_problems, cfg.arith_seed, cfg.arith_level)
    kept = [p for p in problems if p.question not in seen]
    return kept, len(problems) - len(kept)


def _accuracy(values: list[Decimal | None], problems: list[Problem]) -> float:
    right = sum(v is not None and v == extract_number(p.answer) for v, p in zip(values, problems, strict=True))
    return right / len(problems) if problems else 0.0


def arithmetic_metrics(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, problems: list[Problem], cfg: EvalConfig) -> tuple[dict[str, float], list[dict]]:
    """Return ``arith.*`` and ``gen.*`` metrics on ``problems``, and the first ``cfg.samples_logged`` answers as table rows."""
    from tasks.train.config import GenerationSettings
    from tasks.train.generation import generate_texts

    if not problems:
        return {}, []
    direct = [[{"role": "system", "content": DIRECT_SYSTEM}, {"role": "user", "content": p.question}] for p in problems]
    cot = [to_prompt(p) for p in problems]
    greedy = GenerationSettings(max_new_tokens=cfg.direct_max_new_tokens, batch_size=cfg.generation_batch_size)
    chains = GenerationSettings(max_new_tokens=cfg.cot_max_new_tokens, batch_size=cfg.generation_batch_size)
    sampled = GenerationSettings(
        max_new_tokens=cfg.cot_max_new_tokens,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        num_return_sequences=cfg.self_consistency_k,
        batch_size=max(1, cfg.generation_batch_size // cfg.self_consistency_k),
        seed=cfg.seed,
    )
    direct_out = [c[0] for c in generate_texts(model, tokenizer, direct, greedy)]
    cot_out = [c[0] for c in generate_texts(model, tokenizer, cot, chains)]
    votes_out = generate_texts(model, tokenizer, cot, sampled)
    voted = [majority_vote(samples) for samples in votes_out]
    every_chain = [c for samples in votes_out for c in samples]
    metrics = {
        "arith.greedy": _accuracy([answer_value(t) for t in direct_out], problems),
        "arith.cot": _accuracy([answer_value(t) for t in cot_out], problems),
        "arith.self_consistency": _accuracy(voted, problems),
        "arith.problems": float(len(problems)),
        "gen.format_rate": sum(r == 1.0 for r in format_reward(every_chain)) / len(every_chain),
        "gen.chinese_rate": sum(language_reward(every_chain)) / len(every_chain),
    }
    rows = [
        {"question": p.question, "reference": p.answer, "greedy": d, "cot": c, "votes": " | ".join(v), "voted": "" if a is None else str(a)}
        for p, d, c, v, a in list(zip(problems, direct_out, cot_out, votes_out, voted, strict=True))[: cfg.samples_logged]
    ]
    return metrics, rows
