"""Spam and ads: a keyword automaton over a curated lexicon, matched on a folded view of the text, judged
span by span.

Words. Aho-Corasick automata (ahocorasick-rs, leftmost-longest non-overlapping matches) find category
keywords (lexicons/spam/<category>.txt: gambling, porn, game, scam, loan, seo), calls to action and
contacts (contact.txt: 加微信, 点击进入, 立即注册 …) and, in texts that hit a category, report words
(context.txt: 警方, 涉嫌, 提醒 …). Besides words, a pattern finds contact marks: an address (www.…, x.com),
an ID after wx:/QQ/微信, a run of seven or more digits, →→→, ！！！.

Variants. Matching runs on ``fold_text(text)``: full-width to half-width and lower case (ＶＩＰ → vip), the
homophones spammers swap in (薇信/威信/徽信 → 微信, 新莆京/新蒲京 → 新葡京, 扣扣 → qq), Chinese numerals as
digits (一刀九九九 → 1刀999) and the separators of spaced-out letters removed (澳 门 新 葡 京, w.x). Every
lexicon word is folded the same way, so a list holds one spelling and a folded benign word can only meet
a folded ad word (威信 "prestige" becomes the contact 微信, which alone never makes an ad). Positions map
back to the original text.

Spans. A line that hits a category is cut into clauses (at 。！？；，); an ad span is a run of adjacent
clauses that each hold a keyword, a contact or a mark (one or two short clauses between two such join it),
whose score — distinct category keywords, plus distinct contacts and marks, minus distinct report words on
the line — reaches ``line_min_score``. So one mention of 博彩 in a news story is not an ad (score 1), a
story on a gambling ring that names 线上赌场 and 真人荷官 is offset by 警方/涉嫌, and "注册即送888元彩金，加微信"
is (score 3). A run with no call to action and no contact must be keyword-dense (``BARE_COVER``): a travel
note that passes 葡京酒店 and peeks into a 赌场 is prose. A span that starts well inside its first clause keeps
that clause's head ("感谢前台服务员" glued to an ad), one that ends well before the end of its last clause
keeps the clause's tail (an ad glued before a sentence with no punctuation between). The span is cut from
its line; when fewer than ``rest_min_chars`` letters are left, the line goes whole, and so does a short line
(``short_line_chars``) that keywords mostly cover ("澳门新葡京" alone on a line scores 1 but is nothing but an
ad). A span with ``context_guard`` report words within ``GUARD_WINDOW`` characters is a quote in a report
and stays; report words elsewhere in a long story do not protect an ad glued to its end.

The measure: benchmarks/ad_spans.py (generated ads in People's Daily and review text; tuned on its dev part).
"""

from __future__ import annotations

import re
import string
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from tasks.clean.config import SPAM_CATEGORIES, SpamCategory
from tasks.clean.lexicon import bundled_words, with_traditional
from tasks.clean.normalize import tally_prefixes

CONTACT = "contact"
CONTEXT = "context"
_NEWLINE = re.compile("\n")

# One character for one, so positions do not move. Each swap is one spammers use to dodge keyword lists;
# a swap only matters where a folded text meets a folded lexicon word.
HOMOPHONES = {
    "薇威徽嶶": "微",  # 薇信, 威信, 徽信 for 微信
    "莆蒲埔甫": "葡",  # 新莆京, 新蒲京 for 新葡京
    "扣": "q",  # 扣扣 for QQ
    "搏": "博",  # 搏彩 for 博彩
    "堵睹": "赌",  # 堵场 for 赌场
    "涩": "色",  # 涩情 for 色情
    "嘌": "票",  # 发嘌 for 发票
    "澚": "澳",  # 澚门 for 澳门
}
NUMERALS = {"零〇": "0", "一壹幺": "1", "二贰两": "2", "三叁": "3", "四肆": "4", "五伍": "5", "六陆": "6", "七柒": "7",
            "八捌": "8", "九玖": "9"}
