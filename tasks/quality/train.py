"""Training the quality classifier: fit the reference LM, gather labelled examples, hold some out (stratified),
fit, measure.

The held-out metrics are accuracy, macro-F1, F1 per label and the confusion matrix (rows: true label,
columns: predicted, LABELS order). Unless ``refit_on_all`` is set, the model returned is exactly the one
those metrics measure.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.quality.config import LABELS, QualityConfig, resolve_path
from tasks.quality.evidence import (
    boilerplate_examples,
    corrupted_examples,
    held_for_labels,
    reference_examples,
    split_reference,
)
from tasks.quality.features import Featurizer, FeatureSettings
from tasks.quality.labels import Example, kept_texts, read_labelled, weak_labels
from tasks.quality.lm import CharLM, read_reference
from tasks.quality.model import MODEL_VERSION, QualityModel, fit_model, quality_scores


def trusted_sources(cfg: QualityConfig) -> list[str]:
    """Return the sources whose kept documents are trusted high-quality text (weak_source_labels says high)."""
    return sorted(s for s, label in cfg.weak_source_labels.items() if label == "high")


def reference_lm_texts(cfg: QualityConfig, weak_dirs: Iterable[Path] = ()) -> list[str]:
    """Return what the reference LM is trained on: the reference paragraphs and the trusted sources' kept documents,
    less the share held out for labels."""
    lm_part, _ = split_reference(read_reference(resolve_path(cfg.reference_path)), cfg.reference_label_share)
    # articles of 4 paragraphs, so the LM learns paragraph breaks as documents have them
    articles = ["\n".join(lm_part[i : i + 4]) for i in range(0, len(lm_part), 4)]
    trusted = kept_texts(weak_dirs, trusted_sources(cfg), cfg.min_chars) if cfg.weak_labels else []
    return articles + [t for t in trusted if not held_for_labels(t, cfg.reference_label_share)]


def fit_reference_lm(cfg: QualityConfig, weak_dirs: Iterable[Path] = ()) -> CharLM:
    """Return the reference character LM fitted on ``reference_lm_texts``."""
    return CharLM.fit(reference_lm_texts(cfg, weak_dirs), cfg.reference_order)


def collect_examples(cfg: QualityConfig, weak_dirs: Iterable[Path] = (), extra: Iterable[Example] = ()) -> list[Example]:
    """Return the training examples: seed set, label files, weak labels (if on), held-out reference articles,
    boilerplate blocks, corruptions of the high ones, then ``extra``; a text's first copy wins."""
    weak_dirs = list(weak_dirs)
    examples = read_labelled(resolve_path(cfg.seed_path))
    for path in cfg.label_paths:
        examples += read_labelled(resolve_path(path))
    if cfg.weak_labels:
        trusted = set(trusted_sources(cfg))
        weak = weak_labels(
            weak_dirs, cfg.weak_low_reasons, cfg.weak_source_labels, cfg.weak_max_per_label, cfg.seed, cfg.min_chars
        )
        # a trusted document the LM was trained on would teach the classifier that news is more fluent than it is
        examples += [ex for ex in weak if ex.get("source") not in trusted or held_for_labels(ex["text"], cfg.reference_label_share)]
    _, held = split_reference(read_reference(resolve_path(cfg.reference_path)), cfg.reference_label_share)
    examples += reference_examples(held, cfg.reference_max_examples, cfg.seed, cfg.min_chars)
    examples += boilerplate_examples([resolve_path(p) for p in cfg.boilerplate_paths], cfg.boilerplate_max, cfg.seed, cfg.min_chars)
    extra = list(extra)
    if cfg.corruptions:
        from tasks.clean.segment import Segmenter

        segment = Segmenter("auto", hmm=True)
        positives = [ex for ex in examples + extra if ex["label"] == "high"]
        words = lambda text: [t for t in segment(text) if not t.isspace()]  # noqa: E731
        examples += corrupted_examples(
            positives, words, cfg.corruptions_per_kind, cfg.seed, cfg.min_chars, cfg.corruption_kinds
        )
    examples += extra
    seen: set[str] = set()
    out = []
    for ex in examples:
        if len(ex["text"]) >= cfg.min_chars and ex["text"] not in seen:  # hand labels come first and win over weak ones
            seen.add(ex["text"])
            out.append(ex)
    return out


def origin_weights(examples: list[Example]) -> np.ndarray:
    """Return a weight per example so that, within each label, every origin weighs the same in all and the label's
    weights still sum to its count: 400 reference articles do not outvote 71 hand-labelled rows, nor 200 corruptions
    the 74 hand-labelled spam rows.

    >>> origin_weights([{"label": "low", "origin": "a"}] * 3 + [{"label": "low", "origin": "b"}]).tolist()
    [0.6666666666666666, 0.6666666666666666, 0.6666666666666666, 2.0]
    """
    pairs = Counter((ex["label"], ex["origin"]) for ex in examples)
    labels = Counter(ex["label"] for ex in examples)
    origins = Counter(label for label, _ in pairs)
    return np.array([labels[ex["label"]] / (origins[ex["label"]] * pairs[ex["label"], ex["origin"]]) for ex in examples])


