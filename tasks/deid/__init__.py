"""De-identification: personal data in Chinese text becomes typed placeholders (<PHONE>, <ID_CARD>, <PERSON_1>, …)."""

from tasks.deid.config import DeidConfig, NamesPolicy, PiiPolicy
from tasks.deid.detectors import PII_TYPES, PLACEHOLDERS, PiiType, Span, find_pattern_pii, resolve_overlaps
from tasks.deid.names import NameFinder
from tasks.deid.stage import DEID_REASONS, PII_COUNTS, DeidReason, PiiMasker, build_steps, mask_sample_lines, mask_text

__all__ = [
    "DEID_REASONS",
    "PII_COUNTS",
    "PII_TYPES",
    "PLACEHOLDERS",
    "DeidConfig",
    "DeidReason",
    "NameFinder",
    "NamesPolicy",
    "PiiMasker",
    "PiiPolicy",
    "PiiType",
    "Span",
    "build_steps",
    "find_pattern_pii",
    "mask_sample_lines",
    "mask_text",
    "resolve_overlaps",
]
