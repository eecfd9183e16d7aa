"""The extract stage as steps: HTML records become their main text; PDFs and images pass through for OCR."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from tasks.extract.config import ExtractConfig
from tasks.extract.html import EXTRACTOR_VERSION, extract_main_text
from tasks.records import Doc, Reject
from tasks.steps import Step

ExtractReason = Literal[
    "too_short",  # the main text has fewer than cfg.min_chars characters
    "parse_error",  # the HTML could not be parsed or decoded
    "empty_html",  # the record's text is blank
]
EXTRACT_REASONS: tuple[str, ...] = get_args(ExtractReason)

_HTML_START = re.compile(r"<(!doctype\s+html|html|head|body|meta|title|div|p|br|span|table|article|a\s)\b", re.I)


def is_html_doc(doc: Doc) -> bool:
    """Return whether a record is an HTML page: meta.kind says so, or, without a kind, its text looks like HTML."""
    kind = (doc.get("meta") or {}).get("kind")
    if kind is not None:
        return kind == "html"
    text = doc.get("text") or ""
    head = text[:2048] if isinstance(text, str) else text[:2048].decode("latin-1")
    return _HTML_START.search(head) is not None


@dataclass
class HtmlExtractor:
    """Batch step: replace each HTML record's text with its main text, or reject it; other records pass."""

    cfg: ExtractConfig
    name: str = "extract_html"

    def __call__(self, docs: list[Doc]) -> list[Doc | Reject]:
        return [self.extract(doc) if is_html_doc(doc) else doc for doc in docs]

    def extract(self, doc: Doc) -> Doc | Reject:
        """Return the record with its main text and title, or the reason it leaves the stage."""
        html = doc.get("text") or ""
        meta = dict(doc.get("meta") or {})
        if not html.strip():
            return Reject("empty_html")
        try:
            page = extract_main_text(html, self.cfg, charset=meta.get("charset"))
        except Exception as e:  # lxml/bs4 raise a zoo of types on hostile markup; the record is quarantined, not lost
            return Reject("parse_error", f"{type(e).__name__}: {e}")
        if page.chars < self.cfg.min_chars:
            return Reject("too_short", f"{page.chars} chars < {self.cfg.min_chars}")
        # html_chars: the length of the HTML as the record held it (bytes for a raw body)
        meta.update(title=page.title or meta.get("title", ""), extractor=EXTRACTOR_VERSION, html_chars=len(html))
        return {**doc, "text": page.text, "meta": meta}


def build_steps(cfg: ExtractConfig) -> list[Step]:
    """Return the extract stage's steps, in order."""
    return [HtmlExtractor(cfg)]
