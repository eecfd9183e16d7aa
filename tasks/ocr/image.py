"""Image bytes to the pixel array an OCR engine reads, refusing what must not be decoded.

The size is checked from the header before a single pixel is decoded: a 20000x20000 PNG is a few
kilobytes on the wire and 1.2 GB in memory. Long images (phone screenshots, 长图) are cut into strips
at blank rows, because a detector that caps an image's longer side would shrink their text to dots.
"""

from __future__ import annotations

from io import BytesIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tasks.ocr.files import UnreadableFile

# How far from the ideal cut a strip boundary may move to find a blank row, as a share of the strip.
_CUT_WINDOW = 0.25


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Return the image with only its header read; raise UnreadableFile when it is unknown or too large."""
    try:
        image = Image.open(BytesIO(data))
    except Image.DecompressionBombError as e:  # Pillow's own ceiling (2x its warning size) fires inside open()
        raise UnreadableFile("image_too_large", str(e)) from e
    except UnidentifiedImageError as e:
        raise UnreadableFile("unsupported_format", f"not an image Pillow can read: {data[:16]!r}") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:  # a header that lies about itself
        raise UnreadableFile("corrupt_file", f"{type(e).__name__}: {e}") from e
    width, height = image.size
    if width * height > max_pixels:
        raise UnreadableFile("image_too_large", f"{width}x{height} = {width * height} pixels > {max_pixels}")
    if width == 0 or height == 0:
        raise UnreadableFile("corrupt_file", f"{width}x{height} image")
    return image


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """Return the image as an H x W x 3 uint8 BGR array (the order OpenCV-based engines read), upright per EXIF."""
    image = open_image(data, max_pixels)
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
        return to_bgr(image)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        # A truncated PNG says "image file is truncated"; a broken JPEG, "broken data stream".
        raise UnreadableFile("corrupt_file", f"{type(e).__name__}: {e}") from e


def to_bgr(image: Image.Image) -> np.ndarray:
    """Return a Pillow image as a BGR array; transparency is flattened onto white, or onto black for light text."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit and float scans: stretch to 8 bits
        values = np.asarray(image, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        gray = ((values - low) * (255.0 / (high - low or 1.0))).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32)
        alpha = rgba[:, :, 3:4] / 255.0
        opaque = rgba[:, :, :3][rgba[:, :, 3] > 0]
        # Dark text on a transparent background is the common case; white text (a logo) needs a dark ground.
        background = 255.0 if opaque.size == 0 or opaque.mean() < 128 else 0.0
        rgb = (rgba[:, :, :3] * alpha + background * (1.0 - alpha)).astype(np.uint8)
    else:
        rgb = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(rgb[:, :, ::-1])


def strips(image: np.ndarray, max_aspect: float) -> list[tuple[int, np.ndarray]]:
    """Return (top row, strip) pieces of an image no taller than ``max_aspect`` widths, cut at blank rows.

    An image within the limit comes back whole. Cuts aim at a height of 1.5 widths (a page's shape)
    and move, within a quarter of that, into the run of least-ink rows nearest the aim, at the
    run's middle: a cut falls in the gap between two text lines, clear of both.
    """
    height, width = image.shape[:2]
    if height <= max_aspect * width:
        return [(0, image)]
    gray = image.mean(axis=2) if image.ndim == 3 else image.astype(np.float64)
    ink = gray.std(axis=1)  # a blank row is one flat colour, whatever the colour
    target = max(int(1.5 * width), 32)
    window = int(_CUT_WINDOW * target)
    out: list[tuple[int, np.ndarray]] = []
    top = 0
    while height - top > target + window:
        lo, hi = top + target - window, top + target + window
        cut = lo + _quietest_gap(ink[lo:hi], aim=window)
        out.append((top, image[top:cut]))
        top = cut
    out.append((top, image[top:]))
    return out


def _quietest_gap(ink: np.ndarray, aim: int) -> int:
    """Return the middle of the run of least-ink rows whose middle is nearest ``aim`` (indices into ``ink``)."""
    quiet = ink <= ink.min() + 1.0  # within one grey level of the quietest row: JPEG noise is not ink
    best, best_distance = aim, None
    start = None
    for i, q in enumerate([*quiet, False]):
        if q and start is None:
            start = i
        elif not q and start is not None:
            middle = (start + i - 1) // 2
            if best_distance is None or abs(middle - aim) < best_distance:
                best, best_distance = middle, abs(middle - aim)
            start = None
    return best
