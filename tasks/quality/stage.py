"""The quality stage as steps: score each document with the classifier, then route it by its tier.

Score, then decide: ``QualityScorer`` adds ``quality_score`` (0-1), ``quality_tier``, ``quality_model``
(the model's version and digest), ``ppl_ref`` (the reference LM's per-character perplexity) and ``ppl_bucket``
(CCNet's head / middle / tail by the configured perplexity cut-offs) to every document; ``QualityRouter`` then
rejects a document above ``max_ppl_ref`` when that threshold is on, and otherwise looks up the tier's action
in the config — keep, strict (re-check the clean stage's stored ``signals`` against stricter thresholds) or
reject — so re-routing is a config change, and re-tuning the cut-offs needs no new model.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal, get_args

from tasks.clean.config import SPAM_CATEGORIES
from tasks.quality.config import QualityConfig, StrictConfig
from tasks.quality.model import QualityModel, tier_of
from tasks.records import Doc, Reject
from tasks.steps import Step

STAGE = "quality"

QualityReason = Literal[
    "quality",  # the tier's action is reject (detail: score and tier)
    "quality_ppl",  # ppl_ref above max_ppl_ref (detail: the perplexity and the limit)
    "quality_strict_spam_hits",  # strict: spam-category keyword hits above strict.max_spam_hits
    "quality_strict_spam_contact",  # strict: contact calls above strict.max_spam_contact
    "quality_strict_chatter_ratio",  # strict: chatter above strict.max_chatter_ratio
    "quality_strict_n_chars",  # strict: fewer characters than strict.min_chars
    "quality_strict_dup_line_char_ratio",  # strict: repeated lines above strict.max_dup_line_char_ratio
    "quality_strict_dup_sentence_char_ratio",  # strict: repeated sentences above strict.max_dup_sentence_char_ratio
    "quality_strict_top_2gram_ratio",  # strict: the top word 2-gram above strict.max_top_2gram_ratio
    "quality_strict_symbol_ratio",  # strict: digits and symbols above strict.max_symbol_ratio
    "quality_strict_stopword_ratio",  # strict: stop words below strict.min_stopword_ratio
    "quality_strict_char_entropy",  # strict: character entropy below strict.min_char_entropy
]
QUALITY_REASONS: tuple[str, ...] = get_args(QualityReason)
SCORE, TIER, MODEL = "quality_score", "quality_tier", "quality_model"  # the columns this stage adds
PPL, PPL_BUCKET = "ppl_ref", "ppl_bucket"
PplBucket = Literal["head", "middle", "tail"]


def ppl_bucket(ppl: float, head_max: float, tail_min: float) -> PplBucket:
    """Return CCNet's bucket of a perplexity: head at or below head_max, tail above tail_min, else middle.

    >>> ppl_bucket(40.0, 60.0, 150.0), ppl_bucket(90.0, 60.0, 150.0), ppl_bucket(400.0, 60.0, 150.0)
    ('head', 'middle', 'tail')
    """
    if ppl <= head_max:
        return "head"
    return "tail" if ppl > tail_min else "middle"


@dataclass
class QualityScorer:
    """Batch step: add quality_score, quality_tier, quality_model, ppl_ref and ppl_bucket to each document,
    ``batch_size`` at a time."""

    model: QualityModel
    high_cutoff: float = 0.65
    low_cutoff: float = 0.3
    batch_size: int = 1024
    ppl_head_max: float = 60.0
    ppl_tail_min: float = 150.0
    name: str = "score_quality"

    def __call__(self, docs: list[Doc]) -> list[Doc]:
        out: list[Doc] = []
        tag = self.model.tag
        for start in range(0, len(docs), self.batch_size):
            batch = docs[start : start + self.batch_size]
            texts = [d.get("text") if isinstance(d.get("text"), str) else "" for d in batch]
            scores, perplexities = self.model.scores_and_perplexities(texts)
            for doc, score, ppl in zip(batch, scores, perplexities):
                score, ppl = round(float(score), 6), round(float(ppl), 3)
                tier = tier_of(score, self.high_cutoff, self.low_cutoff)
                bucket = ppl_bucket(ppl, self.ppl_head_max, self.ppl_tail_min)
                out.append({**doc, SCORE: score, TIER: tier, MODEL: tag, PPL: ppl, PPL_BUCKET: bucket})
        return out

    def tally(self, results: list[Doc]) -> dict[str, int]:
        """Return documents per tier (``tier.high``) and per source and tier (``source.news.high``)."""
        counts: Counter[str] = Counter()
        for doc in results:
            counts[f"tier.{doc[TIER]}"] += 1
            counts[f"source.{doc.get('source') or 'unknown'}.{doc[TIER]}"] += 1
            counts[f"ppl.{doc[PPL_BUCKET]}"] += 1
        return dict(counts)


def strict_checks(strict: StrictConfig) -> list[tuple[str, Literal["min", "max"], float]]:
    """Return the strict checks in order, most telling first: (signal, min or max, limit)."""
    return [
        ("spam_hits", "max", strict.max_spam_hits),
        ("spam_contact", "max", strict.max_spam_contact),
        ("chatter_ratio", "max", strict.max_chatter_ratio),
        ("n_chars", "min", strict.min_chars),
        ("dup_line_char_ratio", "max", strict.max_dup_line_char_ratio),
        ("dup_sentence_char_ratio", "max", strict.max_dup_sentence_char_ratio),
        ("top_2gram_ratio", "max", strict.max_top_2gram_ratio),
        ("symbol_ratio", "max", strict.max_symbol_ratio),
        ("stopword_ratio", "min", strict.min_stopword_ratio),
        ("char_entropy", "min", strict.min_char_entropy),
    ]


def strict_reason(signals: dict, strict: StrictConfig) -> Reject | None:
    """Return the first strict threshold a document's stored signals fail, as a Reject, or None when all pass."""
    values = {**signals, "spam_hits": sum(signals.get(f"spam_{c}", 0) for c in SPAM_CATEGORIES)}
    for signal, kind, limit in strict_checks(strict):
        value = values[signal]
        if (kind == "min" and value < limit) or (kind == "max" and value > limit):
            return Reject(f"quality_strict_{signal}", f"{signal} {value} {'<' if kind == 'min' else '>'} {limit}")
    return None


