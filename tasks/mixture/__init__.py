"""Mixture: per-source weights (static, temperature, DoReMi) and sampling to a character or token budget.

Light on import: DoReMi (``tasks.mixture.doremi``, torch and transformers) is imported only in its mode,
the charts (``tasks.mixture.report``) only where they are drawn, the Prefect tasks from ``tasks.mixture.task``.
"""

from tasks.mixture.config import DoremiConfig, MixtureConfig
from tasks.mixture.plan import PLAN_FILE, DocColumns, MixturePlan, document_copies, plan_copies, plan_mixture, plan_records, rank_keys, read_shard_plan
from tasks.mixture.stage import MIXTURE_REASONS, STAGE, BatchMixer, MixtureFilter, MixtureReason, build_steps, mix_records
from tasks.mixture.weights import normalise, source_targets, static_weights, temperature_weights, uniform_weights

__all__ = [
    "MIXTURE_REASONS",
    "PLAN_FILE",
    "STAGE",
    "BatchMixer",
    "DocColumns",
    "DoremiConfig",
    "MixtureConfig",
    "MixtureFilter",
    "MixturePlan",
    "MixtureReason",
    "build_steps",
    "document_copies",
    "mix_records",
    "normalise",
    "plan_copies",
    "plan_mixture",
    "plan_records",
    "rank_keys",
    "read_shard_plan",
    "source_targets",
    "static_weights",
    "temperature_weights",
    "uniform_weights",
]
