"""Hashed features of a text: jieba word n-grams and character n-grams, fastText-style.

Two blocks side by side: jieba's precise-mode words (the clean stage's ``Segmenter``: rjieba giving jieba's
exact tokens) as 1-2-grams, and characters as 1-3-grams, lower-cased. Each block is counts hashed into
2^hash_bits buckets and l2-normalised per document. Hashing is stateless: there is no vocabulary to fit or
save, so a model is its linear weights plus these few settings, and every worker featurises identically.
Characters catch what segmentation hides (garbled words, homoglyph spam, 特价!!! punctuation); words catch
phrasing that characters split (据介绍, 加微信).

A third, dense block reads order, which bags of n-grams barely do, from the reference character LM
(tasks/quality/lm.py): the perplexity over the pairs of frequent characters (function words and punctuation,
which follow each other the same way in every domain) and its ratio to the same characters' unigram
perplexity, each as its log scaled to about [-1, 1] and one-hot in buckets, so the linear model can learn a
response that is not a straight line; beside them the text's line layout. The perplexity over all characters
(``ppl_ref``) is stored and thresholded but is not a feature: it measures distance from the reference's domain
as much as fluency. With it in the block (ppl_weight 10, quality_eval dev half) the demo's product pages, ppl
230-980 against the real news' 100-260 and word salad's ~280, fell to low; without it none does, at AUC 0.95.

The hashing runs in numpy over the whole batch, like the clean stage's n-gram signals: a unit (a character's
code point, a word's CRC-32) is spread by splitmix64's finaliser, an n-gram's key is the polynomial
h·P + next over its units (wrapping uint64 arithmetic, P the 64-bit FNV prime), mixed again with n, and its
top hash_bits bits are the bucket. Everything is fixed-width integer arithmetic: the same on every machine
and process (Python's own ``hash`` of a str is salted per process, so it cannot be used). Measured on the
sample's gold texts (benchmarks/quality_throughput.py): 3-4x faster than scikit-learn's HashingVectorizer with
a char analyzer, whose n-grams are Python strings hashed one by one.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field

import numpy as np
import scipy.sparse as sp

from tasks.clean.segment import Segmenter
from tasks.quality.config import QualityConfig
from tasks.quality.lm import FNV_PRIME, CharLM, Perplexities, mix64

# bucket edges of the perplexity over frequent-unit pairs (lm.py): news ~15-40 in any domain, word salad ~90
FREQUENT_EDGES = (12.0, 16.0, 20.0, 25.0, 32.0, 40.0, 50.0, 65.0, 85.0, 110.0, 150.0, 200.0)
FREQUENT_CENTRE = np.log(40.0)
# and of its ratio to the same characters' unigram perplexity: news ~0.08, word salad ~0.39
FREQUENT_GAIN_EDGES = (0.04, 0.06, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.32, 0.4, 0.5)


def hashed_ngrams(units: np.ndarray, lengths: np.ndarray, ngram_range: tuple[int, int], bits: int) -> sp.csr_matrix:
    """Return the (len(lengths), 2^bits) CSR matrix of l2-normalised hashed n-gram counts.

    Args:
        units: uint64 key of every unit (character, word) of all documents, concatenated in order.
        lengths: units per document.
    """
    n_docs = len(lengths)
    lo, hi = ngram_range
    doc = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
    parts = []
    h = units
    for n in range(1, hi + 1):
        if n > 1:
            h = h[:-1] * FNV_PRIME + units[n - 1 :]  # h[i] now covers units[i : i + n]
        if n >= lo and len(h):
            inside = doc[: len(h)] == doc[n - 1 :]  # the n-gram does not straddle two documents
            bucket = (mix64(h[inside] ^ np.uint64(n)) >> np.uint64(64 - bits)).astype(np.int64)
            parts.append((doc[: len(h)][inside] << bits) | bucket)
    keys = np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
    # one sort gives rows in order, columns in order within a row, and equal (row, column) pairs side by side
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1]))) if len(keys) else np.empty(0, dtype=np.int64)
    unique = keys[starts]
    counts = np.diff(np.append(starts, len(keys))).astype(np.float64)
    rows = unique >> bits
    norms = np.sqrt(np.bincount(rows, weights=counts * counts, minlength=n_docs))
    values = counts / norms[rows] if len(rows) else counts
    indptr = np.searchsorted(rows, np.arange(n_docs + 1))
    return sp.csr_matrix((values, unique & ((1 << bits) - 1), indptr), shape=(n_docs, 1 << bits))


def char_units(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Return (mixed code point of every character, characters per text) of lower-cased texts."""
    lowered = [t.lower() for t in texts]
    lengths = np.fromiter(map(len, lowered), dtype=np.int64, count=len(lowered))
    code_points = np.frombuffer("".join(lowered).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    return mix64(code_points + np.uint64(1)), lengths


def word_units(token_lists: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Return (mixed CRC-32 of every lower-cased token's UTF-8, tokens per document)."""
    lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    crc = zlib.crc32
    crcs = (crc(t.lower().encode("utf-8")) for tokens in token_lists for t in tokens)
    keys = np.fromiter(crcs, dtype=np.uint64, count=int(lengths.sum()))
    return mix64(keys + np.uint64(1)), lengths


def encodable(text: str) -> str:
    """Return ``text`` with lone UTF-16 surrogates (JSON's \\ud800 escapes) as U+FFFD: jieba and UTF-8 refuse them."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


@dataclass(frozen=True)
class FeatureSettings:
    """What decides a text's feature vector; saved with a model, so scoring always matches training."""

    hash_bits: int = 20
    word_ngram_range: tuple[int, int] = (1, 2)
    char_ngram_range: tuple[int, int] = (1, 3)
    max_chars: int = 3000
    ppl_weight: float = 1.0  # scale of the perplexity block; 0 leaves it out of the features (ppl_ref is still stored)

    @classmethod
    def from_config(cls, cfg: QualityConfig) -> FeatureSettings:
        return cls(cfg.hash_bits, tuple(cfg.word_ngram_range), tuple(cfg.char_ngram_range), cfg.max_chars, cfg.ppl_weight)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSettings:
        return cls(
            hash_bits=int(d["hash_bits"]),
            word_ngram_range=(int(d["word_ngram_range"][0]), int(d["word_ngram_range"][1])),
            char_ngram_range=(int(d["char_ngram_range"][0]), int(d["char_ngram_range"][1])),
            max_chars=int(d["max_chars"]),
            ppl_weight=float(d["ppl_weight"]),
        )

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def n_features(self) -> int:
        """Columns of a feature matrix: two hashed blocks of 2^hash_bits, then the perplexity block."""
        return 2 * (1 << self.hash_bits) + PPL_FEATURES


# the layout (lines' mean length bucket, share of short lines, share of lines ending a sentence, punctuation rate),
# then the frequent-pair perplexity and its ratio to unigram, each scaled and bucketed
LINE_EDGES = (8.0, 15.0, 25.0, 40.0, 70.0, 120.0)
SHAPE_FEATURES = len(LINE_EDGES) + 1 + 3
ORDER_FEATURES = 2 + len(FREQUENT_EDGES) + 1 + len(FREQUENT_GAIN_EDGES) + 1
PPL_FEATURES = SHAPE_FEATURES + ORDER_FEATURES
_SENTENCE_END = tuple("。！？!?”」…")
_PUNCT = frozenset("，。！？；：、,.!?;:")


def layout(text: str) -> tuple[float, float, float, float]:
    """Return (mean line length, share of lines under 15 characters, share of lines ending a sentence, punctuation
    per character): boilerplate is short lines that end nothing; prose is long lines ending in 。"""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if not lines:
        return 0.0, 0.0, 0.0, 0.0
    n_chars = sum(map(len, lines))
    short = sum(len(line) < 15 for line in lines) / len(lines)
    ended = sum(line.endswith(_SENTENCE_END) for line in lines) / len(lines)
    punct = sum(c in _PUNCT for c in text) / max(n_chars, 1)
    return n_chars / len(lines), short, ended, punct


def _scaled_and_bucket(dense: np.ndarray, at: int, value: np.ndarray, centre: float, edges: tuple[float, ...]) -> int:
    """Write (ln value - centre) / 2 clipped to ±2 at column ``at`` and value's one-hot bucket after it; return the
    next free column."""
    rows = np.arange(len(value))
    dense[:, at] = np.clip((np.log(np.maximum(value, 1e-3)) - centre) / 2.0, -2.0, 2.0)
    dense[rows, at + 1 + np.searchsorted(np.asarray(edges), value, side="right")] = 1.0
    return at + 2 + len(edges)


def ppl_block(signals: Perplexities, weight: float, texts: list[str]) -> sp.csr_matrix:
    """Return the (n, PPL_FEATURES) dense block, times weight: the layout, then the scaled log of the frequent-pair
    perplexity and its bucket, the scaled log of its ratio to unigram and its bucket (zero for a text without
    frequent pairs); all zero for an empty text."""
    n = len(texts)
    rows = np.arange(n)
    dense = np.zeros((n, PPL_FEATURES))
    if n:
        shapes = np.array([layout(t) for t in texts])
        dense[rows, np.searchsorted(np.asarray(LINE_EDGES), shapes[:, 0], side="right")] = 1.0
        at = len(LINE_EDGES) + 1
        dense[:, at : at + 2] = shapes[:, 1:3]
        dense[:, at + 2] = np.minimum(shapes[:, 3] * 10.0, 2.0)  # prose ~0.08-0.12 punctuation marks per character
        at += 3
        frequent = signals.frequent
        at = _scaled_and_bucket(dense, at, frequent, FREQUENT_CENTRE, FREQUENT_EDGES)
        gain = frequent / np.maximum(signals.frequent_unigram, 1e-9)
        _scaled_and_bucket(dense, at, gain, np.log(0.1), FREQUENT_GAIN_EDGES)
        dense[frequent <= 0, SHAPE_FEATURES:] = 0.0
        dense[signals.ppl <= 0] = 0.0
    return sp.csr_matrix(dense * weight)


@dataclass
class Featurizer:
    """Turns texts into a sparse feature matrix; built once per worker (the segmenter loads jieba's dictionary)."""

    settings: FeatureSettings
    lm: CharLM | None = None  # None: no perplexity block (all zero), the hashed blocks alone
    _segmenter: Segmenter = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._segmenter = Segmenter("auto", hmm=True)

    def words(self, text: str) -> list[str]:
        """Return the jieba tokens of ``text`` without the whitespace ones (punctuation stays: 。据 is a signal)."""
        return [t for t in self._segmenter(text) if not t.isspace()]

    def word_block(self, texts: list[str]) -> sp.csr_matrix:
        """Return the hashed jieba word n-gram block of texts (already cut to max_chars)."""
        s = self.settings
        return hashed_ngrams(*word_units([self.words(t) for t in texts]), s.word_ngram_range, s.hash_bits)

    def char_block(self, texts: list[str]) -> sp.csr_matrix:
        """Return the hashed character n-gram block of texts (already cut to max_chars)."""
        s = self.settings
        return hashed_ngrams(*char_units(texts), s.char_ngram_range, s.hash_bits)

    def featurize(self, texts: list[str]) -> tuple[sp.csr_matrix, np.ndarray]:
        """Return (the (len(texts), n_features) CSR matrix, the perplexities) of the texts' first max_chars characters."""
        cut = [encodable(t[: self.settings.max_chars]) for t in texts]
        if self.lm is None:
            zero = np.zeros(len(cut))
            signals = Perplexities(zero, zero, zero, zero)
        else:
            signals = self.lm.perplexity_signals(cut)
        blocks = [self.word_block(cut), self.char_block(cut), ppl_block(signals, self.settings.ppl_weight, cut)]
        return sp.hstack(blocks, format="csr"), signals.ppl

    def __call__(self, texts: list[str]) -> sp.csr_matrix:
        """Return the (len(texts), n_features) CSR matrix of the texts' first max_chars characters."""
        return self.featurize(texts)[0]
