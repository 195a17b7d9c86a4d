"""IoU, non-maximum suppression per class, and cross-class suppression. NumPy only; the one definition
the demo apps mirror."""

from __future__ import annotations

import numpy as np


def box_area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes a [N, 4] and b [M, 4] (x1, y1, x2, y2) -> [N, M]."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS: indices of kept boxes, by descending score (ties: lower index first).

    A box is dropped when its IoU with a higher-ranked kept box is greater than ``iou_threshold``.
    """
    order = np.argsort(-scores, kind="stable")
    if order.size == 0:
        return order.astype(np.int64)
    overlaps = iou(boxes[order], boxes[order])
    keep = np.ones(order.size, dtype=bool)
    for i in range(order.size):
        if keep[i]:
            keep[i + 1 :] &= overlaps[i, i + 1 :] <= iou_threshold
    return order[keep].astype(np.int64)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float) -> np.ndarray:
    """NMS within each label: boxes of different labels never suppress each other. Indices by descending score."""
    if boxes.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    # Shift each label's boxes to a disjoint region so one NMS pass never mixes labels.
    span = float(np.max(boxes[:, 2:]) - min(float(np.min(boxes[:, :2])), 0.0)) + 1.0
    shifted = boxes + (labels.astype(np.float32) * span)[:, None]
    return nms(shifted, scores, iou_threshold)


def cross_class_suppress(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float) -> np.ndarray:
    """The reference's face/mask suppression: one person gets one label.

    Drops a box when a higher-scoring box of a *different* label overlaps it with IoU greater than
    ``iou_threshold``. Returns kept indices by descending score.
    """
    order = np.argsort(-scores, kind="stable")
    if order.size == 0:
        return order.astype(np.int64)
    overlaps = iou(boxes[order], boxes[order])
    lab = labels[order]
    keep = np.ones(order.size, dtype=bool)
    for i in range(order.size):
        if keep[i]:
            keep[i + 1 :] &= ~((overlaps[i, i + 1 :] > iou_threshold) & (lab[i + 1 :] != lab[i]))
    return order[keep].astype(np.int64)
