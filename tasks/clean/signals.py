"""Score first: one step segments each document once and stores its signals; the filters decide later.

``signals`` is a flat dict of numbers per document (the names below, plus the removed_chars.* counts the
text-changing steps left there), ``lang`` its language tag. A user re-tunes thresholds on these stored
columns (or their MLflow histograms) without recomputing anything. Version: ``SIGNALS_VERSION``.

Repetition follows Gopher (Rae et al. 2021, arXiv 2112.11446, Table A1) and datatrove's
``GopherRepetitionFilter``, over jieba words instead of whitespace words: the most frequent 2/3/4-gram's
share of the word characters (counted only when it occurs more than once), and the share of word
characters covered by 5- and 10-grams that repeat an earlier n-gram. The n-gram counts run in numpy over
hashed words, ~10x faster than Python sets on a long page.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain, compress
from operator import itemgetter

import numpy as np

from tasks.clean.lang import BAD, DIGIT, HAN, LATIN, SYMBOL, CharCounter, CharStats, tag_lang
from tasks.clean.lexicon import bundled_words, with_traditional
from tasks.clean.segment import Segmenter
from tasks.clean.spam import CONTACT, CONTEXT, SpamLexicon, SpamScan

SIGNALS_VERSION = "clean_signals_v1"
TOP_NGRAMS = (2, 3, 4)
DUP_NGRAMS = (5, 10)

_SENTENCE_END = re.compile("[。！？!?；;\n]")
# Laughter, fillers and cheers of Chinese forums: 哈哈哈, 呵呵, 啊啊啊, 666, 2333, 顶, 沙发, 打卡, +1, hello.
_LAUGH, _SIGH = "哈呵嘿嘻嘎咯", "啊呜嗯噢哦呃哇额"
_FILLERS = ["顶顶", "顶一下", "顶下", "沙发", "板凳", "路过", "打卡", "前排", "围观", "同问", "吃瓜", "+1", "楼主好人",
            "支持楼主", "谢谢分享"]
_CHATTER = re.compile(
    f"[{_LAUGH}]{{2,}}|[{_SIGH}]{{3,}}|2333+|[6６]{{3,}}|" + "|".join(re.escape(f) for f in _FILLERS)
)
# Every match of _CHATTER starts with one of these literals; an alternation of literals lets re skip ahead
# by its first characters, ~3x faster than _CHATTER itself, and most documents hold none.
_CHATTER_SEED = re.compile(
    "|".join(
        [a + b for a in _LAUGH for b in _LAUGH]
        + [a + b + c for a in _SIGH for b in _SIGH for c in _SIGH]
        + ["2333"]
        + [a + b + c for a in "6６" for b in "6６" for c in "6６"]
        + [re.escape(f) for f in _FILLERS]
    )
)
# Latin chatter is whole ASCII words (hhh, hahaha, lol, hello, hi, ok, mark), tested one word at a time
_LATIN_RUN = re.compile("[A-Za-z]+")
_CHATTER_WORD = re.compile(r"h{3,}|(?:ha){2,}h?|lol+|hello+|hi|hey|ok+|mark", re.I)
_PRIME = np.uint64(1_000_003)
_DOC_MIX = np.uint64(0x9E3779B97F4A7C15)
_FIRST = itemgetter(0)


def stopword_set(extra: Iterable[str] = ()) -> frozenset[str]:
    """Return the stop words: stopwords-iso zh (lexicons/stopwords_zh.txt) plus ``extra``, in both scripts."""
    extra = list(extra)
    return bundled_words("stopwords_zh.txt") | (with_traditional(extra) if extra else frozenset())


def _first_and_count(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return, for each position, the first position holding the same key and how often the key occurs.

    One unstable argsort (np.unique sorts stably, ~3x slower here) and a few linear passes.
    """
    order = np.argsort(keys)
    ranked = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], ranked[1:] != ranked[:-1])))
    sizes = np.diff(np.append(starts, len(keys)))
    first = np.empty(len(keys), dtype=np.int64)
    freq = np.empty(len(keys), dtype=np.int64)
    first[order] = np.repeat(np.minimum.reduceat(order, starts), sizes) if len(keys) else order
    freq[order] = np.repeat(sizes, sizes)
    return first, freq


def _max_per_doc(values: np.ndarray, doc: np.ndarray, n_docs: int) -> np.ndarray:
    """Return the maximum of ``values`` per document (0 where a document has none); ``doc`` is sorted."""
    out = np.zeros(n_docs, dtype=values.dtype)
    if len(values):
        starts = np.flatnonzero(np.concatenate(([True], doc[1:] != doc[:-1])))
        out[doc[starts]] = np.maximum.reduceat(values, starts)
    return out


