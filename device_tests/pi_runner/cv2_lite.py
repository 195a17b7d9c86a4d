"""A numpy stand-in for the two OpenCV calls ``slfm.preprocess`` makes (``cv2.resize`` with INTER_AREA or
INTER_LINEAR), so the shipped preprocess module runs unchanged on a Pi without OpenCV.

:func:`install` registers it as ``cv2`` only when the real OpenCV cannot be imported. Results match OpenCV
to within rounding (area averaging and half-pixel bilinear weights, computed in float).
"""

from __future__ import annotations

import sys
import types

import numpy as np

INTER_LINEAR = 1
INTER_AREA = 3


def _linear_weights(n_in: int, n_out: int) -> np.ndarray:
    x = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    x0 = np.floor(x).astype(np.int64)
    x1 = np.minimum(x0 + 1, n_in - 1)
    f = (x - x0).astype(np.float32)
    w = np.zeros((n_out, n_in), dtype=np.float32)
    rows = np.arange(n_out)
    np.add.at(w, (rows, x0), 1 - f)
    np.add.at(w, (rows, x1), f)
    return w


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    scale = n_in / n_out
    start = np.arange(n_out)[:, None] * scale
    j = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(start + scale, j + 1) - np.maximum(start, j), 0, None)
    return (overlap / scale).astype(np.float32)


def resize(image: np.ndarray, dsize: tuple[int, int], interpolation: int = INTER_LINEAR) -> np.ndarray:
    """``cv2.resize(image, (width, height), interpolation=...)`` for uint8 HxW[xC] images."""
    w_out, h_out = int(dsize[0]), int(dsize[1])
    h_in, w_in = image.shape[:2]
    area = interpolation == INTER_AREA and h_out <= h_in and w_out <= w_in
    weights = _area_weights if area else _linear_weights
    wy, wx = weights(h_in, h_out), weights(w_in, w_out)
    img = image.astype(np.float32)
    flat = img.reshape(h_in, -1)
    rows = (wy @ flat).reshape(h_out, w_in, -1)
    out = np.einsum("ow,hwc->hoc", wx, rows)
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return out.reshape(h_out, w_out, *image.shape[2:])


def has_real_cv2() -> bool:
    mod = sys.modules.get("cv2")
    if mod is not None:
        return not getattr(mod, "SLFM_LITE", False)
    try:
        import cv2  # noqa: F401
    except ImportError:
        return False
    return True


def install() -> bool:
    """Make ``import cv2`` work: the real OpenCV when present (returns True), else this stand-in (False)."""
    if has_real_cv2():
        return True
    mod = types.ModuleType("cv2")
    mod.SLFM_LITE = True
    mod.resize, mod.INTER_AREA, mod.INTER_LINEAR = resize, INTER_AREA, INTER_LINEAR
    sys.modules["cv2"] = mod
    return False
