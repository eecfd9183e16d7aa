"""Evaluate one model folder on every held-out set: the metrics, sample answers and notes of what was skipped.

    perplexity     ppl.<source> (the pack stage's eval split, when the model uses the pack's tokenizer), ppl.heldout
    arithmetic     arith.greedy, arith.cot, arith.self_consistency, arith.problems  (tasks/evaluate/arith.py)
    sentiment      icl.sentiment.k0, icl.sentiment.k3                              (tasks/evaluate/choice.py)
    choice         mc.accuracy, mc.questions
    generation     gen.format_rate, gen.chinese_rate

``eval_sets_digest`` names the sets and settings the metrics were measured on: two models' metrics are
comparable (the gate compares them) only under the same digest.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.evaluate.config import EvalConfig
from tasks.store import file_digest, resolve_data_path

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from tasks.train.arithmetic import Problem

EVAL_VERSION = "eval_v1"  # bump when a metric's definition changes: older digests then never match


@dataclass
class EvalResult:
    """What one evaluation measured: metrics, answer samples, what was skipped and why, and the sets' digest."""

    metrics: dict[str, float]
    samples: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    eval_digest: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"metrics": self.metrics, "samples": self.samples, "notes": self.notes, "eval_digest": self.eval_digest, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict) -> EvalResult:
        return cls(d["metrics"], d.get("samples", []), d.get("notes", []), d.get("eval_digest", ""), d.get("seconds", 0.0))


def read_texts(path: Path) -> list[str]:
    """Return the ``text`` of each JSON line (a plain-text file: its non-blank lines)."""
    lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if Path(path).suffix in (".jsonl", ".json"):
        return [json.loads(line)["text"] for line in lines]
    return lines


def eval_sets_digest(cfg: EvalConfig, problems: list[Problem], packed_digest: str) -> str:
    """Return the digest of everything a metric depends on besides the model: files, problems, settings, code version."""
    files = [cfg.heldout_path, *([cfg.sentiment_path] if cfg.sentiment_path else []), *cfg.mc_paths]
    settings = cfg.model_dump(include={"eval_sequences", "max_length", "direct_max_new_tokens", "cot_max_new_tokens", "self_consistency_k", "temperature", "top_p", "seed", "icl_shots", "mc_scoring"})
    payload = json.dumps(
        [EVAL_VERSION, [file_digest(resolve_data_path(p)) for p in files], [p.question for p in problems], settings, packed_digest], ensure_ascii=False, sort_keys=True
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def same_tokenizer(model_dir: Path, tokenizer_dir: Path) -> bool:
    """Return whether two folders hold the same ``tokenizer.json`` (so token ids mean the same in both)."""
    a, b = Path(model_dir) / "tokenizer.json", Path(tokenizer_dir) / "tokenizer.json"
    return a.exists() and b.exists() and file_digest(a) == file_digest(b)


def packed_perplexities(model: PreTrainedModel, pad_id: int, pack_dir: Path, cfg: EvalConfig) -> dict[str, float]:
    """Return ``ppl.<source>`` on the pack stage's held-out sequences (at most ``cfg.eval_sequences`` per source)."""
    import pyarrow.compute as pc

    from tasks.evaluate.likelihood import token_perplexity
    from tasks.tokenize.pack import read_packed
    from tasks.tokenize.stage import packed_sequence_shards

    table = read_packed(packed_sequence_shards(pack_dir))
    held_out = table.filter(pc.equal(table["split"], "eval"))
    out = {}
    for source in sorted(set(held_out.column("source").to_pylist())):
        rows = held_out.filter(pc.equal(held_out["source"], source)).slice(0, cfg.eval_sequences)
        ppl = token_perplexity(model, rows.column("input_ids").to_pylist(), rows.column("n_tokens").to_pylist(), pad_id, cfg.batch_size)
        out[f"ppl.{source or 'unknown'}"] = ppl.ppl
    return out


def load_model_and_tokenizer(model_dir: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Return the causal LM (loaded strictly) and its tokenizer from one HF folder."""
    from tasks.tokenize.train import load_tokenizer
    from tasks.train.model import load_model_strict

    return load_model_strict(str(model_dir)), load_tokenizer(model_dir)


def evaluate_model(model_dir: str | Path, cfg: EvalConfig, pack_dir: str | Path = "", pack_tokenizer_dir: str | Path = "", seen_questions: frozenset[str] = frozenset()) -> EvalResult:
    """Return every metric of the model in ``model_dir``.

    Args:
        pack_dir: the run's pack stage; its held-out split gives ``ppl.<source>`` when ``pack_tokenizer_dir``
            (the tokenizer it encoded with) is the model's own tokenizer.
        seen_questions: questions a training stage saw; any held-out problem among them is dropped.
    """
    from tasks.evaluate.arith import arithmetic_metrics, held_out_problems
    from tasks.evaluate.choice import mc_accuracy, read_questions, read_reviews, sentiment_accuracy
    from tasks.evaluate.likelihood import pad_id_of, set_threads, text_perplexity

    started = time.perf_counter()
    model, tokenizer = load_model_and_tokenizer(model_dir)
    problems, dropped = held_out_problems(cfg, set(seen_questions))
    notes = [f"arith: {dropped} held-out problems dropped because a training stage sees them"] if dropped else []
    metrics: dict[str, float] = {}
    samples: list[dict] = []
    packed_digest = ""
    threads = set_threads(cfg.cpu_threads)
    try:
        if pack_dir and cfg.eval_sequences:
            if same_tokenizer(Path(model_dir), Path(pack_tokenizer_dir)):
                from tasks.tokenize.stage import packed_sequence_shards, shards_digest

                packed_digest = shards_digest(packed_sequence_shards(pack_dir))
                metrics |= packed_perplexities(model, pad_id_of(tokenizer), Path(pack_dir), cfg)
            else:
                notes.append("ppl.<source> skipped: the model's tokenizer is not the one the pack stage encoded with")
        metrics["ppl.heldout"] = text_perplexity(model, tokenizer, read_texts(resolve_data_path(cfg.heldout_path)), cfg.max_length, cfg.batch_size).ppl
        if cfg.sentiment_path:
            reviews = read_reviews(resolve_data_path(cfg.sentiment_path))
            for k in cfg.icl_shots:
                metrics[f"icl.sentiment.k{k}"] = sentiment_accuracy(model, tokenizer, reviews, k, cfg.batch_size, cfg.max_length)
        questions = [q for p in cfg.mc_paths for q in read_questions(resolve_data_path(p))]
        if questions:
            metrics["mc.accuracy"] = mc_accuracy(model, tokenizer, questions, cfg.mc_scoring, cfg.batch_size, cfg.max_length)
            metrics["mc.questions"] = float(len(questions))
        arith, samples = arithmetic_metrics(model, tokenizer, problems, cfg)
        metrics |= arith
    finally:
        set_threads(threads)
    return EvalResult(metrics, samples, notes, eval_sets_digest(cfg, problems, packed_digest), time.perf_counter() - started)
