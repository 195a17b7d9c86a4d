"""Input preparation shared by evaluation, detection, the artifacts' runners and the Pi runner. NumPy + OpenCV.

Contract (recorded in every artifact): BGR uint8 image -> letterbox (keep aspect, long side to the
input size, pad right and bottom with the mean colour) -> float32, minus the BGR mean, NCHW.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from slfm.config import BGR_MEAN


def letterbox(image: np.ndarray, size: int, mean_bgr: Sequence[float] = BGR_MEAN) -> tuple[np.ndarray, float]:
    """Resize ``image`` so its long side is ``size`` and pad to ``size`` x ``size``. Returns (image, scale)."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nh, nw = min(size, max(1, round(h * scale))), min(size, max(1, round(w * scale)))  # a 4000x1 image keeps 1 px
    out = np.empty((size, size, 3), dtype=np.uint8)
    out[:] = np.round(np.asarray(mean_bgr)).astype(np.uint8)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=interp)
    return out, scale


def resize_short_side(image: np.ndarray, short: int = 840, max_side: int = 2000) -> tuple[np.ndarray, float]:
    """The reference's variable-size test input: short side to ``short`` (long side capped)."""
    h, w = image.shape[:2]
    scale = min(short / min(h, w), max_side / max(h, w))
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, (nw, nh), interpolation=interp), scale


def normalize(image: np.ndarray, mean_bgr: Sequence[float] = BGR_MEAN, layout: str = "NCHW") -> np.ndarray:
    """BGR uint8 HxWx3 -> float32 [1, 3, H, W] (or [1, H, W, 3] for ``layout='NHWC'``), mean subtracted."""
    x = image.astype(np.float32) - np.asarray(mean_bgr, dtype=np.float32)
    if layout == "NCHW":
        x = x.transpose(2, 0, 1)
    elif layout != "NHWC":
        raise ValueError(f"unknown layout {layout!r}: use NCHW or NHWC")
    return np.ascontiguousarray(x[None])