# Spaced-out letters: three or more single characters, each pair split by one or two separators.
_SEPARATORS = " \t*·・\\-_|丨/\\\\.~"
_SPACED_RUN = re.compile(rf"[^\W_](?:[{_SEPARATORS}]{{1,2}}[^\W_]){{2,}}")
_SEPARATOR_RUN = re.compile(rf"[{_SEPARATORS}]+")
# The cheap test that a text may hold a spaced run: it starts with a separator, which re scans for by
# character set, and Chinese text holds few of them (the full pattern tries every position: ~4x slower).
_SPACED_SEED = re.compile(rf"[{_SEPARATORS}]{{1,2}}[^\W_][{_SEPARATORS}]")
# Contact marks, on the folded text (lower case, half-width). An address ends at its top-level domain; an ID
# follows a contact word and a colon (or a space); digits of a phone or QQ number; pushy punctuation.
_TLD = "com|net|org|cn|cc|vip|top|xyz|me|tv|app|club|site|live|info|co|io|bet|win|fun"
_MARKS = re.compile(
    rf"(?P<address>(?:https?://|www\.)[!-~]+|[a-z0-9-]{{2,}}\.(?:[a-z0-9-]+\.)*(?:{_TLD})(?![a-z0-9]))"
    r"|(?P<id>(?:wx|vx|v信|微信|微|qq|q|电话|手机|tel)号?\s*[:：]\s*[a-z0-9_-]{4,}|(?:微信|v信|qq|vx|wx)\s*[a-z0-9_-]{5,})"
    r"|(?P<digits>\d{7,})"
    r"|(?P<arrows>[→➡⇒]{2,}|>{3,}|👉)"
    r"|(?P<bangs>[!！]{2,})"
)
# Clauses of a line: text up to and with its run of clause-ending punctuation.
_CLAUSE = re.compile(r"[^。！？!?；;，,]+[。！？!?；;，,]*|[。！？!?；;，,]+")
_SENTENCE_ENDS = frozenset("。！？!?；;")
BRIDGE_CHARS = 12  # up to two clauses this short together between two ad clauses are part of the ad (信誉保证)
RECENT_SCANS = 4096  # a batch or two of documents …
RECENT_CHARS = 16_000_000  # … but never more than ~64 MB of remembered text
HOOK_CHARS = 5  # a sentence this short right before an ad opens it (急用钱？)
LEAD_CHARS = 8  # an ad that starts this far inside its first clause leaves the clause's head (and, ending this
# far before the end of its last clause, the clause's tail: an ad glued before a sentence with no punctuation)
GUARD_WINDOW = 100  # report words this close to an ad span (either side, across lines) may protect it
BARE_COVER = 0.3  # a span without a call to action or contact needs keywords over this share of its letters


@lru_cache(maxsize=1)
def _fold_table() -> dict[int, str]:
    """Return the str.translate table of fold_text: one character for one."""
    table: dict[int, str] = {ord(c): c.lower() for c in string.ascii_uppercase}
    for cp in range(0xFF01, 0xFF5F):  # full-width ASCII
        table[cp] = chr(cp - 0xFEE0).lower()
    for cp in range(0x2460, 0x24FF):  # ① ⑴ ⒈ Ⓐ
        folded = unicodedata.normalize("NFKC", chr(cp))
        if len(folded) == 1:
            table[cp] = folded.lower()
    table[0x3000] = " "
    for chars, to in (*HOMOPHONES.items(), *NUMERALS.items()):
        for c in chars:
            table[ord(c)] = to
    return table


@lru_cache(maxsize=1)
def _foldable() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Return the patterns of what fold_text rewrites: runs of foldable characters, runs of Chinese numerals.

    Rewriting only the matches costs a regex scan (a character-set search, fast where nothing matches),
    not a dictionary lookup per character as str.translate does. Numerals count only in runs of three
    (八八八, 一刀九九九): a lone 一 is everywhere in Chinese, so lexicon words are folded both ways.
    """
    numerals = "".join(NUMERALS)
    others = "".join(sorted(chr(cp) for cp in _fold_table() if chr(cp) not in numerals))
    return re.compile(f"[{re.escape(others)}]+"), re.compile(f"[{numerals}]{{3,}}")


def _fold_match(m: re.Match[str]) -> str:
    return m.group().translate(_fold_table())


@dataclass(frozen=True)
class Folded:
    """A folded text and the way back to the original's positions."""

    text: str
    gaps_at: tuple[int, ...] = ()  # folded position of the character after each removed separator run
    shifts: tuple[int, ...] = ()  # characters removed up to and with that run

    def original(self, i: int) -> int:
        """Return the original position of folded position ``i``."""
        k = bisect_right(self.gaps_at, i)
        return i + self.shifts[k - 1] if k else i


