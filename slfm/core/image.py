"""Image side of the inference contract: resize, letterbox, normalise. NumPy; OpenCV used when importable.

Contract (recorded in every artifact's sidecar): BGR uint8 image -> letterbox (keep aspect, long side to the
input size, pad right and bottom with the mean colour) -> float32 ``(pixel - mean_bgr) * pixel_scale``, NCHW.

:func:`resize` is OpenCV's ``INTER_AREA`` (shrinking) / ``INTER_LINEAR`` (enlarging) when ``cv2`` imports, and
a NumPy re-implementation of both otherwise (a Pi without OpenCV). Measured on the 200 Moxa3K test photos
letterboxed to 512 (the bundled model's input): 92.4% of the NumPy resize's pixels equal OpenCV's and the rest
are 1 grey level apart (never more); mAP@0.5 of the bundled model is 0.6809 with OpenCV, 0.6795 with NumPy
(face AP 0.5413 / 0.5411, mask 0.8205 / 0.8179); 14 ms vs 61 ms an image on a loaded 2-core x86 host.
OpenCV therefore stays the resize wherever it is installed (training, evaluation, the host side of parity,
which prepares the Pi's inputs too), and the NumPy one is the Pi's fallback.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

try:  # optional: the NumPy resize below stands in for it
    import cv2
except ImportError:  # pragma: no cover - exercised by tests/test_core.py in a subprocess
    cv2 = None

BGR_MEAN = (104.0, 117.0, 123.0)


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


def _taps(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A dense [out, in] weight matrix as (input index, weight) per output and tap: each output reads only a few
    neighbouring inputs, so the resize costs O(out x taps), not O(out x in)."""
    taps = max(1, int((w != 0).sum(axis=1).max()))
    first = np.argmax(w != 0, axis=1)
    idx = np.minimum(first[:, None] + np.arange(taps)[None, :], w.shape[1] - 1)
    wt = np.take_along_axis(w, idx, axis=1)
    wt[first[:, None] + np.arange(taps)[None, :] >= w.shape[1]] = 0
    return idx, wt


def resize_numpy(image: np.ndarray, width: int, height: int, area: bool) -> np.ndarray:
    """OpenCV's INTER_AREA (``area``, shrinking only) or INTER_LINEAR (half-pixel centres) for uint8 HxW[xC]
    images: separable weights in float32, applied tap by tap."""
    h_in, w_in = image.shape[:2]
    area = area and height <= h_in and width <= w_in
    weights = _area_weights if area else _linear_weights
    (iy, wy), (ix, wx) = _taps(weights(h_in, height)), _taps(weights(w_in, width))
    img = image.astype(np.float32).reshape(h_in, w_in, -1)
    rows = sum(wy[:, k, None, None] * img[iy[:, k]] for k in range(iy.shape[1]))
    out = sum(wx[None, :, k, None] * rows[:, ix[:, k]] for k in range(ix.shape[1]))
    return np.clip(np.round(out), 0, 255).astype(np.uint8).reshape(height, width, *image.shape[2:])


def resize(image: np.ndarray, width: int, height: int, use_cv2: bool | None = None) -> np.ndarray:
    """``image`` resized to ``width`` x ``height``: area averaging when shrinking, bilinear when enlarging.
    OpenCV when it is installed (``use_cv2=None``), else (or with ``use_cv2=False``) :func:`resize_numpy`."""
    shrink = width * height < image.shape[0] * image.shape[1]
    if cv2 is not None and use_cv2 is not False:
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    if use_cv2:
        raise ImportError("use_cv2=True but OpenCV (cv2) is not installed")
    return resize_numpy(image, width, height, area=shrink)


def letterbox_geometry(height: int, width: int, size: int) -> dict:
    """Where an ``height`` x ``width`` image lands in the ``size`` x ``size`` input (the ports mirror this)."""
    scale = size / max(height, width)
    return {
        "height": height,
        "width": width,
        "size": size,
        "scale": scale,
        "resized_height": min(size, max(1, round(height * scale))),  # a 4000x1 image keeps 1 px
        "resized_width": min(size, max(1, round(width * scale))),
    }


def letterbox(
    image: np.ndarray, size: int, mean_bgr: Sequence[float] = BGR_MEAN, use_cv2: bool | None = None
) -> tuple[np.ndarray, float]:
    """Resize ``image`` so its long side is ``size`` and pad to ``size`` x ``size``. Returns (image, scale)."""
    g = letterbox_geometry(image.shape[0], image.shape[1], size)
    nh, nw = g["resized_height"], g["resized_width"]
    out = np.empty((size, size, 3), dtype=np.uint8)
    out[:] = np.round(np.asarray(mean_bgr)).astype(np.uint8)
    out[:nh, :nw] = resize(image, nw, nh, use_cv2)
    return out, g["scale"]


def resize_short_side(image: np.ndarray, short: int = 840, max_side: int = 2000) -> tuple[np.ndarray, float]:
    """The paper reference's variable-size test input: short side to ``short`` (long side capped)."""
    h, w = image.shape[:2]
    scale = min(short / min(h, w), max_side / max(h, w))
    return resize(image, max(1, round(w * scale)), max(1, round(h * scale))), scale


def normalize(
    image: np.ndarray, mean_bgr: Sequence[float] = BGR_MEAN, layout: str = "NCHW", pixel_scale: float = 1.0
) -> np.ndarray:
    """BGR uint8 HxWx3 -> float32 [1, 3, H, W] (or [1, H, W, 3] for ``layout='NHWC'``):
    ``(pixel - mean) * pixel_scale`` in float32, as every port computes it."""
    x = image.astype(np.float32) - np.asarray(mean_bgr, dtype=np.float32)
    if pixel_scale != 1:
        x = x * np.float32(pixel_scale)
    if layout == "NCHW":
        x = x.transpose(2, 0, 1)
    elif layout != "NHWC":
        raise ValueError(f"unknown layout {layout!r}: use NCHW or NHWC")
    return np.ascontiguousarray(x[None])
