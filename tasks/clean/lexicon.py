"""The word lists under tasks/clean/lexicons/: reading them, and adding Traditional spellings with OpenCC.

Lists are written in Simplified Chinese; a Traditional page says 賭場 where the list says 赌场, so every
word also enters in its OpenCC s2t form. OpenCC (the maintained converter) is loaded once per call site
that builds a lexicon, never at import.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

LEXICONS = Path(__file__).parent / "lexicons"


def read_lexicon(path: Path) -> list[str]:
    """Return the words of a list file in order: one per line, blank lines and '# ' comments skipped."""
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line.strip()
        if word and not line.startswith("# "):
            words.append(word)
    return words


def with_traditional(words: Iterable[str]) -> set[str]:
    """Return the words plus their Traditional (OpenCC s2t) spellings."""
    import opencc

    words = [w for w in dict.fromkeys(words) if w]
    if not words:
        return set()
    converted = opencc.OpenCC("s2t.json").convert("\n".join(words)).split("\n")
    if len(converted) != len(words):  # a converter that merged lines: fall back to one word at a time
        converter = opencc.OpenCC("s2t.json")
        converted = [converter.convert(w) for w in words]
    return set(words) | set(converted)


@lru_cache(maxsize=32)
def bundled_words(name: str) -> frozenset[str]:
    """Return a bundled list (``spam/gambling.txt``, ``stopwords_zh.txt`` …) with its Traditional spellings.

    Memoised per process: the files never change while it runs, and converting them costs ~0.1 s each.
    """
    return frozenset(with_traditional(read_lexicon(LEXICONS / name)))