def ngram_ratios(batch: list[list[str]]) -> list[dict[str, float]]:
    """Return top_{2,3,4}gram_ratio and dup_{5,10}gram_ratio for each word list of a batch.

    top_n: characters of the most frequent n-gram (the longest of equally frequent ones) times its count,
    over all word characters, when it occurs more than once. dup_n: word characters covered by n-grams
    that repeat an earlier n-gram of the same document. Shares are capped at 1. ``ngram_ratios_reference``
    says the same in plain Python.

    The whole batch is one array, so a 50-word review costs no more per word than a book. An n-gram can
    only repeat where the (n-1)-gram starting at the same word repeats, so after the 2-grams only those
    starts are carried on, one word longer at a time: most text has few repeated 4-grams, and 3- to
    10-grams together cost less than the 2-grams.
    """
    names = [f"top_{n}gram_ratio" for n in TOP_NGRAMS] + [f"dup_{n}gram_ratio" for n in DUP_NGRAMS]
    counts = np.fromiter(map(len, batch), dtype=np.int64, count=len(batch))
    size = int(counts.sum())
    columns = {name: np.zeros(len(batch)) for name in names}
    if size >= 2:
        words = list(chain.from_iterable(batch))
        doc = np.repeat(np.arange(len(batch), dtype=np.int64), counts)
        hashes = np.fromiter(map(hash, words), dtype=np.int64, count=size).view(np.uint64)
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=size)
        ends = np.cumsum(lengths)
        totals = np.maximum(np.bincount(doc, weights=lengths, minlength=len(batch)), 1)
        start = np.arange(size - 1)
        start = start[doc[:-1] == doc[1:]]  # 2-grams inside one document
        # mixing the document in keeps equal n-grams of different documents apart
        keys = (hashes[start] ^ (doc[start].astype(np.uint64) * _DOC_MIX)) * _PRIME + hashes[start + 1]
        for n in range(2, max(DUP_NGRAMS) + 1):
            first, freq = _first_and_count(keys)
            if n in TOP_NGRAMS:
                chars = ends[start + n - 1] - ends[start] + lengths[start]
                best = np.where(freq > 1, (freq << 32) + chars, 0)  # most frequent first, then longest
                top = _max_per_doc(best, doc[start], len(batch))
                columns[f"top_{n}gram_ratio"] = np.minimum(1.0, (top >> 32) * (top & 0xFFFFFFFF) / totals)
            if n in DUP_NGRAMS:
                repeats = start[first < np.arange(len(start))]  # starts of n-grams seen earlier in the document
                # word j is covered when a repeating n-gram starts in (j-n, j]: +1 at each start, -1 n words on
                edges = np.bincount(repeats, minlength=size) - np.bincount(repeats + n, minlength=size + n)[:size]
                covered = np.cumsum(edges) > 0
                dup_chars = np.bincount(doc, weights=lengths * covered, minlength=len(batch))
                columns[f"dup_{n}gram_ratio"] = dup_chars / totals
            # carry on the starts whose n-gram repeats, one word longer, staying inside the document
            keep = freq > 1
            start, keys = start[keep], keys[keep]
            inside = start + n < size
            start, keys = start[inside], keys[inside]
            inside = doc[start + n] == doc[start]
            start, keys = start[inside], keys[inside]
            keys = keys * _PRIME + hashes[start + n]
    rows = zip(*(columns[name].tolist() for name in names))
    return [dict(zip(names, row)) for row in rows]


def ngram_ratios_reference(words: list[str]) -> dict[str, float]:
    """Return what ``ngram_ratios`` returns for one word list, computed with Python sets (the readable spec)."""
    out: dict[str, float] = {}
    total = sum(map(len, words))
    for n in TOP_NGRAMS:
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        freq = Counter(grams)
        best = max(freq.items(), key=lambda kv: (kv[1], sum(map(len, kv[0]))), default=(None, 0))
        out[f"top_{n}gram_ratio"] = min(1.0, best[1] * sum(map(len, best[0])) / total) if best[1] > 1 else 0.0
    for n in DUP_NGRAMS:
        seen: set[tuple[str, ...]] = set()
        covered = [False] * len(words)
        for i in range(len(words) - n + 1):
            gram = tuple(words[i : i + n])
            if gram in seen:
                covered[i : i + n] = [True] * n
            seen.add(gram)
        out[f"dup_{n}gram_ratio"] = sum(len(w) for w, c in zip(words, covered) if c) / total if total else 0.0
    return out


