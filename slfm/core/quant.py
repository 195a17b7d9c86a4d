"""Affine int8/uint8 (de)quantisation as TFLite does it; the Kotlin, Swift and JS ports mirror it exactly."""

from __future__ import annotations

import numpy as np


def round_half_away(y: np.ndarray) -> np.ndarray:
    """``std::round`` (TFLite's ``TfLiteRound``): halves away from zero, exactly (2.5 -> 3, -2.5 -> -3).

    Not ``np.round`` (halves to even: 2.5 -> 2) and not ``floor(|y| + 0.5)`` (which rounds the float just
    below 0.5 up, the sum rounding to 1.0 in float32)."""
    y = np.asarray(y, dtype=np.float32)
    t = np.trunc(y)
    return t + np.sign(y) * (np.abs(y - t) >= np.float32(0.5))


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype=np.int8) -> np.ndarray:
    """q = clamp(round(x / scale) + zero_point) in ``dtype``'s range; ``x / scale`` in float32, as on a device."""
    info = np.iinfo(dtype)
    r = round_half_away(np.asarray(x, dtype=np.float32) / np.float32(scale))
    return np.clip(r + int(zero_point), info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """x = (q - zero_point) * scale, in float32."""
    return (np.asarray(q).astype(np.int32) - int(zero_point)).astype(np.float32) * np.float32(scale)