def fold_text(text: str) -> tuple[str, Folded]:
    """Return (``text`` folded one character for one, that text with spaced-out letters joined).

    >>> fold_text("澳 门 新 莆 京ＶＩＰ，加 V 信")[1].text
    '澳门新葡京vip,加v信'
    """
    chars, numerals = _foldable()
    same = numerals.sub(_fold_match, chars.sub(_fold_match, text))
    if not _SPACED_SEED.search(same) or not _SPACED_RUN.search(same):
        return same, Folded(same)
    pieces: list[str] = []
    gaps_at: list[int] = []
    shifts: list[int] = []
    pos = removed = 0
    for run in _SPACED_RUN.finditer(same):
        for sep in _SEPARATOR_RUN.finditer(same, run.start(), run.end()):
            pieces.append(same[pos : sep.start()])
            removed += sep.end() - sep.start()
            gaps_at.append(sep.end() - removed)
            shifts.append(removed)
            pos = sep.end()
    pieces.append(same[pos:])
    return same, Folded("".join(pieces), tuple(gaps_at), tuple(shifts))


def fold_word(word: str) -> str:
    """Return a lexicon word as the folded text would spell it (no spaces)."""
    return "".join(word.translate(_fold_table()).split())


def fold_word_but_numerals(word: str) -> str:
    """Return a lexicon word folded except for its Chinese numerals: a text without a run of three numerals
    or another foldable character is matched as it is, and 一刀999 must still meet 一刀999."""
    table = _fold_table()
    numerals = "".join(NUMERALS)
    return "".join("".join(c if c in numerals else c.translate(table) for c in word).split())


@dataclass
class SpamScan:
    """What the automaton found in one text."""

    hits: dict[str, int]  # occurrences per category, plus "contact" and "context"
    keyword_chars: int  # characters covered by category keywords
    spans: list[tuple[int, int, str, bool]]  # (start, end, category, whole line) of each ad span, in order
    reports: list[int] = field(default_factory=list)  # where each report word starts, in order

    @property
    def ad_chars(self) -> int:
        return sum(end - start for start, end, _, _ in self.spans)


@dataclass(frozen=True)
class _Automaton:
    """An Aho-Corasick automaton (ahocorasick-rs, a DFA: ~5 ms per MB here, pyahocorasick took ~45)."""

    matcher: object
    meta: tuple[tuple[str, str], ...]  # (kind, word) per pattern index

    def find(self, text: str) -> list[tuple[int, int, str, str]]:
        """Return (start, end, kind, word) of the leftmost-longest non-overlapping matches."""
        meta = self.meta
        return [(start, end, *meta[i]) for i, start, end in self.matcher.find_matches_as_indexes(text)]


def _automaton(kinds: dict[str, set[str]]) -> _Automaton:
    """Return the automaton of every folded word; a word in two kinds counts for the first."""
    import ahocorasick_rs

    meta: dict[str, str] = {}
    for kind, words in kinds.items():
        for word in sorted({*map(fold_word, words), *map(fold_word_but_numerals, words)} - {""}):
            meta.setdefault(word, kind)
    matcher = ahocorasick_rs.AhoCorasick(
        list(meta), matchkind=ahocorasick_rs.MatchKind.LeftmostLongest, implementation=ahocorasick_rs.Implementation.DFA
    )
    return _Automaton(matcher, tuple((kind, word) for word, kind in meta.items()))


@dataclass
class _Clause:
    start: int
    end: int
    letters: int  # letters, digits and Han characters
    ends_sentence: bool  # ends with 。！？ (not a comma)
    categories: dict[str, set[str]] = field(default_factory=dict)
    calls: set[str] = field(default_factory=set)  # contact words and mark kinds
    first_token: int = -1
    last_end: int = -1  # end of the clause's last keyword, contact or mark
    keyword_chars: int = 0  # characters of its category keywords

    @property
    def is_ad_like(self) -> bool:
        return bool(self.categories or self.calls)


