"""Where a PDF or image record's bytes are, what they are, and the error that says why they cannot be read.

A crawled binary keeps its body in the crawl's WARC file (``meta.warc_file`` at ``meta.warc_offset``,
inside the crawl stage's ``warc/`` folder); a user's own file is named by ``meta.path`` or a
``file://`` URL. The format is
told by the bytes themselves (magic numbers), not by a server's Content-Type or a file name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from tasks.crawl.warc import read_warc_body
from tasks.records import Doc

FileFormat = Literal["pdf", "image"]

# Signatures of the raster formats Pillow decodes that the web serves.
_IMAGE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF, little-endian
    b"MM\x00*",  # TIFF, big-endian
)


class UnreadableFile(ValueError):
    """A file that cannot become text; ``reason`` is one of the stage's ``OcrReason`` values."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def local_path(doc: Doc) -> Path | None:
    """Return the local file a record names: ``meta.path``, else a ``file://`` URL; None for neither."""
    meta = doc.get("meta") or {}
    if meta.get("path"):
        return Path(meta["path"])
    url = doc.get("url") or ""
    if url.startswith("file://"):
        return Path(unquote(urlsplit(url).path))
    return None


def wants_ocr(doc: Doc) -> bool:
    """Return whether a record is a PDF or an image to read: meta.kind says so, or it is a bare local file."""
    kind = (doc.get("meta") or {}).get("kind")
    if kind is not None:
        return kind in ("pdf", "image")
    return local_path(doc) is not None and not (doc.get("text") or "").strip()


def load_bytes(doc: Doc, warc_dir: Path | None, max_bytes: int) -> bytes:
    """Return the file behind a record: its local file (``local_path``) if any, else its WARC record; raise UnreadableFile.

    Args:
        warc_dir: the crawl stage's WARC folder; None where records can only name local files.
    """
    meta = doc.get("meta") or {}
    path = local_path(doc)
    if path is not None:
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise UnreadableFile("file_too_large", f"{size} bytes > {max_bytes}")
            return path.read_bytes()
        except OSError as e:
            raise UnreadableFile("missing_bytes", f"{type(e).__name__}: {e}") from e
    warc_file, offset = meta.get("warc_file"), meta.get("warc_offset")
    if warc_file and offset is not None:
        if warc_dir is None:
            raise UnreadableFile("missing_bytes", f"record is in WARC {warc_file} but no WARC folder was given")
        # Only the file name: a record's meta must not steer reads outside the crawl's WARC folder.
        path = Path(warc_dir) / Path(str(warc_file)).name
        try:
            body = read_warc_body(path, int(offset))
        except Exception as e:  # missing file, bad offset, a broken gzip member: warcio raises many types
            raise UnreadableFile("missing_bytes", f"{path}@{offset}: {type(e).__name__}: {e}") from e
        if len(body) > max_bytes:
            raise UnreadableFile("file_too_large", f"{len(body)} bytes > {max_bytes}")
        return body
    raise UnreadableFile("missing_bytes", "no meta.path or file:// URL, and no meta.warc_file/warc_offset")


def sniff_format(data: bytes) -> FileFormat | None:
    """Return what the bytes are by their magic number: a PDF (header within the first KiB, as readers allow), an image, or None."""
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return "image"
    return None
