"""How well a tokenizer compresses the corpus: characters per token per source, and Han characters per token.

Han characters per token is measured on the Han runs alone (each run encoded on its own), so Latin text,
digits and punctuation in the same documents do not blur the figure a Chinese tokenizer is judged by.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from tokenizers import Tokenizer


# CJK Unified Ideographs, Extension A, Compatibility Ideographs, Extensions B–H (𠮷 is U+20BB7).
HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U000323af]+")


@dataclass
class Compression:
    """Counts of one source; the ratios are derived."""

    docs: int = 0
    chars: int = 0
    tokens: int = 0
    han_chars: int = 0
    han_tokens: int = 0

    @property
    def chars_per_token(self) -> float:
        return self.chars / self.tokens if self.tokens else 0.0

    @property
    def han_chars_per_token(self) -> float:
        return self.han_chars / self.han_tokens if self.han_tokens else 0.0

    def add(self, other: Compression) -> Compression:
        return Compression(*(a + b for a, b in zip(asdict(self).values(), asdict(other).values())))

    def to_dict(self) -> dict:
        return {**asdict(self), "chars_per_token": round(self.chars_per_token, 4), "han_chars_per_token": round(self.han_chars_per_token, 4)}

    @classmethod
    def from_dict(cls, row: dict) -> Compression:
        """Return the counts of a report row (``to_dict``'s output; the ratios are derived again)."""
        return cls(**{k: int(row[k]) for k in cls.__dataclass_fields__})


def measure(tokenizer: Tokenizer, texts: list[str]) -> Compression:
    """Return the compression of ``tokenizer`` (a ``tokenizers.Tokenizer``) on ``texts``."""
    runs = [run for text in texts for run in HAN_RUN.findall(text)]
    return Compression(
        docs=len(texts),
        chars=sum(len(t) for t in texts),
        tokens=sum(len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False)),
        han_chars=sum(len(r) for r in runs),
        han_tokens=sum(len(e.ids) for e in tokenizer.encode_batch(runs, add_special_tokens=False)),
    )


def compression_report(tokenizer: Tokenizer, docs: Iterable[dict], batch_docs: int = 256) -> dict[str, dict]:
    """Return ``{source: counts and ratios}`` over ``docs`` (rows with ``source`` and ``text``), plus ``"all"``."""
    by_source: dict[str, Compression] = {}
    pending: dict[str, list[str]] = {}

    def flush(source: str) -> None:
        by_source[source] = by_source.get(source, Compression()).add(measure(tokenizer, pending.pop(source)))

    for doc in docs:
        source = doc.get("source") or ""
        pending.setdefault(source, []).append(doc.get("text") or "")
        if len(pending[source]) >= batch_docs:
            flush(source)
    for source in list(pending):
        flush(source)
    total = Compression()
    for c in by_source.values():
        total = total.add(c)
    return {**{s: c.to_dict() for s, c in sorted(by_source.items())}, "all": total.to_dict()}
