"""The OCR stage as a step: PDF and image records get their text; every other record passes unchanged.

Shape: ``OcrReader(cfg, warc_dir)`` is the step. It is a small callable object because it holds the
two things a pure function cannot: the OCR engine (built once, lazily, when the first page needs it,
so a shard of HTML pages or text-layer PDFs never loads a model) and the folder where the crawl keeps
the bytes (``<run>/crawl/warc``). Records name their bytes by ``meta.warc_file``/``meta.warc_offset``
(crawled) or ``meta.path`` (a user's own files, ``liandan step ocr``); with neither, or with a WARC
reference and no folder, the record is rejected as ``missing_bytes``.

A PDF page with a usable text layer is read from it (exact, instant); a page without one is rendered
and OCR'd; an image is OCR'd. Boxes below ``min_line_confidence`` are dropped and counted; lines are
put in reading order and joined for Chinese (``layout.py``); running headers, footers and page numbers
of multi-page PDFs go. The record's ``meta.ocr`` says how its text was made.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from tasks.ocr.config import OcrConfig
from tasks.ocr.engine import OcrEngine, OcrEngineUnavailable, build_engine
from tasks.ocr.files import UnreadableFile, load_bytes, sniff_format, wants_ocr
from tasks.ocr.image import decode_image, strips
from tasks.ocr.layout import Box, Line, order_lines, paragraphs, strip_repeated_edges
from tasks.ocr.pdf import read_pages
from tasks.records import Doc, Reject
from tasks.steps import Step

OcrReason = Literal[
    "missing_bytes",  # no meta.path and no WARC reference, or the file / WARC record could not be read
    "empty_file",  # the file has zero bytes
    "file_too_large",  # more than cfg.max_file_bytes
    "unsupported_format",  # neither a PDF nor an image Pillow decodes (SVG, an HTML error page served as image/*)
    "corrupt_file",  # a PDF PDFium cannot open, a truncated or broken image
    "encrypted_pdf",  # the PDF needs a password to open
    "image_too_large",  # the header's width x height is above cfg.max_image_pixels
    "too_many_pages",  # the PDF has more than cfg.max_pages pages
    "ocr_failed",  # the engine raised on this file (the detail holds the error); the shard goes on
    "no_text",  # fewer than cfg.min_chars characters were found
]
OCR_REASONS: tuple[str, ...] = get_args(OcrReason)

log = logging.getLogger(__name__)

OCR_VERSION = "ocr_v1"  # stored in meta.ocr.version: bump when the text a file gives changes


@dataclass(frozen=True)
class OcrResult:
    """The text of one file and how it was made."""

    text: str
    format: Literal["pdf", "image"]
    pages: int
    ocr_pages: int  # pages (or images) that went through the OCR engine
    text_layer_pages: int  # PDF pages read from their text layer
    mean_confidence: float  # over the kept lines, weighted by characters; 1.0 for a text layer
    low_confidence_lines: int  # detected lines dropped below cfg.min_line_confidence
    header_footer_lines: int  # repeated header/footer and page-number lines removed


class OcrReader:
    """Batch step: replace each PDF or image record's empty text with the text read from its file, or reject it.

    Args:
        warc_dir: the crawl stage's WARC folder; None when records name local files only.
        engine: an engine already built with the same settings, to share (tests, benchmarks); None builds
            one from ``cfg`` when the first page needs it.
    """

    name = "ocr"

    def __init__(self, cfg: OcrConfig, warc_dir: Path | None = None, engine: OcrEngine | None = None):
        self.cfg = cfg
        self.warc_dir = Path(warc_dir) if warc_dir else None
        self._engine = engine

    def __call__(self, docs: list[Doc]) -> list[Doc | Reject]:
        return [self.read(doc) if wants_ocr(doc) else doc for doc in docs]

    @property
    def engine(self) -> OcrEngine:
        """The OCR engine, built on first use (raises OcrEngineUnavailable: a setup error stops the shard)."""
        if self._engine is None:
            self._engine = build_engine(self.cfg)
        return self._engine

    def read(self, doc: Doc) -> Doc | Reject:
        """Return the record with its text and ``meta.ocr``, or the reason it leaves the stage."""
        meta = dict(doc.get("meta") or {})
        try:
            data = load_bytes(doc, self.warc_dir, self.cfg.max_file_bytes)
            if not data:
                return Reject("empty_file", "0 bytes")
            result = self.read_bytes(data, declared=meta.get("kind"))
        except UnreadableFile as e:
            return Reject(e.reason, e.detail)
        except OcrEngineUnavailable:
            raise
        except Exception as e:  # a file that trips PDFium, Pillow or the engine in a way not foreseen above
            # the traceback goes to the log: a bug here would otherwise look like a run of bad files
            log.warning("ocr_failed on %s", doc.get("url") or doc.get("id"), exc_info=True)
            return Reject("ocr_failed", f"{type(e).__name__}: {e}")
        chars = sum(1 for c in result.text if not c.isspace())
        if chars < self.cfg.min_chars:
            return Reject("no_text", f"{chars} chars < {self.cfg.min_chars} ({result.pages} pages, {result.ocr_pages} OCR'd)")
        meta["ocr"] = {
            "version": OCR_VERSION,
            "engine": self.cfg.engine if result.ocr_pages else "text_layer",
            "format": result.format,
            "pages": result.pages,
            "ocr_pages": result.ocr_pages,
            "text_layer": result.text_layer_pages > 0,
            "mean_confidence": round(result.mean_confidence, 4),
            "low_confidence_lines": result.low_confidence_lines,
            "header_footer_lines": result.header_footer_lines,
        }
        return {**doc, "text": result.text, "meta": meta}

    def read_bytes(self, data: bytes, declared: str | None = None) -> OcrResult:
        """Return the text of a PDF or image file; raise UnreadableFile.

        Args:
            declared: the record's meta.kind; bytes that are not a PDF under a "pdf" kind are a corrupt PDF.
        """
        fmt = sniff_format(data)
        if fmt == "pdf":
            return self._read_pdf(data)
        if fmt is None and declared == "pdf":
            raise UnreadableFile("corrupt_file", f"declared a PDF, but the bytes start {data[:16]!r}")
        image = decode_image(data, self.cfg.max_image_pixels)
        boxes, dropped = self.recognise(image)
        lines = order_lines(boxes)
        return OcrResult(
            text="\n".join(paragraphs(lines)),
            format="image",
            pages=1,
            ocr_pages=1,
            text_layer_pages=0,
            mean_confidence=_mean_confidence(lines),
            low_confidence_lines=dropped,
            header_footer_lines=0,
        )

    def recognise(self, image: np.ndarray) -> tuple[list[Box], int]:
        """Return the confident text boxes of an image (long images strip by strip) and how many were dropped."""
        boxes: list[Box] = []
        for top, strip in strips(image, self.cfg.long_image_aspect):
            for box in self.engine.read(strip):
                boxes.append(Box(box.text, box.confidence, box.x0, box.y0 + top, box.x1, box.y1 + top))
        kept = [b for b in boxes if b.confidence >= self.cfg.min_line_confidence and b.text.strip()]
        return kept, sum(1 for b in boxes if b.confidence < self.cfg.min_line_confidence)

    def _read_pdf(self, data: bytes) -> OcrResult:
        cfg = self.cfg
        pages: list[list[Line]] = []
        ocr_pages = text_layer_pages = dropped = 0
        reading = read_pages(
            data, cfg.render_dpi, cfg.max_image_pixels, cfg.max_pages, cfg.min_text_layer_chars, cfg.max_text_layer_garbage
        )
        with closing(reading):  # closed here, even on an error: never by the garbage collector in another thread
            for page in reading:
                if page.image is not None:
                    boxes, n_dropped = self.recognise(page.image)
                    ocr_pages += 1
                    dropped += n_dropped
                else:
                    boxes = page.boxes
                    text_layer_pages += 1
                pages.append(order_lines(boxes))
        removed = 0
        if cfg.strip_headers_footers:
            pages, removed = strip_repeated_edges(pages, cfg.edge_lines, cfg.min_repeat_share)
        return OcrResult(
            text="\n".join(p for page in pages for p in paragraphs(page)),
            format="pdf",
            pages=len(pages),
            ocr_pages=ocr_pages,
            text_layer_pages=text_layer_pages,
            mean_confidence=_mean_confidence([line for page in pages for line in page]),
            low_confidence_lines=dropped,
            header_footer_lines=removed,
        )

    def tally(self, results: list[Doc | Reject]) -> dict[str, int]:
        """Return the stage's counters over one batch's results: files and pages read, lines dropped."""
        counts: Counter[str] = Counter()
        for result in results:
            if isinstance(result, Reject):
                continue
            ocr = (result.get("meta") or {}).get("ocr")
            if not wants_ocr(result) or not isinstance(ocr, dict):
                counts["passed_through"] += 1
                continue
            counts[f"{ocr['format']}_files"] += 1
            counts["pages"] += ocr["pages"]
            counts["ocr_pages"] += ocr["ocr_pages"]
            counts["text_layer_pages"] += ocr["pages"] - ocr["ocr_pages"]
            counts["low_confidence_lines"] += ocr["low_confidence_lines"]
            counts["header_footer_lines"] += ocr["header_footer_lines"]
        return dict(counts)


def _mean_confidence(lines: list[Line]) -> float:
    weights = [max(len(line.text), 1) for line in lines]
    if not lines:
        return 0.0
    return statistics.fmean([line.confidence for line in lines], weights=weights)


def build_steps(cfg: OcrConfig, warc_dir: Path | None = None) -> list[Step]:
    """Return the OCR stage's steps, in order.

    Args:
        warc_dir: the crawl stage's WARC folder (``<run>/crawl/warc``); None for records with ``meta.path`` only.
    """
    return [OcrReader(cfg, warc_dir)]
