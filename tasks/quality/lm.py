"""A character n-gram language model with interpolated modified Kneser-Ney smoothing, in numpy: the reference LM.

CCNet (Wenzek et al. 2019, arxiv 1911.00359, §3.3) scores every document by its perplexity under a small LM
trained on clean reference text (Wikipedia there) and buckets the corpus head / middle / tail; data-juicer's
perplexity filter and RedPajama-V2's ``ccnet_perplexity`` signal follow it. Here the reference text is the
chain's own: the bundled reference set (data/sample/quality/reference.txt.gz, People's Daily 1998 paragraphs)
and the run's trusted sources. A bag of n-grams cannot see that word order is gone; perplexity can: the words of
a good article in random order cost this model 3-4x the perplexity of the article (benchmarks/quality_eval.py).

Smoothing is Chen & Goodman's interpolated modified Kneser-Ney (1998, TR-10-98 §3): three discounts per order
from the count-of-counts, the highest order on raw counts, lower orders on continuation counts (how many
different characters precede an n-gram), interpolated down to a uniform distribution over the vocabulary plus
one unknown-character slot, so the conditional probabilities of every context sum to one.

Units are characters, folded so that formatting does not count as surprise: full-width ASCII to half-width,
every Latin letter to ``a`` and every digit to ``0`` (a reference of Chinese news knows no English, and an
English term or a number inside Chinese prose is not disfluent), every whitespace to one space. Each document is preceded by
``order - 1`` begin-of-text units. An n-gram is a 64-bit polynomial hash of its units mixed with its length
(the feature hashing's arithmetic); collisions among a few million keys are ~1e-7 likely and cost only a
slightly wrong probability.

The fitted model is what ARPA files hold, in arrays: one sorted table of n-gram keys with, per key, the
interpolated log-probability of its last unit given the rest, and the log back-off weight it carries as a
context. Scoring a position is a lookup per order; a position's log-probability is that of its longest
n-gram found plus the back-off weights of the longer contexts. Saved as npz (allow_pickle=False) + a few
numbers in the quality model's model.json.

Perplexity over all characters is also a domain detector: a product page's tea-processing terms (摊晾, 杀青)
cost a 1998 news model more (ppl ~600-1000) than real news shuffled into word salad (~280). The model therefore
also keeps its ``FREQUENT_UNITS`` most frequent training characters (的, 了, 在, ，, 。 …) and reports the
perplexity over the positions where a frequent character follows a frequent character: function words and
punctuation follow each other the same way in every domain, and that is exactly what shuffling breaks
(benchmarks/quality_eval.py, dev half: news 23, word salad 89; the demo's product pages 15-50).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
FNV_PRIME = np.uint64(0x100000001B3)  # FNV-1a 64-bit prime: rolls n-gram hashes here and in features.py
BOS = 0x110000  # one past the last code point: no character folds to it
LM_VERSION = "char_kn_v2"  # v2: the frequent units and the perplexity over their pairs
# 50: on the dev half of quality_eval the frequent-pair perplexity tells news from word salad with AUC 0.88 at 50,
# 0.90 at 150 and 0.89 at 400, but only at 50 do the demo's product pages sit with news (150: 57-126 vs news 45-77)
FREQUENT_UNITS = 50


def mix64(x: np.ndarray) -> np.ndarray:
    """Return splitmix64's finaliser of each uint64: a bijection that spreads every input bit over the output."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def fold_units(texts: list[str], order: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (folded code points of all texts, each preceded by ``order - 1`` BOS units; True where a unit is a
    character to score, False on the BOS units)."""
    pad = "\x00" * (order - 1)
    joined = "".join(pad + t for t in texts)
    cp = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).copy()
    is_char = cp != 0
    cp[~is_char] = BOS  # a NUL inside a text also becomes BOS: it carries no language
    wide = (cp >= 0xFF01) & (cp <= 0xFF5E)
    cp[wide] -= 0xFEE0
    cp[((cp >= 0x41) & (cp <= 0x5A)) | ((cp >= 0x61) & (cp <= 0x7A))] = 0x61
    cp[(cp >= 0x30) & (cp <= 0x39)] = 0x30
    cp[(cp == 0x3000) | (cp == 0x09) | (cp == 0x0A) | (cp == 0x0D) | (cp == 0xA0)] = 0x20
    return cp, is_char


def ngram_keys(units: np.ndarray, order: int) -> list[np.ndarray]:
    """Return, for k = 1..order, the uint64 key of the k-gram ending at each position (its first k-1 entries wrap
    to the start: never read, since every text is preceded by order-1 BOS units)."""
    mixed = mix64(units.astype(np.uint64) + np.uint64(1))
    keys = []
    h = mixed.copy()
    for k in range(1, order + 1):
        if k > 1:
            h = np.roll(h, 1) * FNV_PRIME + mixed  # h[i] now covers units[i-k+1 .. i]
        keys.append(mix64(h ^ np.uint64(k)) | np.uint64(1))  # odd: 0 marks an empty slot of the hash table
    return keys


def _discounts(counts: np.ndarray) -> np.ndarray:
    """Return modified Kneser-Ney's discounts (D1, D2, D3+) from the count-of-counts (Chen & Goodman eq. 26)."""
    n = np.bincount(np.minimum(counts, 5).astype(np.int64), minlength=6)[1:5].astype(np.float64)
    n = np.maximum(n, 1.0)  # tiny training sets: no zero count-of-counts
    y = n[0] / (n[0] + 2 * n[1])
    d = np.array([1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]])
    return np.clip(d, 0.05, np.array([0.95, 1.9, 2.9]))