def split_examples(examples: list[Example], test_fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Return (train, test), stratified by label and seeded."""
    from sklearn.model_selection import train_test_split

    counts = Counter(ex["label"] for ex in examples)
    short = {label: counts[label] for label in LABELS if counts[label] < 2}
    if short:
        raise ValueError(f"every label needs at least 2 examples to hold one out; have {dict(counts)}")
    train, test = train_test_split(
        examples, test_size=test_fraction, random_state=seed, stratify=[ex["label"] for ex in examples]
    )
    return list(train), list(test)


def evaluate(y_true: list[str], y_pred: list[str]) -> dict:
    """Return accuracy, macro-F1, F1 per label and the confusion matrix (true × predicted, LABELS order)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    per_label = f1_score(y_true, y_pred, labels=list(LABELS), average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(np.mean(per_label)),
        **{f"f1_{label}": float(f) for label, f in zip(LABELS, per_label)},
        "confusion": confusion_matrix(y_true, y_pred, labels=list(LABELS)).tolist(),
    }


@dataclass
class TrainResult:
    """A fitted model and what was measured on the held-out examples."""

    model: QualityModel
    summary: dict  # JSON-able: counts, metrics, confusion matrix, timings, model version and digest
    held_out: list[dict]  # per held-out example: label, predicted, score, origin (no text)


def train_classifier(examples: list[Example], cfg: QualityConfig, lm: CharLM | None = None) -> TrainResult:
    """Return the classifier fitted on a stratified share of ``examples`` and its held-out evaluation.

    Args:
        lm: the reference LM; None fits it on the reference text alone (``fit_reference_lm(cfg)``).
    """
    settings = FeatureSettings.from_config(cfg)
    train, test = split_examples(examples, cfg.test_fraction, cfg.seed)
    t0 = time.perf_counter()
    lm = lm if lm is not None else fit_reference_lm(cfg)
    lm_s = time.perf_counter() - t0
    featurizer = Featurizer(settings, lm)
    t0 = time.perf_counter()
    x_train = featurizer([ex["text"] for ex in train])
    x_test = featurizer([ex["text"] for ex in test])
    featurize_s = time.perf_counter() - t0
    fit = {"C": cfg.C, "max_iter": cfg.max_iter, "balanced": cfg.class_weight == "balanced"}
    weigh = origin_weights if cfg.balance_origins else lambda rows: None
    t0 = time.perf_counter()
    model = fit_model(x_train, [ex["label"] for ex in train], settings, lm, **fit, sample_weight=weigh(train))
    fit_s = time.perf_counter() - t0
    proba = model.probabilities_of(x_test)
    predicted = [LABELS[i] for i in proba.argmax(axis=1)]
    scores = quality_scores(proba)
    metrics = evaluate([ex["label"] for ex in test], predicted)
    if cfg.refit_on_all:
        x_all = featurizer([ex["text"] for ex in examples])
        model = fit_model(x_all, [ex["label"] for ex in examples], settings, lm, **fit, sample_weight=weigh(examples))
    model._featurizer = featurizer  # already built: spare the caller a second jieba load
    confusion = metrics.pop("confusion")
    summary = {
        "model_version": MODEL_VERSION,
        "n_examples": len(examples),
        "n_train": len(train),
        "n_test": len(test),
        "labels": dict(Counter(ex["label"] for ex in examples)),
        "origins": dict(Counter(ex["origin"] for ex in examples)),
        "label_sources": {
            origin: dict(Counter(ex["label"] for ex in examples if ex["origin"] == origin))
            for origin in sorted({ex["origin"] for ex in examples})
        },
        "metrics": {
            **metrics,
            "reference_lm_seconds": round(lm_s, 4),
            "featurize_seconds": round(featurize_s, 4),
            "fit_seconds": round(fit_s, 4),
        },
        "reference_lm": lm.to_dict() | {"keys": int(len(lm.keys))},
        "confusion": confusion,
        "confusion_labels": list(LABELS),
        "refit_on_all": cfg.refit_on_all,
        "features": settings.to_dict(),
        "nonzero_weight_rows": int(np.diff(model.weights.indptr).astype(bool).sum()),
    }
    provenance = ("n_examples", "n_train", "n_test", "labels", "origins", "label_sources", "metrics", "confusion", "refit_on_all")
    model.trained = {k: summary[k] for k in provenance}
    summary["model_digest"] = model.digest
    summary["model_tag"] = model.tag
    held_out = [
        {"label": ex["label"], "predicted": p, "score": round(float(s), 6), "origin": ex["origin"]}
        for ex, p, s in zip(test, predicted, scores)
    ]
    return TrainResult(model, summary, held_out)
