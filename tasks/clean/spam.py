"""Spam and ads by a keyword automaton over a curated lexicon, judged line by line.

Aho-Corasick automata (ahocorasick-rs, leftmost-longest non-overlapping matches) find three kinds of
words: category keywords (lexicons/spam/<category>.txt: gambling, porn, game, scam, seo), contact calls
(contact.txt: 加微信, QQ群 …) and, in texts that hit a category, report words (context.txt: 警方, 涉嫌,
提醒 …). A line is an ad when
it hits a category and its score — distinct category keywords, plus distinct contact calls, minus
distinct report words — reaches ``line_min_score``. So one mention of 博彩 in a news story is not an
ad (score 1), a story on a gambling ring that names 线上赌场 and 真人荷官 is offset by 警方/涉嫌, and
"注册即送888元彩金，加微信" is (score 3). The signals step counts hits per category over the document.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tasks.clean.config import SPAM_CATEGORIES, SpamCategory
from tasks.clean.lexicon import bundled_words, with_traditional
from tasks.clean.normalize import tally_prefixes

CONTACT = "contact"
CONTEXT = "context"
_NEWLINE = re.compile("\n")


@dataclass
class SpamScan:
    """What the automaton found in one text."""

    hits: dict[str, int]  # occurrences per category, plus "contact" and "context"
    keyword_chars: int  # characters covered by category keywords
    spam_lines: list[tuple[int, int, str]]  # (start, end, category) of each ad line, end exclusive of "\n"

    @property
    def spam_line_chars(self) -> int:
        return sum(end - start for start, end, _ in self.spam_lines)


@dataclass(frozen=True)
class _Automaton:
    """An Aho-Corasick automaton (ahocorasick-rs, a DFA: ~5 ms per MB here, pyahocorasick took ~45)."""

    matcher: object
    meta: tuple[tuple[str, str], ...]  # (kind, word) per pattern index

    def find(self, text: str) -> list[tuple[int, str, str]]:
        """Return (end, kind, word) of the leftmost-longest non-overlapping matches, end exclusive."""
        meta = self.meta
        return [(end, *meta[i]) for i, _, end in self.matcher.find_matches_as_indexes(text)]


def _automaton(kinds: dict[str, set[str]]) -> _Automaton:
    """Return the automaton of every word; a word in two kinds counts for the first."""
    import ahocorasick_rs

    meta: dict[str, str] = {}
    for kind, words in kinds.items():
        for word in sorted(words):
            meta.setdefault(word, kind)
    matcher = ahocorasick_rs.AhoCorasick(
        list(meta), matchkind=ahocorasick_rs.MatchKind.LeftmostLongest, implementation=ahocorasick_rs.Implementation.DFA
    )
    return _Automaton(matcher, tuple((kind, word) for word, kind in meta.items()))


@dataclass
class SpamLexicon:
    """The keyword automaton of the enabled categories (built once per worker: ~1k words, a few ms)."""

    categories: Sequence[SpamCategory] = SPAM_CATEGORIES
    extra_words: Mapping[SpamCategory, Sequence[str]] = field(default_factory=dict)
    line_min_score: int = 2
    _ads: _Automaton = field(init=False, repr=False)
    _context: _Automaton = field(init=False, repr=False)

    def __post_init__(self) -> None:
        kinds: dict[str, set[str]] = {}
        for category in self.categories:
            extra = self.extra_words.get(category, [])
            kinds[category] = set(bundled_words(f"spam/{category}.txt")) | (with_traditional(extra) if extra else set())
        kinds[CONTACT] = set(bundled_words("spam/contact.txt"))
        # Report words are searched only in texts that hit a category: news is full of them (记者, 调查),
        # and walking every match in Python would cost more than the scan itself.
        self._ads = _automaton(kinds)
        self._context = _automaton({CONTEXT: set(bundled_words("spam/context.txt"))})

    def scan(self, text: str) -> SpamScan:
        """Return the hits per kind and the ad lines of ``text``."""
        hits: dict[str, int] = {}
        keyword_chars = 0
        found: list[tuple[int, str, str]] = []
        for end, kind, word in self._ads.find(text):
            hits[kind] = hits.get(kind, 0) + 1
            if kind != CONTACT:
                keyword_chars += len(word)
            found.append((end - 1, kind, word))
        if len(hits) == (CONTACT in hits):  # no category keyword: no ad line, and report words don't matter
            return SpamScan(hits=hits, keyword_chars=0, spam_lines=[])
        for end, kind, word in self._context.find(text):
            hits[kind] = hits.get(kind, 0) + 1
            found.append((end - 1, kind, word))
        line_starts = [0, *(m.end() for m in _NEWLINE.finditer(text))]
        per_line: dict[int, dict[str, set[str]]] = {}
        for end, kind, word in found:
            line = bisect_right(line_starts, end) - 1
            per_line.setdefault(line, {}).setdefault(kind, set()).add(word)
        spam_lines = []
        for line, kinds in sorted(per_line.items()):
            category = self._line_category(kinds)
            if category is not None:
                start = line_starts[line]
                stop = text.find("\n", start)
                spam_lines.append((start, len(text) if stop < 0 else stop, category))
        return SpamScan(hits=hits, keyword_chars=keyword_chars, spam_lines=spam_lines)

    def _line_category(self, kinds: dict[str, set[str]]) -> str | None:
        """Return the category of an ad line, or None when the line is not an ad."""
        distinct = {c: len(kinds[c]) for c in self.categories if c in kinds}
        n_category = sum(distinct.values())
        if not n_category:
            return None
        score = n_category + len(kinds.get(CONTACT, ())) - len(kinds.get(CONTEXT, ()))
        if score < self.line_min_score:
            return None
        return max(distinct, key=lambda c: (distinct[c], -SPAM_CATEGORIES.index(c)))


@dataclass
class SpamLineRemover:
    """Batch step: remove ad lines from documents that are neither mostly ads nor reports on ads; count per category."""

    lexicon: SpamLexicon
    max_share: float = 0.5
    context_guard: int = 3
    name: str = "remove_spam_lines"

    def __call__(self, docs: list[dict]) -> list[dict]:
        return [self.clean(doc) for doc in docs]

    def clean(self, doc: dict) -> dict:
        """Return the document without its ad lines, or with its text unchanged when ads make up most of it."""
        text = doc["text"]
        signals = dict(doc.get("signals", {}))
        for category in self.lexicon.categories:  # zeros too: one schema for every document
            signals[f"removed_chars.spam_{category}"] = signals[f"removed_lines.spam_{category}"] = 0
        scan = self.lexicon.scan(text)
        if (
            not scan.spam_lines
            or scan.spam_line_chars > self.max_share * len(text)
            or scan.hits.get(CONTEXT, 0) >= self.context_guard  # a report that quotes ads keeps its quotes
        ):
            return {**doc, "signals": signals}
        pieces, pos = [], 0
        for start, end, category in scan.spam_lines:
            pieces.append(text[pos:start])
            pos = end + 1
            signals[f"removed_chars.spam_{category}"] += end - start
            signals[f"removed_lines.spam_{category}"] += 1
        pieces.append(text[pos:])
        return {**doc, "text": "".join(pieces).strip("\n"), "signals": signals}

    def tally(self, results: list) -> dict[str, int]:
        return tally_prefixes(results, ("removed_chars.spam_", "removed_lines.spam_"))
