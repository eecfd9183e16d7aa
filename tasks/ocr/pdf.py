"""PDF pages as text boxes from the text layer, or as rendered images where the layer is not usable.

pypdfium2 (PDFium, Chrome's PDF engine) reads both. PDFium is not thread-safe: no two threads may
call it at the same time, not even on different documents (pypdfium2's documentation), and Prefect's
default task runner is a thread pool. Every PDFium call below runs under ``PDFIUM_LOCK``, one lock
for the process because PDFium's state is process-wide; the slow part, OCR of a rendered page,
runs outside it. Objects are closed explicitly under the lock, never left to a finaliser that could
run in another thread mid-call.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw

from tasks.ocr.files import UnreadableFile
from tasks.ocr.layout import Box

# Re-entrant: a thread that already holds it (closing a document from a ``finally``) must not deadlock.
PDFIUM_LOCK = threading.RLock()

POINTS_PER_INCH = 72.0


@dataclass
class PdfPage:
    """One page: its text-layer boxes when the layer is usable, else the page rendered for OCR."""

    number: int  # 1-based
    boxes: list[Box]  # in points, y growing downwards; empty when ``image`` is set
    image: np.ndarray | None  # H x W x 3 BGR


def text_layer_usable(text: str, min_chars: int, max_garbage: float) -> bool:
    """Return whether a page's text layer holds enough real characters to stand for the page.

    Garbage is what fonts without a Unicode map extract as: U+FFFD, private-use code points and
    control characters.
    """
    chars = [c for c in text if not c.isspace()]
    if len(chars) < max(min_chars, 1):
        return False
    garbage = sum(1 for c in chars if c == "\ufffd" or "\ue000" <= c <= "\uf8ff" or ord(c) < 32)
    return garbage / len(chars) <= max_garbage


def open_pdf(data: bytes) -> pdfium.PdfDocument:
    """Return the opened document (call under PDFIUM_LOCK); raise UnreadableFile for encrypted or corrupt files."""
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        if e.err_code in (pdfium_raw.FPDF_ERR_PASSWORD, pdfium_raw.FPDF_ERR_SECURITY):
            raise UnreadableFile("encrypted_pdf", str(e)) from e
        raise UnreadableFile("corrupt_file", str(e)) from e


def read_pages(
    data: bytes, dpi: int, max_pixels: int, max_pages: int, min_text_layer_chars: int, max_text_layer_garbage: float
) -> Iterator[PdfPage]:
    """Yield each page in order, as text-layer boxes or as a rendered image; raise UnreadableFile.

    A document of more than ``max_pages`` pages is refused (too_many_pages) before any page is read.

    The document stays open between pages, but the lock is held only while PDFium works, so other
    threads' PDFs progress while this one's pages are OCR'd.
    """
    with PDFIUM_LOCK:
        pdf = open_pdf(data)
        n_pages = len(pdf)
        if n_pages > max_pages:
            pdf.close()
            raise UnreadableFile("too_many_pages", f"{n_pages} pages > {max_pages}")
    try:
        for index in range(n_pages):
            with PDFIUM_LOCK:
                page_out = _read_page(pdf, index, dpi, max_pixels, min_text_layer_chars, max_text_layer_garbage)
            yield page_out
    finally:
        with PDFIUM_LOCK:
            pdf.close()


def _read_page(
    pdf: pdfium.PdfDocument, index: int, dpi: int, max_pixels: int, min_chars: int, max_garbage: float
) -> PdfPage:
    try:
        page = pdf[index]
    except pdfium.PdfiumError as e:
        raise UnreadableFile("corrupt_file", f"page {index + 1}: {e}") from e
    try:
        textpage = page.get_textpage()
        try:
            text = textpage.get_text_range()
            if text_layer_usable(text, min_chars, max_garbage):
                return PdfPage(number=index + 1, boxes=_text_boxes(textpage, page.get_height()), image=None)
        finally:
            textpage.close()
        return PdfPage(number=index + 1, boxes=[], image=_render(page, dpi, max_pixels))
    except pdfium.PdfiumError as e:
        raise UnreadableFile("corrupt_file", f"page {index + 1}: {e}") from e
    finally:
        page.close()


def _text_boxes(textpage: pdfium.PdfTextPage, page_height: float) -> list[Box]:
    """Return the text layer's runs (PDFium's text rectangles) as boxes with a top-down y axis."""
    boxes = []
    for i in range(textpage.count_rects()):
        left, bottom, right, top = textpage.get_rect(i)
        text = textpage.get_text_bounded(left, bottom, right, top)
        if text.strip():
            boxes.append(Box(text=text, confidence=1.0, x0=left, y0=page_height - top, x1=right, y1=page_height - bottom))
    return boxes


def _render(page: pdfium.PdfPage, dpi: int, max_pixels: int) -> np.ndarray:
    """Return the page rendered at ``dpi`` (less for a page so large it would pass ``max_pixels``) as BGR."""
    width, height = page.get_size()
    scale = dpi / POINTS_PER_INCH
    if width * height * scale * scale > max_pixels:  # a poster or a drawing: shrink rather than refuse
        scale = math.sqrt(max_pixels / max(width * height, 1.0))
    bitmap = page.render(scale=scale)
    try:
        array = bitmap.to_numpy()
        if array.ndim == 2:
            array = np.repeat(array[:, :, None], 3, axis=2)
        return np.ascontiguousarray(array[:, :, :3]).copy()  # the bitmap's buffer dies with it
    finally:
        bitmap.close()
