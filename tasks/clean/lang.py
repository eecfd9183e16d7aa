"""Step 3, language and script: what each character is, and the language a document is tagged with.

Every code point is classified once per process into a numpy table, so a batch of documents costs a
few vector operations over its code points. The counts give the
Han ratio, the Traditional share, the symbol ratio, the bad-character ratio and the entropy.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

HAN, KANA, HANGUL, LATIN, LETTER, DIGIT, PUNCT, SYMBOL, SPACE, BAD = range(10)

# Sentence punctuation of Chinese and English prose; other punctuation counts as a symbol.
SENTENCE_PUNCT = frozenset("，。！？、；：“”‘’（）《》〈〉【】「」『』…—·～,.!?;:'\"()-/%")
_LATIN_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+")


def _is_han(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0xF900 <= cp <= 0xFAFF
        or 0x20000 <= cp <= 0x323AF
        or cp == 0x3007  # 〇, the Chinese zero of 二〇二六年
    )


def char_class(c: str) -> int:
    """Return the class of one character: HAN, KANA, HANGUL, LATIN, LETTER, DIGIT, PUNCT, SYMBOL, SPACE or BAD."""
    cp = ord(c)
    if _is_han(cp):
        return HAN
    if c.isspace():
        return SPACE
    if c in SENTENCE_PUNCT:
        return PUNCT
    if 0x3040 <= cp <= 0x30FA or 0x30FC <= cp <= 0x30FF or 0x31F0 <= cp <= 0x31FF or 0xFF66 <= cp <= 0xFF9F:
        return KANA
    if 0xAC00 <= cp <= 0xD7AF or 0x1100 <= cp <= 0x11FF or 0x3130 <= cp <= 0x318F:
        return HANGUL
    category = unicodedata.category(c)
    if c == "\ufffd" or category in ("Co", "Cn", "Cs"):
        return BAD
    if category[0] == "L":
        return LATIN if cp <= 0x024F else LETTER
    if category == "Nd":
        return DIGIT
    return SYMBOL


@dataclass
class CharStats:
    """Character counts of one text."""

    by_class: list[int]  # count per class, indexed by HAN … BAD
    han_trad: int  # Han characters that only Traditional Chinese writes (這, 來, 們)
    entropy: float  # bits per non-space character
    latin_words: int
    bad_runs: int  # 锟斤拷 / 烫烫烫 / 屯屯屯: what double-decoded replacement characters look like

    @property
    def n_chars(self) -> int:
        """Characters that are not whitespace."""
        return sum(self.by_class) - self.by_class[SPACE]

    def letters(self) -> int:
        """Return the letter count a Han ratio is taken over: Han + kana + hangul + other letters + Latin words."""
        c = self.by_class
        return c[HAN] + c[KANA] + c[HANGUL] + c[LETTER] + self.latin_words


_MOJIBAKE_RUNS = re.compile("锟斤拷|烫烫烫|屯屯屯")
_TABLE_END = 0x32400  # the class of every code point below this is precomputed (Han Ext H ends at U+323AF)


@lru_cache(maxsize=1)
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """Return (class of each code point below _TABLE_END, mask of the Traditional-only Han characters).

    Memoised per process and read-only: ~0.5 s to build, the same for every CharCounter.
    """
    import opencc

    class_of = np.fromiter(
        (char_class(chr(cp)) if not 0xD800 <= cp <= 0xDFFF else BAD for cp in range(_TABLE_END)),
        dtype=np.int8,
        count=_TABLE_END,
    )
    # Han characters that OpenCC t2s changes are Traditional-only; 21k characters convert in ~20 ms.
    chars = [chr(cp) for cp in range(0x4E00, 0xA000)]
    simplified = opencc.OpenCC("t2s.json").convert("\n".join(chars)).split("\n")
    traditional = np.zeros(_TABLE_END, dtype=bool)
    traditional[[ord(a) for a, b in zip(chars, simplified) if a != b]] = True
    class_of.flags.writeable = False
    traditional.flags.writeable = False
    return class_of, traditional


@dataclass
class CharCounter:
    """Counts characters by class; built once per worker.

    The class of every code point of planes 0-3 sits in one numpy array (memoised per process), so a batch's
    class counts, Traditional counts and entropies come from a few vector operations over its code points.
    """

    _class_of: np.ndarray = field(init=False, repr=False)
    _traditional: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._class_of, self._traditional = _tables()

    def count(self, text: str) -> CharStats:
        """Return the character statistics of ``text``."""
        return self.count_batch([text])[0]

    def count_batch(self, texts: list[str]) -> list[CharStats]:
        """Return the character statistics of each text; the batch is counted as one array of code points.

        Each (document, character) pair becomes one 64-bit key (document << 21 | code point); sorting the
        keys gives every document's character frequencies at once, hence its entropy.
        """
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
        doc = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        inside = codes < _TABLE_END
        clipped = np.where(inside, codes, 0)
        classes = self._class_of[clipped].astype(np.int64)
        for i in np.flatnonzero(~inside):  # beyond plane 3: rare, classified one by one
            classes[i] = char_class(chr(codes[i]))
        by_class = np.bincount(doc * 10 + classes, minlength=10 * len(texts)).reshape(len(texts), 10)
        han_trad = np.bincount(doc, weights=self._traditional[clipped] & inside, minlength=len(texts))
        visible = classes != SPACE
        keys = np.sort((doc[visible] << 21) | codes[visible])
        plogp = np.zeros(len(texts))
        if len(keys):
            starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
            freq = np.diff(np.append(starts, len(keys))).astype(np.float64)
            plogp = np.bincount(keys[starts] >> 21, weights=freq * np.log2(freq), minlength=len(texts))
        # H = log2(N) - (1/N) sum n log2 n, per document
        totals = by_class.sum(axis=1) - by_class[:, SPACE]
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy = np.where(totals > 0, np.log2(np.maximum(totals, 1)) - plogp / np.maximum(totals, 1), 0.0)
        out = []
        for text, counts, trad, bits in zip(texts, by_class.tolist(), han_trad.tolist(), entropy.tolist()):
            latin_words = len(_LATIN_WORD.findall(text)) if counts[LATIN] else 0
            bad_runs = len(_MOJIBAKE_RUNS.findall(text)) * 3 if "锟" in text or "烫" in text or "屯" in text else 0
            out.append(CharStats(counts, int(trad), max(0.0, bits), latin_words, bad_runs))
        return out


def tag_lang(stats: CharStats, min_han_ratio: float) -> str:
    """Return the language tag of a text: zh, ja (kana), ko (hangul) or und.

    Japanese writes kanji too, so any real share of kana (≥ 10 % of the CJK letters) means Japanese;
    Chinese pages quote the odd の or ー, which stay well under that.
    """
    c = stats.by_class
    letters = stats.letters()
    if not letters:
        return "und"
    if c[KANA] >= 0.1 * (c[HAN] + c[KANA]) and c[KANA] >= 5:
        return "ja"
    if c[HANGUL] >= 0.3 * letters:
        return "ko"
    if c[HAN] >= min_han_ratio * letters:
        return "zh"
    return "und"
