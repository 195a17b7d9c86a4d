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


def _greedy(boxes: np.ndarray, scores: np.ndarray, suppress) -> np.ndarray:
    """Greedy suppression in descending score order (ties: lower index first).

    ``suppress(ious, kept_index, candidate_indices)`` says which candidates the kept box removes.
    Only kept boxes compute overlaps, so the cost is O(kept x candidates), not O(N^2).
    """
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        order = rest[~suppress(iou(boxes[i : i + 1], boxes[rest])[0], i, rest)]
    return np.asarray(keep, dtype=np.int64)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS: indices of kept boxes, by descending score (ties: lower index first).

    A box is dropped when its IoU with a higher-ranked kept box is greater than ``iou_threshold``.
    """
    return _greedy(boxes, scores, lambda ov, i, rest: ov > iou_threshold)


def batched_nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float) -> np.ndarray:
    """NMS within each label: boxes of different labels never suppress each other. Indices by descending score."""
    return _greedy(boxes, scores, lambda ov, i, rest: (ov > iou_threshold) & (labels[rest] == labels[i]))


def cross_class_suppress(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Face/mask suppression for display: one person gets one label (the demo's rule, not in mAP runs).

    Drops a box when a higher-scoring box of a *different* label overlaps it with IoU greater than
    ``iou_threshold``. Returns kept indices by descending score.
    """
    return _greedy(boxes, scores, lambda ov, i, rest: (ov > iou_threshold) & (labels[rest] != labels[i]))
