"""What a model's probabilities say, batched: perplexity of texts or token sequences, and the log-likelihood of a
continuation after a context (label words, multiple-choice options).

Scoring likelihoods rather than parsing generated text gives a signal even for a tiny model that cannot yet
write the answer: it only has to rank 正向 above 负向, or the right option above three wrong ones (the way
lm-evaluation-harness scores C-Eval and GPT-3's paper scored its few-shot tasks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class Perplexity:
    """Token-weighted perplexity: exp of the summed negative log-likelihood over the tokens predicted."""

    nll: float
    tokens: int

    @property
    def ppl(self) -> float:
        return math.exp(min(self.nll / self.tokens, 50.0)) if self.tokens else float("nan")  # 50 already means "untrained"


def _sequence_nll(model: PreTrainedModel, rows: list[list[int]], first_scored: list[int], pad_id: int) -> list[tuple[float, int]]:
    """Return (sum of −log p, tokens scored) per row: tokens from index ``first_scored[i]`` on, each predicted from those before."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    ids, mask = ids.to(model.device), mask.to(model.device)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)  # log p(token t | tokens < t)
    positions = torch.arange(1, width, device=ids.device)[None, :]
    starts = torch.tensor(first_scored, device=ids.device)[:, None].clamp(min=1)
    scored = (positions >= starts) & (mask[:, 1:] == 1)
    nll = -(logp * scored).sum(dim=1)
    return list(zip(nll.tolist(), scored.sum(dim=1).tolist(), strict=True))


def _batches(order: list[int], batch_size: int) -> list[list[int]]:
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def sequences_nll(model: PreTrainedModel, rows: Sequence[Sequence[int]], first_scored: Sequence[int], pad_id: int, batch_size: int) -> list[tuple[float, int]]:
    """Return (−log-likelihood, tokens scored) for each token sequence, batched by length (less padding)."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    out: list[tuple[float, int]] = [(0.0, 0)] * len(rows)
    was_training = model.training
    model.eval()
    try:
        for batch in _batches(order, batch_size):
            for i, result in zip(batch, _sequence_nll(model, [list(rows[i]) for i in batch], [first_scored[i] for i in batch], pad_id), strict=True):
                out[i] = result
    finally:
        model.train(was_training)
    return out


def pad_id_of(tokenizer: PreTrainedTokenizerBase) -> int:
    """Return the id to pad with (never scored): pad, else eos, else 0."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if candidate is not None:
            return candidate
    return 0


def windows(ids: list[int], size: int) -> list[list[int]]:
    """Return ``ids`` cut into consecutive windows of at most ``size`` tokens (each window's first token is context only).

    >>> windows([1, 2, 3, 4, 5], 2)
    [[1, 2], [3, 4], [5]]
    """
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def text_perplexity(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int, batch_size: int) -> Perplexity:
    """Return the perplexity of ``texts``: each encoded with eos before it (so its first token is predicted too), cut into windows."""
    start = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.bos_token_id
    size = min(max_length, getattr(model.config, "max_position_embeddings", max_length))
    rows: list[list[int]] = []
    for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        rows.extend(w for w in windows(([start] if start is not None else []) + list(ids), size) if len(w) > 1)
    scores = sequences_nll(model, rows, [1] * len(rows), pad_id_of(tokenizer), batch_size)
    return Perplexity(sum(n for n, _ in scores), int(sum(t for _, t in scores)))


def token_perplexity(model: PreTrainedModel, sequences: Sequence[Sequence[int]], lengths: Sequence[int], pad_id: int, batch_size: int) -> Perplexity:
    """Return the perplexity of already-encoded sequences (the pack stage's), each scored over its first ``lengths[i]`` tokens."""
    rows = [list(seq[:n]) for seq, n in zip(sequences, lengths, strict=True) if n > 1]
    scores = sequences_nll(model, rows, [1] * len(rows), pad_id, batch_size)
    return Perplexity(sum(n for n, _ in scores), int(sum(t for _, t in scores)))


def continuation_logprobs(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, pairs: Sequence[tuple[str, str]], batch_size: int, max_length: int
) -> list[tuple[float, int]]:
    """Return (log-likelihood, tokens) of each continuation given its context, both encoded apart so the boundary is exact.

    A context too long for ``max_length`` loses its beginning, never the continuation.
    """
    contexts = tokenizer([c for c, _ in pairs], add_special_tokens=False)["input_ids"]
    continuations = tokenizer([x for _, x in pairs], add_special_tokens=False)["input_ids"]
    start = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    rows, first = [], []
    for ctx, cont in zip(contexts, continuations, strict=True):
        row = (start + list(ctx) + list(cont))[-max_length:]
        rows.append(row)
        first.append(len(row) - len(cont))
    scores = sequences_nll(model, rows, first, pad_id_of(tokenizer), batch_size)
    return [(-nll, n) for nll, n in scores]


def set_threads(n: int) -> int:
    """Set torch's intra-op threads to ``n`` (0: unchanged); return the previous setting, to restore it."""
    import torch

    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    return previous