@dataclass
class SpamLexicon:
    """The keyword automata of the enabled categories and the span rules (built once per worker: a few ms)."""

    categories: Sequence[SpamCategory] = SPAM_CATEGORIES
    extra_words: Mapping[SpamCategory, Sequence[str]] = field(default_factory=dict)
    line_min_score: int = 2
    rest_min_chars: int = 8
    short_line_chars: int = 20
    short_line_cover: float = 0.6
    _ads: _Automaton = field(init=False, repr=False)
    _context: _Automaton = field(init=False, repr=False)
    # The scans of the latest texts: the scorer rescans what the span remover left unchanged (most texts)
    _recent: dict[str, SpamScan] = field(init=False, repr=False, default_factory=dict)
    _recent_chars: int = field(init=False, repr=False, default=0)

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
        """Return the hits per kind and the ad spans of ``text`` (remembered for the latest few thousand texts)."""
        found = self._recent.get(text)
        if found is None:
            if len(self._recent) >= RECENT_SCANS or self._recent_chars + len(text) > RECENT_CHARS:
                self._recent.clear()
                self._recent_chars = 0
            found = self._recent[text] = self._scan(text)
            self._recent_chars += len(text)
        return found

    def _scan(self, text: str) -> SpamScan:
        same, folded = fold_text(text)
        hits: dict[str, int] = {}
        keyword_chars = 0
        found: list[tuple[int, int, str, str]] = []  # (start, end, kind, word) in the original text
        ads = self._ads.find(folded.text)
        for start, end, kind, word in ads:
            hits[kind] = hits.get(kind, 0) + 1
            if kind != CONTACT:
                keyword_chars += len(word)
        if len(hits) == (CONTACT in hits):  # no category keyword: no ad span, and report words don't matter
            return SpamScan(hits=hits, keyword_chars=0, spans=[])
        to_original = folded.original
        reports: list[int] = []
        for start, end, kind, word in (*ads, *self._context.find(folded.text)):
            found.append((to_original(start), to_original(end - 1) + 1, kind, word))
            if kind == CONTEXT:
                hits[CONTEXT] = hits.get(CONTEXT, 0) + 1
                reports.append(found[-1][0])
        found.extend((m.start(), m.end(), CONTACT, m.lastgroup or "") for m in _MARKS.finditer(same))
        found.sort()
        line_starts = [0, *(m.end() for m in _NEWLINE.finditer(text))]
        per_line: dict[int, list[tuple[int, int, str, str]]] = {}
        for token in found:
            per_line.setdefault(bisect_right(line_starts, token[0]) - 1, []).append(token)
        spans: list[tuple[int, int, str, bool]] = []
        for line, tokens in sorted(per_line.items()):
            if any(kind in self.categories for _, _, kind, _ in tokens):
                start = line_starts[line]
                stop = text.find("\n", start)
                spans.extend(self._line_spans(text, start, len(text) if stop < 0 else stop, tokens))
        return SpamScan(hits=hits, keyword_chars=keyword_chars, spans=spans, reports=sorted(reports))

    def _line_spans(
        self, text: str, line_start: int, line_end: int, tokens: list[tuple[int, int, str, str]]
    ) -> list[tuple[int, int, str, bool]]:
        """Return the ad spans of one line that hits a category, or the whole line when little else is left."""
        line = text[line_start:line_end]
        clauses = [
            _Clause(line_start + m.start(), line_start + m.end(), sum(map(str.isalnum, m.group())),
                    m.group().rstrip()[-1:] in _SENTENCE_ENDS)
            for m in _CLAUSE.finditer(line)
        ]
        if not clauses:
            return []
        clause_starts = [c.start for c in clauses]
        reports: set[str] = set()
        keyword_chars = 0
        for start, end, kind, word in tokens:
            clause = clauses[max(bisect_right(clause_starts, start) - 1, 0)]
            if kind == CONTEXT:
                reports.add(word)
                continue
            if kind == CONTACT:
                clause.calls.add(word)
            else:
                clause.categories.setdefault(kind, set()).add(word)
                clause.keyword_chars += end - start
            keyword_chars += end - start
            if clause.first_token < 0:
                clause.first_token = start
            clause.last_end = max(clause.last_end, end)
        spans = [span for run in self._runs(clauses) if (span := self._run_span(run, reports)) is not None]
        letters = sum(c.letters for c in clauses)
        cut = sum(sum(map(str.isalnum, text[start:end])) for start, end, _ in spans)
        if spans and letters - cut < self.rest_min_chars:
            return [(line_start, line_end, _main_category(spans), True)]
        if (
            not spans
            and not reports
            and len(line.strip()) <= self.short_line_chars
            and keyword_chars >= self.short_line_cover * max(letters, 1)
        ):
            categories = [kind for _, _, kind, _ in tokens if kind in self.categories]
            return [(line_start, line_end, max(categories, key=categories.count), True)]
        return [(start, end, category, False) for start, end, category in spans]

    @staticmethod
    def _runs(clauses: list[_Clause]) -> list[list[_Clause]]:
        """Return the runs of adjacent ad-like clauses, short clauses between two of them included."""
        runs: list[list[_Clause]] = []
        current: list[_Clause] = []
        pending: list[_Clause] = []  # short plain clauses after the current run: a bridge if an ad clause follows
        for k, clause in enumerate(clauses):
            if clause.is_ad_like:
                if current:
                    current.extend(pending)
                elif k and _is_hook(clauses, k - 1) and not (runs and runs[-1][-1] is clauses[k - 1]):
                    current.append(clauses[k - 1])  # 急用钱？ before 黑户可贷 …: the ad's own opening question
                current.append(clause)
                pending = []
            elif current and clause.letters + sum(c.letters for c in pending) <= BRIDGE_CHARS and len(pending) < 2:
                pending.append(clause)
            elif current:
                runs.append(current)
                current, pending = [], []
        if current:
            runs.append(current)
        return runs

    def _run_span(self, run: list[_Clause], reports: set[str]) -> tuple[int, int, str] | None:
        """Return (start, end, category) of a run that scores as an ad, else None."""
        categories: dict[str, set[str]] = {}
        calls: set[str] = set()
        for clause in run:
            calls |= clause.calls
            for category, words in clause.categories.items():
                categories.setdefault(category, set()).update(words)
        if not categories:
            return None
        score = sum(map(len, categories.values())) + len(calls) - len(reports)
        if score < self.line_min_score:
            return None
        if not calls and sum(c.keyword_chars for c in run) < BARE_COVER * sum(c.letters for c in run):
            return None  # topic words in prose (路过葡京酒店…想进赌场看看), no call to action, no contact
        first, last = run[0], run[-1]
        start = first.first_token if first.first_token - first.start >= LEAD_CHARS else first.start
        end = last.last_end if last.end - last.last_end >= LEAD_CHARS else last.end
        category = max(categories, key=lambda c: (len(categories[c]), -SPAM_CATEGORIES.index(c)))
        return start, end, category


