"""Quality: a linear classifier over hashed jieba words and character n-grams scores each document 0-1, puts it in
a tier (high / medium / low), and the config routes each tier: keep, strict re-check, or reject."""

from tasks.quality.config import LABELS, AnnotatorConfig, QualityConfig, QualityLabel, StrictConfig, TierAction
from tasks.quality.features import Featurizer, FeatureSettings
from tasks.quality.labels import LabelError, read_labelled, weak_labels
from tasks.quality.model import MODEL_VERSION, ModelError, QualityModel, fit_model, quality_scores, tier_of
from tasks.quality.stage import QUALITY_REASONS, QualityReason, QualityRouter, QualityScorer, build_steps, strict_reason
from tasks.quality.train import TrainResult, collect_examples, evaluate, train_classifier

__all__ = [
    "LABELS",
    "MODEL_VERSION",
    "QUALITY_REASONS",
    "AnnotatorConfig",
    "FeatureSettings",
    "Featurizer",
    "LabelError",
    "ModelError",
    "QualityConfig",
    "QualityLabel",
    "QualityModel",
    "QualityReason",
    "QualityRouter",
    "QualityScorer",
    "StrictConfig",
    "TierAction",
    "TrainResult",
    "build_steps",
    "collect_examples",
    "evaluate",
    "fit_model",
    "quality_scores",
    "read_labelled",
    "strict_reason",
    "tier_of",
    "train_classifier",
    "weak_labels",
]
