"""Encode documents to token ids: one batch step, an eos after every document, blank documents rejected."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal, get_args

from tokenizers import Tokenizer

from tasks.records import Doc, Reject

EncodeReason = Literal[
    "empty_text",  # the text is blank: it would add nothing but an eos
]
ENCODE_REASONS: tuple[str, ...] = get_args(EncodeReason)


@dataclass
class DocumentEncoder:
    """Batch step: add ``input_ids`` (the text's tokens, then eos) and ``n_tokens`` to each record.

    Encodes through the ``tokenizers.Tokenizer`` backend's batch call, which runs in Rust threads outside
    the GIL; ``add_special_tokens=False`` because document boundaries are the eos appended here. Special-token
    strings inside a text are encoded as plain text: a web page that quotes ``<|endoftext|>`` or ``<|im_end|>``
    must not end a document or open a chat turn.
    """

    tokenizer: Tokenizer
    eos_id: int
    batch_docs: int = 4096
    name: str = "encode"

    def __post_init__(self) -> None:
        self.tokenizer.encode_special_tokens = True

    def __call__(self, docs: list[Doc]) -> list[Doc | Reject]:
        results: list[Doc | Reject] = [Reject("empty_text") if not (d.get("text") or "").strip() else d for d in docs]
        todo = [i for i, r in enumerate(results) if not isinstance(r, Reject)]
        for start in range(0, len(todo), self.batch_docs):
            chunk = todo[start : start + self.batch_docs]
            encoded = self.tokenizer.encode_batch_fast([docs[i]["text"] for i in chunk], add_special_tokens=False)
            for i, enc in zip(chunk, encoded):
                ids = enc.ids  # a fresh list on every access: appending to it is safe and saves a copy
                ids.append(self.eos_id)
                results[i] = {**docs[i], "input_ids": ids, "n_tokens": len(ids)}
        return results

    def tally(self, results: list[Doc | Reject]) -> dict[str, int]:
        """Return tokens in all and per source (eos included), for the stage's counters."""
        counts: Counter[str] = Counter()
        for r in results:
            if not isinstance(r, Reject):
                counts["tokens"] += r["n_tokens"]
                counts[f"tokens.{r.get('source') or ''}"] += r["n_tokens"]
        return dict(counts)
