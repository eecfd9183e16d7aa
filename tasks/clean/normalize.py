"""Step 1, normalise: repair mojibake, drop control and zero-width characters, NFKC that spares Chinese
punctuation, optional Traditional → Simplified, collapsed whitespace.

Each rule reports how many characters it removed or changed, so the stage's counters say what it did.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

# Full-width forms that are Chinese punctuation (GB/T 15834), not full-width ASCII: NFKC would turn them
# into , ! ? : ; ( ) ~ and "...", which reads as English punctuation inside Chinese prose.
PROTECTED_PUNCT = "，！？：；（）～…"

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Zero-width and bidi-control characters; U+200D (ZWJ) too: inside emoji sequences the emoji rule removes
# the rest, elsewhere it is invisible junk from copy-paste.
_ZERO_WIDTH = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_LINE_BREAKS = re.compile("\r\n?|[\u2028\u2029\x85]")
# a single ASCII space is left alone: replacing it by itself would rebuild the string for nothing
_SPACE_CHARS = "\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
_SPACES = re.compile(f"[{_SPACE_CHARS}][ {_SPACE_CHARS}]*|  +")
_SPACE_AT_LINE_EDGE = re.compile(" +\n *|\n +")
_BLANK_LINES = re.compile("\n{3,}")
_UNTIDY = re.compile("[\r\u2028\u2029\x85\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]|  | \n|\n | ?\n\n\n")
# UTF-8 read as Latin-1/cp1252: a lead byte Â-ô followed by what was a continuation byte (ä¸­æ–‡ for 中文).
_LATIN1_MOJIBAKE = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u2022"
    "\u2026\u2030\u2039\u203a\u20ac\u2122]"
)


def collapse_whitespace(text: str) -> str:
    """Return ``text`` with \\n line breaks, single spaces, no spaces at line edges and at most one blank line."""
    if not _UNTIDY.search(text):  # extracted text mostly is tidy already: one search instead of four rewrites
        return text.strip()
    text = _LINE_BREAKS.sub("\n", text)
    text = _SPACES.sub(" ", text)
    text = _SPACE_AT_LINE_EDGE.sub("\n", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


@lru_cache(maxsize=2)
def _compat_run(astral: bool) -> re.Pattern[str]:
    """Return a pattern matching runs of characters that NFKC changes, less Chinese punctuation and spaces.

    Planes 0-2 hold every compatibility character Chinese text meets (full-width forms, compatibility
    ideographs, enclosed numbers, math alphanumerics); building the class takes ~0.1 s once per process.
    re tests BMP characters against a bitmap but astral ranges one by one, so the BMP-only pattern serves
    every text without astral characters (nearly all of them) at a fraction of the cost.
    """
    keep = set(PROTECTED_PUNCT)
    ranges: list[tuple[int, int]] = []
    for cp in range(0x30000 if astral else 0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        if c in keep or c.isspace() or unicodedata.normalize("NFKC", c) == c:
            continue
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    cls = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return re.compile(f"[{cls}]+")


_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")


def nfkc_except_punct(text: str) -> tuple[str, int]:
    """Return ``text`` under NFKC with Chinese punctuation kept, and how many characters were rewritten."""
    changed = 0

    def fold(m: re.Match[str]) -> str:
        nonlocal changed
        changed += len(m.group())
        return unicodedata.normalize("NFKC", m.group())

    pattern = _compat_run(_ASTRAL.search(text) is not None)
    return pattern.sub(fold, text), changed


def undo_mojibake(text: str) -> str | None:
    """Return the repaired text when ``text`` is UTF-8 misread as Latin-1/cp1252 or GBK, else None.

    The GBK repair is tried only when the whole text re-encodes to GBK and decodes as strict UTF-8,
    which real Chinese text practically never does (its GBK byte pairs are not UTF-8 sequences).
    """
    if text.isascii():
        return None
    if _LATIN1_MOJIBAKE.search(text):
        import ftfy  # imported here: only texts that look broken pay for it

        fixed = ftfy.fix_encoding(text)
        return fixed if fixed != text else None
    head = text[:64]
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head.encode("gbk"), final=False)
        fixed = text.encode("gbk").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None
    return fixed if fixed != text else None


@dataclass
class Normalizer:
    """Batch step: normalise each document's text; ``signals`` records what each rule changed."""

    fix_mojibake: bool = True
    nfkc: bool = True
    traditional_to_simplified: bool = False
    name: str = "normalize"
    _t2s: object | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.traditional_to_simplified:
            import opencc  # built once per step object: loading the dictionaries takes a few ms

            self._t2s = opencc.OpenCC("t2s.json")

    def __call__(self, docs: list[dict]) -> list[dict]:
        return [self.normalize(doc) for doc in docs]

    def normalize(self, doc: dict) -> dict:
        """Return the document with normalised text and its change counts merged into ``signals``."""
        text = doc["text"]
        counts: dict[str, int] = {}
        if self.fix_mojibake:
            fixed = undo_mojibake(text)
            counts["changed_chars.mojibake"] = 0 if fixed is None else len(text)
            text = text if fixed is None else fixed
        text, n = _CONTROL.subn("", text)
        counts["removed_chars.control"] = n
        text, n = _ZERO_WIDTH.subn("", text)
        counts["removed_chars.zero_width"] = n
        if self.nfkc:
            text, counts["changed_chars.nfkc"] = nfkc_except_punct(text)
        if self._t2s is not None:
            simplified = self._t2s.convert(text)
            changed = sum(a != b for a, b in zip(text, simplified)) + abs(len(text) - len(simplified))
            counts["changed_chars.t2s"] = changed
            text = simplified
        before = len(text)
        text = collapse_whitespace(text)
        counts["removed_chars.whitespace"] = before - len(text)
        signals = {**doc.get("signals", {}), **counts}  # zeros too: one schema for every document
        return {**doc, "text": text, "signals": signals}

    def tally(self, results: list) -> dict[str, int]:
        return tally_prefixes(results, ("removed_chars.control", "removed_chars.zero_width", "removed_chars.whitespace",
                                        "changed_chars."))


def tally_prefixes(results: list, prefixes: tuple[str, ...]) -> dict[str, int]:
    """Return the sum over result documents of the ``signals`` entries whose names start with a prefix."""
    total: dict[str, int] = {}
    for doc in results:
        if not isinstance(doc, dict):
            continue
        for key, value in doc.get("signals", {}).items():
            if key.startswith(prefixes):
                total[key] = total.get(key, 0) + int(value)
    return total
