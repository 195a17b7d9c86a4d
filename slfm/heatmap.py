"""Gaussian heatmap targets for the auxiliary task, made on the fly from the boxes.

A face box gives one Gaussian over the box; a mask box a Gaussian over the box's lower half (the
mask region). Sigma is the (half-)box size / 6 on each axis. Overlaps take the maximum.
"""

from __future__ import annotations

import numpy as np

MASK_LABEL = 2


def gaussian_heatmap(boxes: np.ndarray, labels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boxes normalised (x1, y1, x2, y2) [K, 4], labels [K] -> heatmap float32 [height, width] in [0, 1]."""
    heat = np.zeros((height, width), dtype=np.float32)
    if boxes.shape[0] == 0:
        return heat
    b = boxes.astype(np.float32) * np.array([width, height, width, height], dtype=np.float32)
    y1 = np.where(labels == MASK_LABEL, (b[:, 1] + b[:, 3]) / 2, b[:, 1])
    cx = (b[:, 0] + b[:, 2]) / 2
    cy = (y1 + b[:, 3]) / 2
    sx = np.maximum((b[:, 2] - b[:, 0]) / 6, 0.5)
    sy = np.maximum((b[:, 3] - y1) / 6, 0.5)
    xs = np.arange(width, dtype=np.float32) + 0.5
    ys = np.arange(height, dtype=np.float32) + 0.5
    gx = np.exp(-((xs[None, :] - cx[:, None]) ** 2) / (2 * sx[:, None] ** 2))  # [K, W]
    gy = np.exp(-((ys[None, :] - cy[:, None]) ** 2) / (2 * sy[:, None] ** 2))  # [K, H]
    return np.max(gy[:, :, None] * gx[:, None, :], axis=0).astype(np.float32)
