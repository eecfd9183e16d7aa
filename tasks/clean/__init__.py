"""Clean: normalise Chinese text, remove noise and ad lines, score each document, filter on the scores."""

from tasks.clean.config import CleanConfig
from tasks.clean.segment import Segmenter
from tasks.clean.signals import SIGNALS_VERSION
from tasks.clean.stage import CLEAN_REASONS, CleanReason, build_steps

__all__ = ["CLEAN_REASONS", "SIGNALS_VERSION", "CleanConfig", "CleanReason", "Segmenter", "build_steps"]