@dataclass
class QualityRouter:
    """Batch step: keep, strictly re-check or reject each scored document as its tier's action says."""

    cfg: QualityConfig
    name: str = "route_quality"

    def __call__(self, docs: list[Doc]) -> list[Doc | Reject]:
        return [self.route(doc) for doc in docs]

    def route(self, doc: Doc) -> Doc | Reject:
        """Return the document, or why it leaves: ``quality_ppl``, ``quality`` or ``quality_strict_<signal>``."""
        if self.cfg.max_ppl_ref and doc[PPL] > self.cfg.max_ppl_ref:
            return Reject("quality_ppl", f"ppl_ref {doc[PPL]} > {self.cfg.max_ppl_ref}")
        tier = doc[TIER]
        action = self.cfg.action(tier)
        if action == "reject":
            return Reject("quality", f"score {doc[SCORE]} tier {tier}")
        if action == "strict":
            signals = doc.get("signals")
            if not signals:
                # strict decides on the clean stage's stored signals; without them there is nothing to be strict
                # about, and dropping would hide the misconfiguration: it is counted instead (strict_unchecked)
                return doc
            return strict_reason(signals, self.cfg.strict) or doc
        return doc

    def tally(self, results: list[Doc | Reject]) -> dict[str, int]:
        """Return documents that took the strict path without signals to check (``strict_unchecked``)."""
        n = sum(
            1 for r in results if not isinstance(r, Reject) and self.cfg.action(r[TIER]) == "strict" and not r.get("signals")
        )
        return {"strict_unchecked": n} if n else {}


def build_steps(cfg: QualityConfig, model: QualityModel) -> list[Step]:
    """Return the quality stage's steps, in order; the model (and its jieba segmenter) is built once by the caller."""
    scorer = QualityScorer(model, cfg.high_cutoff, cfg.low_cutoff, cfg.batch_size, cfg.ppl_head_max, cfg.ppl_tail_min)
    return [scorer, QualityRouter(cfg)]
