"""OCR engines behind one interface: an image in, text boxes with confidences out.

``rapidocr`` (the default) runs PP-OCR models exported to ONNX on onnxruntime; the models ship inside
the rapidocr wheel, so it works on a fresh machine with no network. ``paddleocr`` runs the same family
of models on PaddlePaddle; it is an optional install in its own environment (paddleocr 3.x depends
on paddlex, which pins numpy, PyYAML and opencv versions this project's stack does not use) and it
downloads its models on first use unless given local model folders. Engines are expensive to
build (~1 s, ~100 MB): the stage builds one per reader, when the first page needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from tasks.ocr.config import OcrConfig
from tasks.ocr.layout import Box

# Recognition reads line crops from the image it is given; rapidocr's own pre-scaling (longer side
# to 2000 px by default) would shrink a 200 dpi page before the crops are cut. Our images are bounded
# by OcrConfig.max_image_pixels already, so its pre-scaling is switched off with a ceiling no image reaches.
_NO_PRESCALE = 1_000_000

PADDLE_INSTALL = (
    "install it in its own environment: pip install 'paddleocr>=3,<4' paddlepaddle (or paddlepaddle-gpu); "
    "paddleocr pins numpy<2.4, PyYAML==6.0.2 and opencv-contrib-python==4.10, which conflict with this project's "
    "default environment"
)


class OcrEngineUnavailable(RuntimeError):
    """The configured engine cannot run here: not installed, no models, or no CUDA where cuda was asked for."""


class OcrEngine(Protocol):
    """Text boxes of one image: ``read(image)`` takes an H x W x 3 uint8 BGR array."""

    name: str

    def read(self, image: np.ndarray) -> list[Box]: ...


def build_engine(cfg: OcrConfig) -> OcrEngine:
    """Return the engine ``cfg.engine`` names, built now; raise OcrEngineUnavailable with what to do."""
    if cfg.engine == "paddleocr":
        return PaddleOcrEngine(cfg)
    return RapidOcrEngine(cfg)


class RapidOcrEngine:
    """PP-OCR on onnxruntime through rapidocr, with the models from its wheel."""

    name = "rapidocr"

    def __init__(self, cfg: OcrConfig):
        try:
            import onnxruntime
            from rapidocr import RapidOCR
        except ImportError as e:
            raise OcrEngineUnavailable(f"engine 'rapidocr' needs: pip install 'rapidocr>=3.10,<4' onnxruntime ({e})") from e
        cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
        if cfg.device == "cuda" and not cuda:
            raise OcrEngineUnavailable("device 'cuda' needs onnxruntime-gpu (pip install onnxruntime-gpu) and a CUDA driver")
        params = {
            "Global.log_level": "error",  # "no text detected" is a warning there, and an answer here
            "Global.use_cls": cfg.use_angle_cls,
            "Global.text_score": 0.0,  # every line comes back: the stage drops and counts the weak ones
            "Global.max_side_len": _NO_PRESCALE,
            "Det.limit_type": cfg.det_limit_type,
            "Det.limit_side_len": cfg.det_limit_side_len,
            "EngineConfig.onnxruntime.intra_op_num_threads": cfg.threads or -1,
            "EngineConfig.onnxruntime.use_cuda": cuda and cfg.device != "cpu",
        }
        self._cls = cfg.use_angle_cls
        try:
            self._ocr = RapidOCR(params=params)
            # rapidocr loads each model on first use; load them now, so a broken install fails here, not mid-shard
            blank = np.full((48, 160, 3), 255, dtype=np.uint8)
            self._ocr(blank, use_det=False, use_cls=self._cls, use_rec=True)
            self._ocr(blank, use_det=True, use_cls=self._cls, use_rec=True)
        except Exception as e:  # a missing model file makes rapidocr try a download, which fails offline
            raise OcrEngineUnavailable(f"rapidocr could not load its bundled PP-OCR models: {type(e).__name__}: {e}") from e

    def read(self, image: np.ndarray) -> list[Box]:
        # the flags are passed every call: rapidocr keeps the last call's flags as its own state
        result = self._ocr(image, use_det=True, use_cls=self._cls, use_rec=True)
        if result.boxes is None or result.txts is None:
            return []
        return [_box(text, score, points) for points, text, score in zip(result.boxes, result.txts, result.scores)]


class PaddleOcrEngine:
    """PP-OCR on PaddlePaddle through paddleocr 3.x: optional, see PADDLE_INSTALL."""

    name = "paddleocr"

    def __init__(self, cfg: OcrConfig):
        try:
            from paddleocr import PaddleOCR
        except ImportError as e:
            raise OcrEngineUnavailable(f"engine 'paddleocr' is not installed; {PADDLE_INSTALL} ({e})") from e
        for field in ("paddle_det_model_dir", "paddle_rec_model_dir"):
            folder = getattr(cfg, field)
            if folder and not Path(folder).is_dir():
                raise OcrEngineUnavailable(f"{field}={folder!r} is not a folder holding a PP-OCR inference model")
        kwargs: dict[str, object] = {
            "use_doc_orientation_classify": False,
            "use_doc_unwarping": False,
            "use_textline_orientation": cfg.use_angle_cls,
            "text_det_limit_type": cfg.det_limit_type,
            "text_det_limit_side_len": cfg.det_limit_side_len,
            "text_rec_score_thresh": 0.0,
            "device": "cpu" if cfg.device == "cpu" else ("gpu" if _paddle_has_cuda() else "cpu"),
        }
        if cfg.device == "cuda" and kwargs["device"] != "gpu":
            raise OcrEngineUnavailable("device 'cuda' needs paddlepaddle-gpu and a CUDA driver")
        if cfg.threads:
            kwargs["cpu_threads"] = cfg.threads
        if cfg.paddle_det_model_dir:
            kwargs["text_detection_model_dir"] = cfg.paddle_det_model_dir
        if cfg.paddle_rec_model_dir:
            kwargs["text_recognition_model_dir"] = cfg.paddle_rec_model_dir
        try:
            self._ocr = PaddleOCR(**kwargs)
        except Exception as e:  # paddlex raises its own types when a model download fails
            raise OcrEngineUnavailable(
                f"paddleocr could not load its models ({type(e).__name__}: {e}); without network, download the "
                "PP-OCR det and rec inference models elsewhere and set paddle_det_model_dir and paddle_rec_model_dir"
            ) from e

    def read(self, image: np.ndarray) -> list[Box]:
        boxes: list[Box] = []
        for result in self._ocr.predict(image):
            for text, score, points in zip(result["rec_texts"], result["rec_scores"], result["rec_polys"]):
                boxes.append(_box(text, score, points))
        return boxes


def _paddle_has_cuda() -> bool:
    import paddle

    return bool(paddle.device.is_compiled_with_cuda()) and paddle.device.cuda.device_count() > 0


def _box(text: str, score: float, points: np.ndarray) -> Box:
    """Return a detector quadrilateral (four x, y corners) as the axis-aligned box around it."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return Box(
        text=str(text),
        confidence=float(score),
        x0=float(pts[:, 0].min()),
        y0=float(pts[:, 1].min()),
        x1=float(pts[:, 0].max()),
        y1=float(pts[:, 1].max()),
    )