def _group(keys: np.ndarray, values: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (unique keys, index of one occurrence of each, count or sum of values per unique key)."""
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    totals = np.bincount(inverse, weights=values, minlength=len(uniq))
    return uniq, first, totals


def _lookup(table: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (index in the sorted table, found) of each query key."""
    if not len(table):
        return np.zeros(len(queries), dtype=np.int64), np.zeros(len(queries), dtype=bool)
    idx = np.minimum(np.searchsorted(table, queries), len(table) - 1)
    return idx, table[idx] == queries


class KeyTable:
    """An open-addressing hash table (linear probing, load <= 1/3) from odd uint64 keys to their row in a key array.

    A sorted array answers a lookup in ~20 dependent memory reads (binary search over millions of keys); this
    table in ~1.3, which is what lets perplexity keep the stage above 2 MB/s per core. Built in numpy at load
    time, in rounds: every key not yet placed claims its probe slot, one key wins each free slot, the rest
    move on one slot.
    """

    def __init__(self, keys: np.ndarray):
        bits = max(4, int(np.ceil(np.log2(max(len(keys), 1) * 3))))
        self.mask = np.uint64((1 << bits) - 1)
        self.shift = np.uint64(64 - bits)
        self.slots = np.zeros(1 << bits, dtype=np.uint64)
        self.rows = np.zeros(1 << bits, dtype=np.int64)
        pending = np.arange(len(keys))
        pos = keys >> self.shift
        while len(pending):
            s = pos[pending]
            free = self.slots[s] == 0
            claim_slots, first = np.unique(s[free], return_index=True)
            winners = pending[free][first]
            self.slots[claim_slots] = keys[winners]
            self.rows[claim_slots] = winners
            placed = np.zeros(len(keys), dtype=bool)
            placed[winners] = True
            pending = pending[~placed[pending]]
            pos[pending] = (pos[pending] + np.uint64(1)) & self.mask

    def find(self, queries: np.ndarray) -> np.ndarray:
        """Return the row of each query key, -1 where it is absent."""
        out = np.full(len(queries), -1, dtype=np.int64)
        active = np.arange(len(queries))
        pos = queries >> self.shift
        while len(active):
            s = pos[active] if len(active) < len(queries) else pos
            found = self.slots[s]
            hit = found == queries[active]
            out[active[hit]] = self.rows[s[hit]]
            go_on = ~hit & (found != 0)
            active = active[go_on]
            pos[active] = (pos[active] + np.uint64(1)) & self.mask
        return out


@dataclass(frozen=True)
class Perplexities:
    """Per-text perplexities under the reference LM (0 where a text has no character counted)."""

    ppl: np.ndarray  # over every character: the ppl_ref signal
    unigram: np.ndarray  # the same characters under the unigram distribution alone
    frequent: np.ndarray  # over the characters that follow a frequent unit and are one: word order, any domain
    frequent_unigram: np.ndarray  # those characters under the unigram distribution alone


@dataclass
class CharLM:
    """A fitted character n-gram model: sorted keys, log-probability and log back-off weight per key."""

    order: int
    keys: np.ndarray  # uint64, sorted
    logp: np.ndarray  # float32: log p(last unit | the others) of the key as an n-gram; 0 where it is only a context
    logbow: np.ndarray  # float32: log back-off weight of the key as a context; 0 where it is never one
    unk_logp: float  # log-probability of a character the model never saw
    vocab: int  # characters seen, the unknown slot excluded
    trained_chars: int
    frequent: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint32))  # sorted folded code points
    _table: KeyTable | None = field(default=None, init=False, repr=False)
    _is_frequent: np.ndarray | None = field(default=None, init=False, repr=False)

    @classmethod
    def fit(cls, texts: list[str], order: int = 3) -> CharLM:
        """Return the model fitted on texts (interpolated modified Kneser-Ney)."""
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        units, is_char = fold_units([t for t in texts if t], order)
        if not is_char.any():
            raise ValueError("no characters to train the reference LM on")
        keys = ngram_keys(units, order)
        target = np.flatnonzero(is_char)
        tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # order -> (keys, logp)
        bows: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # order of the context -> (context keys, logbow)
        # a[k]: the count each k-gram is smoothed with: raw at the top order, continuation count below
        grams, reps, counts = _group(keys[order - 1][target])
        reps = target[reps]
        levels = {order: (grams, reps, counts)}
        for k in range(order - 1, 0, -1):
            higher_reps = levels[k + 1][1]
            grams, first, counts = _group(keys[k - 1][higher_reps])  # one per distinct (k+1)-gram with this suffix
            levels[k] = (grams, higher_reps[first], counts)
        unk_logp = 0.0
        vocab = len(levels[1][0])
        for k in range(1, order + 1):
            grams, reps, a = levels[k]
            d = _discounts(a)
            disc = d[np.minimum(a, 3).astype(np.int64) - 1]
            if k == 1:
                ctx = np.zeros(len(grams), dtype=np.uint64)
            else:
                ctx = keys[k - 2][reps - 1]
            ctx_keys, ctx_first, ctx_total = _group(ctx, a)
            ctx_of = np.searchsorted(ctx_keys, ctx)
            ctx_disc = np.bincount(ctx_of, weights=disc, minlength=len(ctx_keys))
            gamma = ctx_disc / ctx_total
            if k == 1:
                lower = np.full(len(grams), 1.0 / (vocab + 1))
                unk_logp = float(np.log(gamma[0] / (vocab + 1)))
            else:
                lower_keys, lower_logp = tables[k - 1]
                idx, found = _lookup(lower_keys, keys[k - 2][reps])
                assert found.all(), "every suffix of a counted n-gram is counted one order down"
                lower = np.exp(lower_logp[idx].astype(np.float64))
                bows[k - 1] = (ctx_keys, np.log(gamma).astype(np.float32))
            p = (a - disc) / ctx_total[ctx_of] + gamma[ctx_of] * lower
            tables[k] = (grams, np.log(p).astype(np.float32))
        all_keys = np.concatenate([tables[k][0] for k in tables] + [bows[k][0] for k in bows])
        merged, inverse = np.unique(all_keys, return_inverse=True)
        logp = np.zeros(len(merged), dtype=np.float32)
        logbow = np.zeros(len(merged), dtype=np.float32)
        at = 0
        for k in tables:
            n = len(tables[k][0])
            logp[inverse[at : at + n]] = tables[k][1]
            at += n
        for k in bows:
            n = len(bows[k][0])
            logbow[inverse[at : at + n]] = bows[k][1]
            at += n
        char_units = units[is_char]
        uniq, counts = np.unique(char_units, return_counts=True)
        top = uniq[np.argsort(-counts, kind="stable")[:FREQUENT_UNITS]]
        frequent = np.sort(top[top != 0x20]).astype(np.uint32)  # a space is layout, not a function word
        return cls(order, merged, logp, logbow, unk_logp, vocab, int(is_char.sum()), frequent)

    @property
    def table(self) -> KeyTable:
        """The hash table over the keys, built on first use (~0.3 s per million keys)."""
        if self._table is None:
            self._table = KeyTable(self.keys)
        return self._table

    def position_logprobs(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (natural log-probability of every character of the texts in order, the same under the model's
        unigram distribution alone, characters per text)."""
        total, alone, lengths, _ = self._score_positions(texts)
        return total, alone, lengths

    def _score_positions(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Return position_logprobs' three arrays and, per character, True where it and the unit before it are
        both frequent units."""
        n = self.order
        units, is_char = fold_units(texts, n)
        keys = ngram_keys(units, n)
        target = np.flatnonzero(is_char)
        if self._is_frequent is None:  # one lookup per unit instead of np.isin's pass per frequent unit
            self._is_frequent = np.zeros(BOS + 1, dtype=bool)
            self._is_frequent[self.frequent] = True
        frequent = self._is_frequent[units]
        pair = frequent[target] & frequent[target - 1]  # target - 1 >= 0: every text starts with order - 1 BOS units
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        rows = [self.table.find(k) for k in keys]  # rows[k-1][i]: the k-gram ending at unit i, -1 if unseen
        total = np.zeros(len(target))
        done = np.zeros(len(target), dtype=bool)
        # from the longest n-gram down: a found k-gram gives the probability; until one is found, each missing
        # k-gram's context (the (k-1)-gram ending one unit earlier) adds its back-off weight (0 if never seen)
        for k in range(n, 0, -1):
            row = rows[k - 1][target]
            found = row >= 0
            hit = found & ~done
            total[hit] += self.logp[row[hit]]
            done |= found
            if k > 1:
                ctx = rows[k - 2][target[~done] - 1]
                total[~done] += np.where(ctx >= 0, self.logbow[np.maximum(ctx, 0)], 0.0)
        total[~done] += self.unk_logp
        unigram = rows[0][target]
        alone = np.where(unigram >= 0, self.logp[np.maximum(unigram, 0)], self.unk_logp)
        return total, alone, lengths, pair

    def perplexities(self, texts: list[str]) -> np.ndarray:
        """Return each text's per-character perplexity, exp(mean negative log-probability); 0 for an empty text."""
        return self.perplexity_pairs(texts)[0]

    def perplexity_pairs(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return each text's perplexity under the model and under its unigram distribution alone (0 when empty).

        Their ratio is how much the preceding characters help: a text in a domain the reference never saw has both
        high, while the same words in random order lose what context gave and keep their unigram perplexity.
        """
        signals = self.perplexity_signals(texts)
        return signals.ppl, signals.unigram

    def perplexity_signals(self, texts: list[str]) -> Perplexities:
        """Return each text's perplexities: over all characters and over the frequent pairs, each also under the
        unigram distribution alone (0 where a text has no such character)."""
        logp, alone, lengths, pair = self._score_positions(texts)
        doc = np.repeat(np.arange(len(texts)), lengths)
        out = []
        for weight in (None, pair.astype(np.float64)):
            n = lengths if weight is None else np.bincount(doc, weights=weight, minlength=len(texts))
            for values in (logp, alone):
                total = -np.bincount(doc, weights=values if weight is None else values * weight, minlength=len(texts))
                out.append(np.where(n > 0, np.exp(total / np.maximum(n, 1)), 0.0))
        return Perplexities(*out)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Return the arrays saved in the model's npz."""
        return {"lm_keys": self.keys, "lm_logp": self.logp, "lm_logbow": self.logbow, "lm_frequent": self.frequent}

    def to_dict(self) -> dict:
        """Return the JSON-able numbers saved beside the arrays."""
        return {"version": LM_VERSION, "order": self.order, "unk_logp": self.unk_logp, "vocab": self.vocab,
                "trained_chars": self.trained_chars}

    @classmethod
    def from_saved(cls, meta: dict, arrays) -> CharLM:
        """Return the model from its saved numbers and arrays; raise ValueError on a different version or shape."""
        if meta.get("version") != LM_VERSION:
            raise ValueError(f"reference LM version {meta.get('version')!r}, this code reads {LM_VERSION}")
        keys, logp, logbow = arrays["lm_keys"], arrays["lm_logp"], arrays["lm_logbow"]
        if not (keys.dtype == np.uint64 and len(keys) == len(logp) == len(logbow)) or np.any(keys[1:] <= keys[:-1]):
            raise ValueError("reference LM arrays: keys must be sorted unique uint64 with one logp and logbow each")
        frequent = np.asarray(arrays["lm_frequent"])
        if frequent.dtype != np.uint32 or np.any(frequent[1:] <= frequent[:-1]):
            raise ValueError("reference LM arrays: lm_frequent must be sorted unique uint32 code points")
        return cls(int(meta["order"]), keys, logp.astype(np.float32), logbow.astype(np.float32),
                   float(meta["unk_logp"]), int(meta["vocab"]), int(meta["trained_chars"]), frequent)

    def digest_update(self, h: hashlib._Hash) -> None:
        """Feed the model's numbers and arrays into a running sha256."""
        h.update(json.dumps(self.to_dict(), sort_keys=True).encode())
        for array in (self.keys.astype("<u8"), self.logp.astype("<f4"), self.logbow.astype("<f4"), self.frequent.astype("<u4")):
            h.update(np.ascontiguousarray(array).tobytes())


def read_reference(path: Path) -> list[str]:
    """Return the paragraphs of a reference text file (UTF-8, one paragraph a line, gzip when it ends in .gz)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]
