"""OCR: PDFs and images to text — the PDF text layer where usable, PP-OCR (RapidOCR on onnxruntime) on the rest."""

from tasks.ocr.config import OcrConfig
from tasks.ocr.engine import OcrEngine, OcrEngineUnavailable, build_engine
from tasks.ocr.layout import (
    Box,
    Line,
    group_lines,
    order_lines,
    paragraphs,
    split_columns,
    strip_repeated_edges,
)
from tasks.ocr.stage import (
    OCR_REASONS,
    OCR_VERSION,
    OcrReader,
    OcrReason,
    OcrResult,
    build_steps,
)

__all__ = [
    "OCR_REASONS",
    "OCR_VERSION",
    "Box",
    "Line",
    "OcrConfig",
    "OcrEngine",
    "OcrEngineUnavailable",
    "OcrReader",
    "OcrReason",
    "OcrResult",
    "build_engine",
    "build_steps",
    "group_lines",
    "order_lines",
    "paragraphs",
    "split_columns",
    "strip_repeated_edges",
]
