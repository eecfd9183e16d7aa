"""Hashed features of a text: jieba word n-grams and character n-grams, fastText-style.

Two blocks side by side: jieba's precise-mode words (the clean stage's ``Segmenter``: rjieba giving jieba's
exact tokens) as 1-2-grams, and characters as 1-3-grams, lower-cased. Each block is counts hashed into
2^hash_bits buckets and l2-normalised per document. Hashing is stateless: there is no vocabulary to fit or
save, so a model is its linear weights plus these few settings, and every worker featurises identically.
Characters catch what segmentation hides (garbled words, homoglyph spam, 特价!!! punctuation); words catch
phrasing that characters split (据介绍, 加微信).

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

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_FNV_PRIME = np.uint64(0x100000001B3)


def _mix(x: np.ndarray) -> np.ndarray:
    """Return splitmix64's finaliser of each uint64: a bijection that spreads every input bit over the output."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


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
            h = h[:-1] * _FNV_PRIME + units[n - 1 :]  # h[i] now covers units[i : i + n]
        if n >= lo and len(h):
            inside = doc[: len(h)] == doc[n - 1 :]  # the n-gram does not straddle two documents
            bucket = (_mix(h[inside] ^ np.uint64(n)) >> np.uint64(64 - bits)).astype(np.int64)
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
    return _mix(code_points + np.uint64(1)), lengths


def word_units(token_lists: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Return (mixed CRC-32 of every lower-cased token's UTF-8, tokens per document)."""
    lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    crc = zlib.crc32
    crcs = (crc(t.lower().encode("utf-8")) for tokens in token_lists for t in tokens)
    keys = np.fromiter(crcs, dtype=np.uint64, count=int(lengths.sum()))
    return _mix(keys + np.uint64(1)), lengths


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

    @classmethod
    def from_config(cls, cfg: QualityConfig) -> FeatureSettings:
        return cls(cfg.hash_bits, tuple(cfg.word_ngram_range), tuple(cfg.char_ngram_range), cfg.max_chars)

    @classmethod
    def from_dict(cls, d: dict) -> FeatureSettings:
        return cls(
            hash_bits=int(d["hash_bits"]),
            word_ngram_range=(int(d["word_ngram_range"][0]), int(d["word_ngram_range"][1])),
            char_ngram_range=(int(d["char_ngram_range"][0]), int(d["char_ngram_range"][1])),
            max_chars=int(d["max_chars"]),
        )

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def n_features(self) -> int:
        """Columns of a feature matrix: two blocks of 2^hash_bits."""
        return 2 * (1 << self.hash_bits)


@dataclass
class Featurizer:
    """Turns texts into a sparse feature matrix; built once per worker (the segmenter loads jieba's dictionary)."""

    settings: FeatureSettings
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

    def __call__(self, texts: list[str]) -> sp.csr_matrix:
        """Return the (len(texts), n_features) CSR matrix of the texts' first max_chars characters."""
        cut = [encodable(t[: self.settings.max_chars]) for t in texts]
        return sp.hstack([self.word_block(cut), self.char_block(cut)], format="csr")