def _is_hook(clauses: list[_Clause], k: int) -> bool:
    """Return whether clause k is a short sentence of its own (急用钱？, 想赚钱吗！) that may open the ad after it."""
    clause = clauses[k]
    return (
        not clause.is_ad_like
        and clause.ends_sentence
        and clause.letters <= HOOK_CHARS
        and (k == 0 or clauses[k - 1].ends_sentence)
    )


def _main_category(spans: list[tuple[int, int, str]]) -> str:
    """Return the category holding the most characters among spans."""
    size: dict[str, int] = {}
    for start, end, category in spans:
        size[category] = size.get(category, 0) + end - start
    return max(size, key=lambda c: (size[c], -SPAM_CATEGORIES.index(c)))


@dataclass
class SpamLineRemover:
    """Batch step: cut ad spans out of documents that are neither mostly ads nor reports on ads; count per category.

    A span is cut from its line and the rest of the line stays; a line left with too little goes whole.
    ``signals`` gets removed_chars.ad_span (characters cut out of lines that stay) and, per category,
    removed_chars.spam_<category> (every ad character removed) and removed_lines.spam_<category> (whole lines).
    """

    lexicon: SpamLexicon
    max_share: float = 0.5
    context_guard: int = 3
    name: str = "remove_spam_lines"

    def __call__(self, docs: list[dict]) -> list[dict]:
        return [self.clean(doc) for doc in docs]

    def clean(self, doc: dict) -> dict:
        """Return the document without its ad spans, or with its text unchanged when ads make up most of it."""
        text = doc["text"]
        signals = dict(doc.get("signals", {}))
        signals["removed_chars.ad_span"] = 0
        for category in self.lexicon.categories:  # zeros too: one schema for every document
            signals[f"removed_chars.spam_{category}"] = signals[f"removed_lines.spam_{category}"] = 0
        scan = self.lexicon.scan(text)
        if (
            not scan.spans
            or scan.ad_chars > self.max_share * len(text)
            or sum(whole for *_, whole in scan.spans) > self.max_share * (text.count("\n") + 1)  # mostly ad lines
        ):
            return {**doc, "signals": signals}
        # a report that quotes an ad keeps the quote: report words around it, not anywhere in a long story
        spans = [span for span in scan.spans if self.reports_near(scan.reports, span[0], span[1]) < self.context_guard]
        pieces, pos = [], 0
        for start, end, category, whole_line in spans:
            if whole_line:
                pieces.append(text[pos:start])
                pos = end + 1  # the line's "\n" goes with it
                signals[f"removed_lines.spam_{category}"] += 1
            else:
                pieces.append(text[pos:start].rstrip(" "))
                pos = end
                while pos < len(text) and text[pos] == " ":
                    pos += 1
                signals["removed_chars.ad_span"] += end - start
            signals[f"removed_chars.spam_{category}"] += end - start
        pieces.append(text[pos:])
        return {**doc, "text": "".join(pieces).strip("\n"), "signals": signals}

    @staticmethod
    def reports_near(reports: list[int], start: int, end: int) -> int:
        """Return how many report words start within GUARD_WINDOW characters of the span [start, end)."""
        return bisect_right(reports, end + GUARD_WINDOW) - bisect_left(reports, start - GUARD_WINDOW)

    def tally(self, results: list) -> dict[str, int]:
        return tally_prefixes(results, ("removed_chars.spam_", "removed_lines.spam_", "removed_chars.ad_span"))
