"""Dedup keys, exact hashes, MinHash signatures of character n-grams (vectorised with numpy) and LSH band keys.

A text is first reduced to its dedup key: NFKC, case-folded, without whitespace, punctuation or
symbols, so two copies that differ only in full-/half-width forms, spacing or punctuation are equal.
Shingles are character n-grams of that key: Chinese has no spaces, and character 5-grams separate the
sample site's reposts (Jaccard 0.80 and 0.89) from different articles on the same topic (< 0.1).

Every n-gram of a batch gets one 64-bit hash without a Python loop per shingle: the batch's keys are
concatenated and read as one array of code points, hashed as a polynomial (Horner's rule over n
shifted slices) and finished by splitmix64's mixer. Two ways turn those hashes into a signature:

- ``one_permutation`` (default): one-permutation hashing (Li, Owen & Zhang, NIPS 2012) — the high
  bits of each hash choose one of ``num_perm`` bins, the low 32 bits are minimised per bin with
  ``np.minimum.at``, and bins left empty by a short text borrow a filled bin's value by optimal
  densification (Shrivastava, ICML 2017), so the estimator stays unbiased. One pass per shingle,
  whatever ``num_perm`` is.
- ``k_permutations``: the textbook MinHash, ``num_perm`` hash functions
  ``h_i(x) = (a_i·x + b_i mod 2**64) >> 32`` (multiply-add-shift, Dietzfelbinger 1996) each minimised
  over the shingles: ``num_perm`` times the work, kept as the reference the benchmark compares to.

Both give signatures whose share of equal values estimates the Jaccard similarity of two shingle sets.
Band keys hash each band's ``rows`` values to one 64-bit integer; two documents share a bucket in a
band with probability ``J**rows``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator
from typing import Literal

import numpy as np

MINHASH_VERSION = "minhash_v1"  # bump when signatures change meaning, so stored ones are recomputed

SignatureMethod = Literal["one_permutation", "k_permutations"]

EMPTY = 0xFFFFFFFF  # the value of every bin of a text with no shingles (nothing to compare)
_WORD = re.compile(r"[^\W_]")
_NOT_WORD = re.compile(r"[\W_]+")  # \W: punctuation, symbols, emoji, spaces; "_" is a word character to re
_ASTRAL = re.compile("[\U00010000-\U0010ffff]+")
_U32 = np.uint64(0xFFFFFFFF)
_POLY = np.uint64(0x100000001B3)  # the 64-bit FNV prime: odd, so Horner's rule keeps every code point's bits
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64's finaliser constants
_MIX2 = np.uint64(0x94D049BB133111EB)
_PROBE = 0x9E3779B97F4A7C15  # the golden-ratio constant, to spread (bin, attempt) pairs
_PAD = "\x00"  # never in a dedup key (not a word character): pads a key shorter than one shingle
_PERM_CHUNK = 1024  # shingles per block of the k-permutation product: 1024 × 128 uint64 stay in cache
_BATCH_CHARS = 1 << 20  # code points per hashing batch, so memory stays flat for a 50 MB document


class DedupKey:
    """Callable: the text as duplicates are judged — NFKC, case-folded, only letters and digits left.

    Equal to ``re.sub(r"[\\W_]+", "", unicodedata.normalize("NFKC", text).casefold())``, at twice its
    speed on Chinese text (30 MB/s against 13 on People's Daily): characters that NFKC maps to no
    letter or digit (punctuation, spaces, symbols, full-width ，。) are deleted first, then NFKC runs
    only on what is left of the characters it changes (full-width letters and digits, ℃, ㈱,
    compatibility ideographs). A text with combining marks or Hangul jamo, which NFKC may compose
    with the character before them, takes the plain path. The character tables cover the BMP
    (Python's ``re`` tests a class of astral ranges one range at a time, 20 times slower); the rare
    astral runs (emoji, Extension B ideographs, mathematical letters) are normalised one by one.
    The tables are built once per worker (0.1 s).

    >>> DedupKey()("沿江城际铁路 开通！　ＡＢＣ，１２３，25℃")
    '沿江城际铁路开通abc12325c'
    """

    def __init__(self) -> None:
        composing, no_word, changed = [], [], []
        for c in range(0x10000):
            ch = chr(c)
            normal = unicodedata.normalize("NFKC", ch)
            if unicodedata.combining(ch) or 0x1100 <= c <= 0x11FF or 0xA960 <= c <= 0xA97F or 0xD7B0 <= c <= 0xD7FF:
                composing.append(c)  # combining marks and Hangul jamo: NFKC may join them to the character before
            elif not _WORD.search(normal):
                no_word.append(c)
            if normal != ch:
                changed.append(c)
        self._composing = re.compile(_char_class(composing))
        self._no_word = re.compile(_char_class(no_word) + "+")
        self._changed = re.compile(_char_class(changed) + "+")

    def __call__(self, text: str) -> str:
        if self._composing.search(text):
            return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())
        text = self._changed.sub(_normalise_run, self._no_word.sub("", text))
        return _ASTRAL.sub(_normalise_run, text).casefold()


def _normalise_run(match: re.Match[str]) -> str:
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", match.group()))


def _char_class(code_points: list[int]) -> str:
    """Return a regex character class of ascending code points, as escaped ranges."""
    ranges: list[list[int]] = []
    for c in code_points:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return "[" + "".join(f"\\u{lo:04x}" if lo == hi else f"\\u{lo:04x}-\\u{hi:04x}" for lo, hi in ranges) + "]"


def exact_hash(key: str) -> bytes:
    """Return the 16-byte BLAKE2b digest of a dedup key (128 bits: no accidental collision in any real corpus)."""
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _mix(x: np.ndarray) -> np.ndarray:
    """Return splitmix64's finaliser of each value, computed in place."""
    x ^= x >> np.uint64(30)
    x *= _MIX1
    x ^= x >> np.uint64(27)
    x *= _MIX2
    x ^= x >> np.uint64(31)
    return x


class MinHasher:
    """Computes MinHash signatures and LSH band keys; holds the permutations (built once per worker).

    Args:
        shingle_size: characters per n-gram; a key shorter than that is one shingle.
        bands, rows: the LSH layout; a signature has ``bands * rows`` values.
        seed: seeds the hash functions; signatures made with different seeds are not comparable.
        method: ``one_permutation`` or ``k_permutations`` (see the module docstring).
    """

    def __init__(self, shingle_size: int, bands: int, rows: int, seed: int, method: SignatureMethod = "one_permutation") -> None:
        self.shingle_size = shingle_size
        self.bands = bands
        self.rows = rows
        self.num_perm = bands * rows
        self.method = method
        rng = np.random.default_rng(seed)
        self._seed = int(rng.integers(0, 2**63))
        self._a = rng.integers(0, 2**63, size=self.num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self._b = rng.integers(0, 2**63, size=self.num_perm, dtype=np.uint64)
        self._band_seeds = rng.integers(0, 2**63, size=bands, dtype=np.uint64)

    def __call__(self, keys: list[str]) -> np.ndarray:
        """Return the (len(keys), num_perm) uint32 signatures of dedup keys; an empty key's are all EMPTY."""
        out = np.full((len(keys), self.num_perm), EMPTY, dtype=np.uint32)
        for doc_index, hashes in self._shingle_batches(keys):
            if self.method == "one_permutation":
                self._bin_minima(out, doc_index, hashes)
            else:
                self._permutation_minima(out, doc_index, hashes)
        if self.method == "one_permutation":
            self._densify(out)
        return out

    def shingle_hashes(self, key: str) -> np.ndarray:
        """Return the 64-bit hashes of one key's shingles, in text order."""
        hashes = [h for _, h in self._shingle_batches([key])]
        return np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64)

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """Return the (n, bands) uint64 bucket keys of signatures: one hash of each band's rows."""
        n = signatures.shape[0]
        values = signatures.reshape(n, self.bands, self.rows).astype(np.uint64)
        keys = np.broadcast_to(self._band_seeds, (n, self.bands)).copy()
        for r in range(self.rows):
            keys ^= values[:, :, r]
            keys *= _POLY
            _mix(keys)
        return keys

    # ------------------------------------------------------------------ shingles

    def _shingle_batches(self, keys: list[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (document index, mixed 64-bit hash) of every shingle, in batches of about _BATCH_CHARS code points.

        A key longer than a batch is cut into pieces that overlap by n-1 characters, so every n-gram is
        hashed exactly once; a key shorter than n is padded to one shingle. The shingles of one document
        are contiguous in the output.
        """
        n = self.shingle_size
        pieces: list[tuple[int, str]] = []
        size = 0
        for i, key in enumerate(keys):
            if not key:
                continue
            if len(key) < n:
                key = key + _PAD * (n - len(key))
            for start in range(0, len(key) - n + 1, _BATCH_CHARS):
                piece = key[start : start + _BATCH_CHARS + n - 1]
                pieces.append((i, piece))
                size += len(piece)
                if size >= _BATCH_CHARS:
                    yield self._hash_pieces(pieces)
                    pieces, size = [], 0
        if pieces:
            yield self._hash_pieces(pieces)

    def _hash_pieces(self, pieces: list[tuple[int, str]]) -> tuple[np.ndarray, np.ndarray]:
        """Return (document index, mixed 64-bit hash) of every n-gram that starts and ends inside one piece."""
        n = self.shingle_size
        text = "".join(piece for _, piece in pieces)
        points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
        m = len(points) - n + 1
        hashes = points[:m].copy()
        for k in range(1, n):  # Horner's rule: every window's polynomial at once
            hashes *= _POLY
            hashes += points[k : k + m]
        lengths = np.fromiter((len(p) for _, p in pieces), dtype=np.int64, count=len(pieces))
        counts = lengths - n + 1  # windows that start in a piece and end in it
        piece_of = np.repeat(np.arange(len(pieces)), counts)
        offsets = np.cumsum(lengths) - lengths
        starts = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts) + offsets[piece_of]
        docs = np.fromiter((d for d, _ in pieces), dtype=np.int64, count=len(pieces))
        return docs[piece_of], _mix(hashes[starts] ^ np.uint64(self._seed))  # the seed picks the hash function

    # ------------------------------------------------------------------ one-permutation hashing

    def _bin_minima(self, out: np.ndarray, doc_index: np.ndarray, hashes: np.ndarray) -> None:
        """Lower each document's bins to the least low-32-bit value of the shingles whose high bits chose the bin."""
        bins = ((hashes >> np.uint64(32)) * np.uint64(self.num_perm)) >> np.uint64(32)  # uniform in [0, num_perm)
        flat = doc_index * self.num_perm + bins.astype(np.int64)
        np.minimum.at(out.reshape(-1), flat, (hashes & _U32).astype(np.uint32))

    def _densify(self, out: np.ndarray) -> None:
        """Fill each empty bin of a non-empty signature from the first filled bin its probe sequence reaches.

        Optimal densification: empty bin ``j`` tries bins ``probe(j, 1), probe(j, 2), …`` (the same
        sequence in every document) and copies the first one that was filled by a shingle, never one
        filled by borrowing, so two documents agree on bin ``j`` exactly as often as on a real bin.
        """
        empty = out == EMPTY
        filled = ~empty
        partial = np.flatnonzero(empty.any(axis=1) & filled.any(axis=1))
        if not len(partial):
            return
        rows, bins = np.nonzero(empty[partial])
        rows = partial[rows]
        attempt = 0
        while len(rows):
            attempt += 1
            step = np.uint64((attempt * _PROBE + self._seed) % 2**64)  # Python ints: numpy scalars warn on wrap-around
            probe = _mix((bins.astype(np.uint64) << np.uint64(32)) + step)
            source = (((probe >> np.uint64(32)) * np.uint64(self.num_perm)) >> np.uint64(32)).astype(np.int64)
            hit = filled[rows, source]
            out[rows[hit], bins[hit]] = out[rows[hit], source[hit]]
            rows, bins = rows[~hit], bins[~hit]

    # ------------------------------------------------------------------ k permutations

    def _permutation_minima(self, out: np.ndarray, doc_index: np.ndarray, hashes: np.ndarray) -> None:
        """Lower out[doc] to the minimum of each of the num_perm hash functions over the document's shingles."""
        for lo in range(0, len(hashes), _PERM_CHUNK):
            x = hashes[lo : lo + _PERM_CHUNK]
            docs = doc_index[lo : lo + _PERM_CHUNK]
            bounds = np.flatnonzero(np.concatenate(([True], docs[1:] != docs[:-1])))
            values = x[:, None] * self._a[None, :]
            values += self._b
            values >>= np.uint64(32)
            mins = np.minimum.reduceat(values, bounds, axis=0).astype(np.uint32)
            rows = docs[bounds]  # unique: a document's shingles are contiguous
            out[rows] = np.minimum(out[rows], mins)


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the share of equal values of two signatures (row by row for two 2-D arrays)."""
    return np.mean(a == b, axis=-1)
