"""Reading order and line joining for Chinese pages: text boxes in, lines and paragraphs out.

Boxes come from an OCR engine (one box per detected text line, sometimes a line in pieces) or from a
PDF text layer (one box per run of text). Coordinates grow rightwards and downwards, in any unit:
every threshold here is relative to the line height, so pixels and PDF points both work.

Chinese is written without spaces, so nothing joins two Han characters with a space: not the pieces
of one line, not the wrapped lines of one paragraph (the recogniser's own spaces between Han
characters go too). Latin words and numbers split across pieces keep one space. A line continues the
paragraph above it when that line ran to the right edge and this one is not indented (the first-line
indent, 首行缩进, opens a paragraph) and no extra vertical space stands between them.
"""

from __future__ import annotations

import math
import re
import statistics
import unicodedata
from dataclasses import dataclass, replace
from itertools import pairwise

import numpy as np

# Han ideographs (with extensions A-G), CJK punctuation, full-width forms, kana: no spaces around them.
_CJK = (
    "\u2e80-\u2fdf\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
    "\U00020000-\U0003134f"
)
_CJK_SPACES = re.compile(rf"(?<=[{_CJK}])[ \t\u00a0]+(?=[{_CJK}])")
_SPACES = re.compile(r"[ \t\u00a0]+")
_WORD_END = re.compile(r"[A-Za-z0-9%.,;:!?)\]'\"-]$")
_WORD_START = re.compile(r"^[A-Za-z0-9(\['\"]")

