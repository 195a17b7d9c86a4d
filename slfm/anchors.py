"""Anchor (prior box) generation: the one definition, mirrored by the Kotlin and Swift demo code.

NumPy only, so the Raspberry Pi runner can ship this file without torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def feature_sizes(height: int, width: int, steps: Sequence[int]) -> list[tuple[int, int]]:
    """Feature map sizes the backbone produces for an input of ``height`` x ``width``."""
    return [(math.ceil(height / s), math.ceil(width / s)) for s in steps]


def anchors(
    height: int,
    width: int,
    min_sizes: Sequence[Sequence[int]] = ((16, 32), (64, 128), (256, 512)),
    steps: Sequence[int] = (8, 16, 32),
) -> np.ndarray:
    """Anchors as float32 [A, 4] rows (cx, cy, w, h), normalised to the input size.

    Order: level, then row (y), then column (x), then the level's min sizes, matching the heads'
    (y, x, anchor) flattening. 16800 anchors at 640x640.
    """
    out = []
    for (fh, fw), step, sizes in zip(feature_sizes(height, width, steps), steps, min_sizes, strict=True):
        ys, xs = np.meshgrid(np.arange(fh), np.arange(fw), indexing="ij")
        cx = (xs.reshape(-1, 1) + 0.5) * step / width
        cy = (ys.reshape(-1, 1) + 0.5) * step / height
        s = np.asarray(sizes, dtype=np.float64).reshape(1, -1)
        level = np.stack(np.broadcast_arrays(cx, cy, s / width, s / height), axis=-1)  # [H*W, sizes, 4]
        out.append(level.reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)
