"""Step 2, noise inside the text: HTML remnants, URLs, e-mail addresses, emoji, repeated punctuation
runs and boilerplate lines, each removed by its own rule that counts the characters it took.

Emoji are what the maintained ``emoji`` package (Unicode's emoji-test data) says they are; a cheap
character class finds the documents that hold any, so the rest never pay for its tokenizer.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from tasks.clean.config import NoiseRule
from tasks.clean.normalize import collapse_whitespace, tally_prefixes

_HTML_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]{0,500})?/?>", re.S)
_HTML_ENTITY = re.compile(r"&(?:[A-Za-z]{2,8}|#\d{2,7}|#[xX][0-9A-Fa-f]{2,6});")
# URLs are ASCII; stopping at the first non-ASCII character keeps the Chinese text that follows one,
# and a URL never ends in sentence punctuation. Both patterns start with literals or a class, so re skips
# ahead to candidates instead of trying every position.
_URL = re.compile(
    r"(?:https?|ftp)://[!-~]*[A-Za-z0-9/#=&_%~+-]"
    r"|www\.(?<![A-Za-z0-9.@-]www\.)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?:[/?#](?:[!-~]*[A-Za-z0-9/#=&_%~+-])?)?"
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# One mark for emphasis is enough: ！！！！ → ！, 。。。 → 。; a Chinese ellipsis or dash is two marks (……, ——),
# an ASCII one three dots; runs of ASCII-art separators (----, ====, ****) carry nothing. One pass.
_PUNCT_RUN = re.compile(r"([!！?？。，,、;；:：~～])\1+|(…{3,}|—{3,})|(\.{4,}|·{4,})|([-=_*#+~•])\4{3,}")
# A cheap test that a run may be there: an alternation of literals, which re scans for by first character.
_TWO_PUNCT = re.compile("|".join(re.escape(c * 2) for c in "!！?？。，,、;；:：~～.·=_*#+•-") + "|…{3}|—{3}")


def _shorten_run(m: re.Match[str]) -> str:
    if m.group(1):
        return m.group(1)
    if m.group(2):
        return m.group(2)[:2]
    if m.group(3):
        return m.group(3)[:3]
    return ""


_VARIATION_SELECTOR = re.compile("[\ufe0e\ufe0f\u20e3]")


@lru_cache(maxsize=1)
def _emoji_start() -> re.Pattern[str]:
    """Return a character class that holds every non-ASCII character an emoji can start with.

    The BMP starts are listed exactly (re tests them with one bitmap lookup); the astral ones, which re
    would test range by range, are folded into U+1F000-1FFFF, so the search runs at memchr-like speed.
    Keycaps (1️⃣) are found by U+20E3 and U+FE0F.
    """
    import emoji

    starts = sorted({ord(k[0]) for k in emoji.EMOJI_DATA if not k[0].isascii()} | {0x20E3, 0xFE0F})
    ranges: list[list[int]] = [[0x1F000, 0x1FFFF]]
    for cp in starts:
        if cp >= 0x1F000:
            continue
        if ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    cls = "".join(re.escape(chr(a)) + (f"-{re.escape(chr(b))}" if b > a else "") for a, b in ranges)
    return re.compile(f"[{cls}]")


def remove_html(text: str) -> str:
    """Return ``text`` without HTML tags and comments, entities decoded (&nbsp; → space)."""
    text = _HTML_TAG.sub("", text)
    return _HTML_ENTITY.sub(lambda m: html.unescape(m.group()), text)


def _cut_spaced(pattern: re.Pattern[str], text: str) -> str:
    """Return ``text`` without the matches of ``pattern`` and one space on either side of each; a space
    stays where an ASCII word is left beside the gap.

    "可访问 http://x.cn 了解详情" becomes "可访问了解详情", while "see http://x.cn for" keeps one space.
    """
    pieces: list[str] = []
    pos = 0
    for m in pattern.finditer(text):
        start, end = m.span()
        spaced = False
        if start > pos and text[start - 1] == " ":
            start, spaced = start - 1, True
        if end < len(text) and text[end] == " ":
            end, spaced = end + 1, True
        before = text[start - 1] if start > pos else (pieces[-1][-1:] if pieces else "")
        after = text[end] if end < len(text) else ""
        pieces.append(text[pos:start])
        if spaced and ((before.isascii() and before.isalnum()) or (after.isascii() and after.isalnum())):
            pieces.append(" ")
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def remove_urls(text: str) -> str:
    return _cut_spaced(_URL, text) if "://" in text or "www." in text else text


def remove_emails(text: str) -> str:
    return _cut_spaced(_EMAIL, text) if "@" in text else text


def remove_emoji(text: str) -> str:
    """Return ``text`` without emoji and pictographs (© and ® included: the emoji data lists them)."""
    if not _emoji_start().search(text):
        return text
    import emoji

    return _VARIATION_SELECTOR.sub("", emoji.replace_emoji(text, replace=""))


def collapse_punct(text: str) -> str:
    """Return ``text`` with runs of one punctuation mark shortened (！！！ → ！, ………… → ……, ---- removed)."""
    return _PUNCT_RUN.sub(_shorten_run, text) if _TWO_PUNCT.search(text) else text


@dataclass
class BoilerplateLines:
    """Removes short lines that match a boilerplate pattern (版权所有, ICP备, 分享到 …)."""

    patterns: Sequence[str]
    max_chars: int
    _pattern: re.Pattern[str] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pattern = re.compile("|".join(f"(?:{p})" for p in self.patterns), re.I) if self.patterns else None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        search, limit = self._pattern.search, self.max_chars
        return "\n".join(line for line in text.split("\n") if len(line) > limit or not search(line))


@dataclass
class NoiseRemover:
    """Batch step: remove noise inside each document's text; ``signals`` gets removed_chars.<rule> per rule."""

    rules: Sequence[NoiseRule]
    boilerplate_patterns: Sequence[str] = ()
    boilerplate_max_chars: int = 60
    name: str = "remove_noise"
    _apply: list[tuple[str, Callable[[str], str]]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Callable[[str], str]] = {
            "html": remove_html,
            "url": remove_urls,
            "email": remove_emails,
            "emoji": remove_emoji,
            "repeated_punct": collapse_punct,
            "boilerplate": BoilerplateLines(self.boilerplate_patterns, self.boilerplate_max_chars),
        }
        self._apply = [(rule, by_name[rule]) for rule in self.rules]

    def __call__(self, docs: list[dict]) -> list[dict]:
        return [self.clean(doc) for doc in docs]

    def clean(self, doc: dict) -> dict:
        """Return the document with its noise removed and the characters each rule took in ``signals``."""
        text = doc["text"]
        signals = dict(doc.get("signals", {}))
        for rule, apply in self._apply:
            after = apply(text)
            signals[f"removed_chars.{rule}"] = len(text) - len(after)  # zeros too: one schema for every document
            text = after
        if len(text) != len(doc["text"]):  # a removal may leave doubled spaces or empty lines
            text = collapse_whitespace(text)
        return {**doc, "text": text, "signals": signals}

    def tally(self, results: list) -> dict[str, int]:
        return tally_prefixes(results, tuple(f"removed_chars.{rule}" for rule in self.rules))