# A bare page number in a footer or header: 3, - 3 -, 3/12, 第 3 页, 第3页 共12页, Page 3 of 12.
_PAGE_NUMBER = re.compile(
    r"^[-—–·\s]*(?:第?\s*\d+\s*页?(?:\s*[,，/]?\s*共\s*\d+\s*页)?|\d+\s*/\s*\d+|page\s*\d+(?:\s*of\s*\d+)?)[-—–·\s]*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Box:
    """One piece of recognised text and where it sits on its page."""

    text: str
    confidence: float  # 0..1; 1.0 for a PDF text layer
    x0: float
    y0: float  # top
    x1: float
    y1: float  # bottom

    @property
    def height(self) -> float:
        return max(self.y1 - self.y0, 1e-6)

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2


@dataclass(frozen=True)
class Line:
    """A row of boxes read left to right, joined into one string."""

    text: str
    confidence: float  # the mean of its boxes, weighted by characters
    x0: float
    y0: float
    x1: float
    y1: float
    block: int = 0  # the text block (column, or a full-width line between columns) it belongs to, in reading order

    @property
    def height(self) -> float:
        return max(self.y1 - self.y0, 1e-6)


def tidy_text(text: str) -> str:
    """Return ``text`` with runs of spaces collapsed, trimmed, and no space left between CJK characters."""
    return _CJK_SPACES.sub("", _SPACES.sub(" ", text)).strip()


def order_lines(boxes: list[Box]) -> list[Line]:
    """Return a page's boxes as lines in reading order: column by column, each top to bottom."""
    lines: list[Line] = []
    for block, block_boxes in enumerate(split_columns(boxes)):
        lines += [replace(line, block=block) for line in group_lines(block_boxes)]
    return lines


def split_columns(boxes: list[Box]) -> list[list[Box]]:
    """Return the boxes in blocks to be read one after another: one block, or the columns of a two-column page.

    A column gutter is a vertical strip in the middle 60% of the page, at least a line height wide,
    that almost no box crosses: only full-width lines (a title over both columns, a footer), at most
    a tenth of the boxes (two on a short page). Those lines cut the page into bands, and each band is
    read left column first. A split needs real columns: at least three lines of prose (median six
    characters or more) on each side, so a form's labels and values (姓名：张三) or a table stay rows.
    """
    boxes = [b for b in boxes if b.text.strip()]
    if len(boxes) < 2 * _MIN_COLUMN_LINES:
        return [boxes]
    left, right = min(b.x0 for b in boxes), max(b.x1 for b in boxes)
    height = statistics.median(b.height for b in boxes)
    gutter = _find_gutter(boxes, left, right, height, allowed=max(2, len(boxes) // 10))
    if gutter is None:
        return [boxes]
    sides = ([b for b in boxes if b.x1 <= gutter], [b for b in boxes if b.x0 >= gutter])
    for side in sides:
        lines = group_lines(side)  # a text layer gives several runs per line: count lines, not boxes
        if len(lines) < _MIN_COLUMN_LINES or statistics.median(len(line.text) for line in lines) < _MIN_COLUMN_CHARS:
            return [boxes]
    blocks: list[list[Box]] = []
    band: list[Box] = []
    for box in sorted(boxes, key=lambda b: (b.y0, b.x0)):
        if box.x0 < gutter < box.x1:  # crosses the gutter: a full-width line ends the band above it
            blocks += [side for side in _sides(band, gutter) if side]
            blocks.append([box])
            band = []
        else:
            band.append(box)
    blocks += [side for side in _sides(band, gutter) if side]
    return _merge_full_width_runs(blocks, gutter)


_MIN_COLUMN_LINES = 3
_MIN_COLUMN_CHARS = 6


def _find_gutter(boxes: list[Box], left: float, right: float, height: float, allowed: int) -> float | None:
    """Return the middle x of the widest vertical strip in the middle 60% of [left, right] crossed by the
    fewest boxes (at most ``allowed``), or None."""
    scale = 1.0 if right - left >= 200 else 200.0 / max(right - left, 1e-6)  # PDF points: resolve small gaps too
    size = int((right - left) * scale) + 1
    crossing = np.zeros(size, dtype=np.int32)
    for b in boxes:
        crossing[int((b.x0 - left) * scale) : int((b.x1 - left) * scale) + 1] += 1
    lo, hi = int(0.2 * size), int(0.8 * size)
    fewest = int(crossing[lo:hi].min()) if hi > lo else allowed + 1
    if fewest > allowed:
        return None
    covered = crossing > fewest  # the gutter is where the fewest boxes cross: none, or only full-width lines
    best: tuple[float, float] | None = None  # (width, middle)
    start = None
    for i in range(lo, hi + 1):
        empty = i < hi and not covered[i]
        if empty and start is None:
            start = i
        elif not empty and start is not None:
            width = (i - start) / scale
            if width >= height and (best is None or width > best[0]):
                best = (width, left + (start + i) / 2 / scale)
            start = None
    return best[1] if best else None


def _sides(band: list[Box], gutter: float) -> list[list[Box]]:
    return [[b for b in band if b.x1 <= gutter], [b for b in band if b.x1 > gutter]]


def _merge_full_width_runs(blocks: list[list[Box]], gutter: float) -> list[list[Box]]:
    """Return the blocks with consecutive full-width lines (a title and subtitle, a footer) in one block."""
    merged: list[list[Box]] = []
    for block in blocks:
        full = len(block) == 1 and block[0].x0 < gutter < block[0].x1
        if full and merged and all(b.x0 < gutter < b.x1 for b in merged[-1]):
            merged[-1].append(block[0])
        else:
            merged.append(block)
    return merged


def group_lines(boxes: list[Box]) -> list[Line]:
    """Return the boxes as lines, top to bottom; a line's boxes are joined left to right.

    A box belongs to a line when at least half of the shorter of the two overlaps vertically with
    the line: a slight skew (a scan rotated by a fraction of a degree) keeps its lines apart, the pieces
    of one line detected apart across a wide gap come back together, and a PDF text layer's lone
    punctuation mark (a small box low in the line: 。，、) joins its line.
    """
    rows: list[list[Box]] = []
    for box in sorted((b for b in boxes if b.text.strip()), key=lambda b: (b.cy, b.x0)):
        for row in reversed(rows[-3:]):  # sorted by centre: only the last few rows can still take this box
            top = statistics.median(b.y0 for b in row)
            bottom = statistics.median(b.y1 for b in row)
            overlap = min(box.y1, bottom) - max(box.y0, top)
            if overlap >= 0.5 * min(box.height, bottom - top) and not _overlaps_horizontally(box, row):
                row.append(box)
                break
        else:
            rows.append([box])
    lines = [_make_line(sorted(row, key=lambda b: b.x0)) for row in rows]
    return sorted(lines, key=lambda line: ((line.y0 + line.y1) / 2, line.x0))


def _overlaps_horizontally(box: Box, row: list[Box]) -> bool:
    """Return whether ``box`` covers more than half the width of a box already in the row (then it is another line)."""
    for other in row:
        overlap = min(box.x1, other.x1) - max(box.x0, other.x0)
        if overlap > 0.5 * min(box.x1 - box.x0, other.x1 - other.x0):
            return True
    return False


def _make_line(row: list[Box]) -> Line:
    text = tidy_text(row[0].text)
    height = max(b.height for b in row)  # a text layer's glyph boxes are tight: 、 is a fifth of a line high
    for prev, box in pairwise(row):
        piece = tidy_text(box.text)
        wide_gap = box.x0 - prev.x1 > 1.5 * height  # table cells, a form's label and value: keep them apart
        text += (" " if wide_gap or _needs_space(text, piece) else "") + piece
    chars = [max(len(b.text.strip()), 1) for b in row]
    confidence = sum(b.confidence * n for b, n in zip(row, chars)) / sum(chars)
    return Line(
        text=text,
        confidence=confidence,
        x0=min(b.x0 for b in row),
        y0=min(b.y0 for b in row),
        x1=max(b.x1 for b in row),
        y1=max(b.y1 for b in row),
    )


def _needs_space(left: str, right: str) -> bool:
    """Return whether two pieces of Latin text meet (a word or number on each side)."""
    return bool(left and right and _WORD_END.search(left) and _WORD_START.search(right))


def paragraphs(lines: list[Line]) -> list[str]:
    """Return the page's paragraphs, in reading order: wrapped lines joined, each paragraph one string.

    Lines are expected in reading order (``order_lines``). A block (a column) spans from its
    leftmost line start to its rightmost line end; a line that stops more than two characters short
    of the right edge ended its paragraph (a short last line, a centred title, a signature).
    """
    out: list[str] = []
    start = 0
    for end in range(1, len(lines) + 1):  # each block (column) has its own edges
        if end == len(lines) or lines[end].block != lines[start].block:
            out += _block_paragraphs(lines[start:end])
            start = end
    return out


def _block_paragraphs(lines: list[Line]) -> list[str]:
    if not lines:
        return []
    height = statistics.median(line.height for line in lines)
    left = min(line.x0 for line in lines)
    right = max(line.x1 for line in lines)
    gaps = [b.y0 - a.y1 for a, b in pairwise(lines)]
    usual_gap = statistics.median(gaps) if gaps else 0.0
    out = [lines[0].text]
    for prev, line in pairwise(lines):
        wrapped = prev.x1 >= right - 2.0 * height
        indented = line.x0 > left + 0.5 * height
        spaced = line.y0 - prev.y1 > max(usual_gap, 0.0) + 0.5 * height
        if wrapped and not indented and not spaced:
            out[-1] += (" " if _needs_space(out[-1], line.text) else "") + line.text
        else:
            out.append(line.text)
    return out


def edge_key(text: str) -> str:
    """Return the form in which header/footer lines are compared: its letters only (Han, kana, Latin).

    Digits go so that 第 1 页 matches 第 2 页; punctuation and spaces go because OCR reads the same
    header's brackets differently from page to page (〔2026〕 on one, 〔2026] on the next).
    """
    return "".join(c for c in unicodedata.normalize("NFKC", text) if c.isalpha())


def is_page_number(text: str) -> bool:
    """Return whether a line is nothing but a page number (3, - 3 -, 3/12, 第 3 页 共 12 页, Page 3 of 12)."""
    return bool(_PAGE_NUMBER.match(text.strip()))


def strip_repeated_edges(pages: list[list[Line]], edge_lines: int, min_share: float) -> tuple[list[list[Line]], int]:
    """Return the pages without running headers, footers and page numbers, and how many lines went.

    Only the first and last ``edge_lines`` lines of a page are candidates. A candidate goes when the
    same line (its letters compared, ``edge_key``) sits at an edge of at least ``min_share`` of the
    pages, and of at least two; a bare page number at an edge always goes. A single page is returned
    as it is: one page cannot tell a header from a title.
    """
    if len(pages) < 2 or edge_lines == 0:
        return pages, 0
    seen: dict[str, int] = {"": 0}  # a line of digits and marks only is a header by being a page number, or not at all
    for page in pages:
        for key in {edge_key(line.text) for line in _edges(page, edge_lines)} - {""}:
            seen[key] = seen.get(key, 0) + 1
    need = max(2, math.ceil(min_share * len(pages)))
    out: list[list[Line]] = []
    removed = 0
    for page in pages:
        edges = {id(line) for line in _edges(page, edge_lines)}
        kept = [
            line
            for line in page
            if id(line) not in edges or (seen[edge_key(line.text)] < need and not is_page_number(line.text))
        ]
        removed += len(page) - len(kept)
        out.append(kept)
    return out, removed


def _edges(page: list[Line], n: int) -> list[Line]:
    return page[:n] + page[max(n, len(page) - n) :]
