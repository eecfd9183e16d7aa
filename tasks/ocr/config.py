"""The OCR stage's one config model; its fields are the flow parameters and the recipe section.

The detector defaults were chosen by measurement (``benchmarks/ocr_cer.py``, figures in its module
docstring): RapidOCR's own default scales an image's *shorter* side up to 736 px, so a 48 px text-line
image is blown up ~15x before detection (2.95 CPU s for one line). Capping the *longer* side at 960 px
read text-line images, screenshots, 150 and 300 dpi pages and the sample's scan as well or better
(mean CER 0.0002 vs 0.0004) at 0.10 s per line image and less than half the CPU time per page overall.
Recognition reads the line crops from the full-resolution image, so the cap costs detection
resolution only; 1280 and 1600 were no more accurate and slower.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OcrConfig(BaseModel):
    """OCR of PDFs and images: the PDF text layer where it is usable, PP-OCR on the rest; reading order,
    line joining for Chinese, low-confidence lines and repeated page headers/footers removed."""

    model_config = ConfigDict(extra="forbid")

    engine: Literal["rapidocr", "paddleocr"] = Field(
        default="rapidocr",
        description="rapidocr: PP-OCR ONNX models shipped inside the rapidocr wheel, on onnxruntime (works offline). "
        "paddleocr: the PaddlePaddle runtime, an optional install (pip install paddleocr paddlepaddle) that "
        "downloads its models on first use unless paddle_det_model_dir/paddle_rec_model_dir name local copies.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto",
        description="auto: CUDA when the runtime offers it (onnxruntime-gpu, paddlepaddle-gpu), else CPU. "
        "cuda fails when no CUDA runtime is installed.",
    )
    threads: int = Field(
        default=0,
        ge=0,
        le=256,
        description="CPU threads per OCR engine (0: the runtime's default, all cores). With several worker "
        "processes on one machine, set cores / workers.",
    )
    det_limit_type: Literal["max", "min"] = Field(
        default="max",
        description="How the text detector resizes an image: max caps the longer side at det_limit_side_len "
        "(never enlarges); min scales the shorter side up to it (RapidOCR's own default, slow on small images).",
    )
    det_limit_side_len: int = Field(
        default=960,
        ge=32,
        le=4096,
        description="The detector's side length in pixels (see det_limit_type). Chosen by measurement: "
        "benchmarks/ocr_cer.py.",
    )
    use_angle_cls: bool = Field(
        default=False,
        description="Run the 0°/180° text-line orientation classifier before recognition: needed only for "
        "upside-down scans; costs time on every line.",
    )
    min_line_confidence: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Recognised lines with a lower confidence are dropped (counted as low_confidence_lines).",
    )
    min_chars: int = Field(
        default=10,
        ge=1,
        le=100_000,
        description="A document with fewer characters (whitespace not counted) after OCR is rejected as "
        "no_text: logos, buttons and decorative images carry a few characters, not text.",
    )
    render_dpi: int = Field(
        default=200,
        ge=50,
        le=600,
        description="Resolution at which PDF pages without a usable text layer are rendered for OCR.",
    )
    min_text_layer_chars: int = Field(
        default=20,
        ge=0,
        le=10_000,
        description="A PDF page whose text layer has fewer characters (whitespace not counted) is rendered "
        "and OCR'd instead: a scan with a stray page-number text object has no usable layer.",
    )
    max_text_layer_garbage: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="A PDF page whose text layer has a larger share of replacement, private-use or control "
        "characters (fonts without a Unicode map) is rendered and OCR'd instead.",
    )
    max_pages: int = Field(
        default=500,
        ge=1,
        le=100_000,
        description="PDFs with more pages are rejected as too_many_pages.",
    )
    max_file_bytes: int = Field(
        default=200_000_000,
        ge=1,
        le=10_000_000_000,
        description="Files larger than this are rejected as file_too_large before they are read.",
    )
    max_image_pixels: int = Field(
        default=40_000_000,  # an A4 page at 600 dpi is 35 Mpx; 20000x20000 (400 Mpx) is a decompression bomb
        ge=1,
        le=89_000_000,  # Pillow's own decompression-bomb warning starts above this: ours must fire first
        description="Images (and rendered PDF pages) with more pixels are rejected as image_too_large; the size "
        "is read from the file header before anything is decoded.",
    )
    long_image_aspect: float = Field(
        default=2.5,
        ge=1.0,
        le=100.0,
        description="An image taller than this many widths (a long phone screenshot, 长图) is cut into "
        "strips at blank rows and each strip is detected on its own; otherwise the detector's size cap "
        "would shrink its text to a few pixels.",
    )
    strip_headers_footers: bool = Field(
        default=True,
        description="In multi-page PDFs, remove lines at the top or bottom of a page that repeat on other "
        "pages (letters compared, digits and punctuation ignored, so 第 1 页 and 第 2 页 match) and bare page numbers.",
    )
    edge_lines: int = Field(
        default=2,
        ge=0,
        le=10,
        description="How many lines at the top and at the bottom of each page may be a header or footer.",
    )
    min_repeat_share: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="An edge line is a header/footer when it recurs on at least this share of the pages "
        "(and on at least two).",
    )
    paddle_det_model_dir: str = Field(
        default="",
        max_length=4096,
        description="paddleocr only: a local PP-OCR text detection model folder (empty: paddleocr's own "
        "download on first use).",
    )
    paddle_rec_model_dir: str = Field(
        default="",
        max_length=4096,
        description="paddleocr only: a local PP-OCR text recognition model folder (empty: paddleocr's own "
        "download on first use).",
    )
