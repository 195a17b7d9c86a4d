"""The inference composition every Python path shares: image -> model input, raw outputs -> detections in
image pixels. NumPy only (OpenCV optional, see :mod:`slfm.core.image`).

``meta`` is anything with the artifact contract's fields: an :class:`slfm.artifact.ArtifactMeta`, or a
:class:`slfm.config.ModelConfig` (whose inputs are unscaled: ``pixel_scale`` 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from slfm.anchors import anchors
from slfm.core.image import letterbox, normalize, resize_short_side
from slfm.core.quant import quantize
from slfm.metrics import ImageDetections
from slfm.postprocess import DEMO, PostprocessConfig, postprocess

MODES = ("letterbox", "reference")


@dataclass(frozen=True)
class Frame:
    """How an image became the model input: the resize scale (input pixels per image pixel) and both sizes."""

    scale: float
    input_hw: tuple[int, int]
    image_hw: tuple[int, int]


@lru_cache(maxsize=32)
def cached_anchors(height: int, width: int, min_sizes: tuple, steps: tuple) -> np.ndarray:
    a = anchors(height, width, min_sizes, steps)
    a.setflags(write=False)
    return a


def prepare(
    image: np.ndarray, meta, size: int | None = None, mode: str = "letterbox", use_cv2: bool | None = None
) -> tuple[np.ndarray, Frame]:
    """BGR uint8 image -> (input float32 [1, 3, H, W], its :class:`Frame`).

    ``mode`` "letterbox" (the contract: ``size``, default ``meta.image_size``, square) or "reference" (the
    paper's variable-size test input: short side to ``size``, default 840)."""
    if mode == "letterbox":
        img, scale = letterbox(image, size or meta.image_size, meta.mean_bgr, use_cv2)
    elif mode == "reference":
        img, scale = resize_short_side(image, size or 840)
    else:
        raise ValueError(f"unknown inference mode {mode!r}: use one of {MODES}")
    x = normalize(img, meta.mean_bgr, pixel_scale=getattr(meta, "pixel_scale", 1.0))
    return x, Frame(float(scale), tuple(img.shape[:2]), tuple(image.shape[:2]))


def model_input(x: np.ndarray, nhwc: bool = False, dtype=np.float32, quant=None) -> np.ndarray:
    """A prepared NCHW float32 input in the graph's own terms: NHWC when ``nhwc``, quantised with ``quant``
    (scale, zero point) when ``dtype`` is int8/uint8."""
    x = np.asarray(x, dtype=np.float32)
    if nhwc:
        x = x.transpose(0, 2, 3, 1)
    if np.dtype(dtype) != np.float32:
        if not quant or not quant[0]:
            raise ValueError(f"{np.dtype(dtype).name} input without quantization parameters")
        x = quantize(x, quant[0], int(quant[1]), dtype)
    return np.ascontiguousarray(x)


def to_image_pixels(boxes: np.ndarray, frame: Frame) -> np.ndarray:
    """Boxes normalised to the model input -> image pixels (the letterbox undone), clipped to the image."""
    h, w = frame.input_hw
    px = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * np.array([w, h, w, h], dtype=np.float32) / frame.scale
    px[:, [0, 2]] = np.clip(px[:, [0, 2]], 0, frame.image_hw[1])
    px[:, [1, 3]] = np.clip(px[:, [1, 3]], 0, frame.image_hw[0])
    return px


def decode(raw, meta, post: PostprocessConfig = DEMO, frame: Frame | None = None) -> ImageDetections:
    """One image's raw outputs (``loc`` [A, 4], class probabilities [A, C]) -> detections: anchors for the
    input, :func:`slfm.postprocess.postprocess` at ``post``, then image pixels through ``frame`` (without a
    frame the boxes stay normalised to a ``meta.image_size`` square input, as a device reports them)."""
    loc, scores = raw
    h, w = frame.input_hw if frame is not None else (meta.image_size, meta.image_size)
    priors = cached_anchors(h, w, tuple(map(tuple, meta.min_sizes)), tuple(meta.steps))
    boxes, s, labels = postprocess(loc, scores, priors, tuple(meta.variances), post)
    if frame is not None:
        boxes = to_image_pixels(boxes, frame)
    return ImageDetections(boxes, s, labels)