def duplicate_share(items: list[str]) -> tuple[float, float]:
    """Return (share of items, share of characters) that repeat an earlier item, as Gopher's dup_line rules."""
    total_chars = sum(map(len, items))
    if not total_chars:
        return 0.0, 0.0
    counts = Counter(items)
    if len(counts) == len(items):  # nothing repeats: the common case, no Python loop
        return 0.0, 0.0
    dup_items = len(items) - len(counts)
    dup_chars = sum(len(item) * (n - 1) for item, n in counts.items() if n > 1)
    return dup_items / len(items), dup_chars / total_chars


def text_signals(text: str, words: list[str], chars: CharStats, spam: SpamScan, stopwords: frozenset[str],
                 removed: dict[str, int], ngrams: dict[str, float]) -> dict[str, float | int]:
    """Return the signals of one cleaned text from its words, character counts and spam scan."""
    n_chars = chars.n_chars
    c = chars.by_class
    lines = list(filter(None, text.split("\n")))  # normalised text: no blank-but-spaced lines
    sentences = list(filter(None, _SENTENCE_END.split(text)))
    dup_lines, dup_line_chars = duplicate_share(lines)
    _, dup_sentence_chars = duplicate_share(sentences)
    letters = chars.letters()
    chatter_chars = sum(map(len, _CHATTER.findall(text))) if _CHATTER_SEED.search(text) else 0
    if c[LATIN]:
        chatter_chars += sum(len(w) for w in _LATIN_RUN.findall(text) if _CHATTER_WORD.fullmatch(w))
    noise = removed.get("removed_chars.emoji", 0) + removed.get("removed_chars.repeated_punct", 0)
    stop = sum(map(stopwords.__contains__, words))
    signals: dict[str, float | int] = {
        "n_chars": n_chars,
        "n_lines": len(lines),
        "n_words": len(words),
        "han_ratio": c[HAN] / letters if letters else 0.0,
        "trad_ratio": chars.han_trad / c[HAN] if c[HAN] else 0.0,
        "stopword_ratio": stop / len(words) if words else 0.0,
        "char_entropy": chars.entropy,
        "symbol_ratio": (c[DIGIT] + c[SYMBOL]) / n_chars if n_chars else 0.0,
        "bad_char_ratio": (c[BAD] + chars.bad_runs) / n_chars if n_chars else 0.0,
        "chatter_ratio": (chatter_chars + noise) / (n_chars + noise) if n_chars + noise else 0.0,
        "dup_line_ratio": dup_lines,
        "dup_line_char_ratio": dup_line_chars,
        "dup_sentence_char_ratio": dup_sentence_chars,
        **ngrams,
        "spam_density": spam.keyword_chars / n_chars if n_chars else 0.0,
        "spam_line_ratio": spam.ad_chars / len(text) if text else 0.0,  # ad spans' share (the name predates spans)
        "spam_contact": spam.hits.get(CONTACT, 0),
        "spam_context": spam.hits.get(CONTEXT, 0),
    }
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in signals.items()}


@dataclass
class Scorer:
    """Batch step: segment each document once and store its ``signals`` and ``lang`` (tokens only if asked)."""

    segmenter: Segmenter
    lexicon: SpamLexicon
    stopwords: frozenset[str]
    counter: CharCounter
    min_han_ratio: float = 0.4
    keep_tokens: bool = False
    name: str = "score"

    def __call__(self, docs: list[dict]) -> list[dict]:
        """Return the documents with ``signals`` (merged over what earlier steps recorded) and ``lang``."""
        texts = [doc["text"] for doc in docs]
        tokens = [self.segmenter(text) for text in texts]
        words = [list(compress(ts, map(str.isalnum, map(_FIRST, ts)))) for ts in tokens]  # no spaces, no punctuation
        repetition = ngram_ratios(words)
        out = []
        for doc, text, doc_tokens, doc_words, ngrams, chars in zip(
            docs, texts, tokens, words, repetition, self.counter.count_batch(texts)
        ):
            spam = self.lexicon.scan(text)
            removed = doc.get("signals", {})
            signals = {**removed, **text_signals(text, doc_words, chars, spam, self.stopwords, removed, ngrams)}
            for category in self.lexicon.categories:
                signals[f"spam_{category}"] = spam.hits.get(category, 0)
            scored = {**doc, "signals": signals, "lang": tag_lang(chars, self.min_han_ratio)}
            if self.keep_tokens:
                scored["tokens"] = doc_tokens
            out.append(scored)
        return out
