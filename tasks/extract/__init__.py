"""Extract: the main text and title of each crawled HTML page; PDFs and images pass through to OCR."""

from tasks.extract.config import ExtractConfig
from tasks.extract.html import EXTRACTOR_VERSION, Extracted, extract_main_text
from tasks.extract.stage import EXTRACT_REASONS, ExtractReason, HtmlExtractor, build_steps, is_html_doc

__all__ = [
    "EXTRACTOR_VERSION",
    "EXTRACT_REASONS",
    "ExtractConfig",
    "ExtractReason",
    "Extracted",
    "HtmlExtractor",
    "build_steps",
    "extract_main_text",
    "is_html_doc",
]
