"""Training targets: SSD encoding and anchor matching (IoU 0.35, each box forced onto its best anchor).

NumPy, run per image inside the DataLoader workers. ``encode`` is the inverse of :func:`slfm.codec.decode`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from slfm.nms import iou


def point_form(priors: np.ndarray) -> np.ndarray:
    """(cx, cy, w, h) -> (x1, y1, x2, y2)."""
    return np.concatenate([priors[:, :2] - priors[:, 2:] / 2, priors[:, :2] + priors[:, 2:] / 2], axis=1)


def encode(boxes: np.ndarray, priors: np.ndarray, variances: Sequence[float] = (0.1, 0.2)) -> np.ndarray:
    """Boxes [A, 4] (x1, y1, x2, y2) matched to anchors [A, 4] (cx, cy, w, h) -> offsets [A, 4]."""
    cxcy = ((boxes[:, :2] + boxes[:, 2:]) / 2 - priors[:, :2]) / (variances[0] * priors[:, 2:])
    wh = np.log(np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-8) / priors[:, 2:]) / variances[1]
    return np.concatenate([cxcy, wh], axis=1).astype(np.float32)


def match(
    truths: np.ndarray,
    labels: np.ndarray,
    priors: np.ndarray,
    threshold: float = 0.35,
    variances: Sequence[float] = (0.1, 0.2),
) -> tuple[np.ndarray, np.ndarray]:
    """Assign ground truth (normalised x1y1x2y2 [K, 4], labels [K] in 1..C-1) to anchors.

    Returns offsets [A, 4] and class targets [A] (0 = background), as the reference: every anchor
    takes its best-overlapping box; anchors under ``threshold`` become background; each box whose
    best anchor overlaps it by at least 0.2 keeps that anchor whatever the threshold.
    """
    a = priors.shape[0]
    loc_t = np.zeros((a, 4), dtype=np.float32)
    conf_t = np.zeros(a, dtype=np.int64)
    if truths.shape[0] == 0:
        return loc_t, conf_t
    overlaps = iou(truths, point_form(priors))  # [K, A]
    best_prior_idx = overlaps.argmax(1)
    best_prior_overlap = overlaps[np.arange(truths.shape[0]), best_prior_idx]
    valid = best_prior_overlap >= 0.2
    if not valid.any():
        return loc_t, conf_t
    best_truth_idx = overlaps.argmax(0)
    best_truth_overlap = overlaps.max(0)
    best_truth_overlap[best_prior_idx[valid]] = 2.0
    for j in range(truths.shape[0]):
        best_truth_idx[best_prior_idx[j]] = j
    conf_t = labels[best_truth_idx].astype(np.int64)
    conf_t[best_truth_overlap < threshold] = 0
    loc_t = encode(truths[best_truth_idx], priors, variances)
    loc_t[conf_t == 0] = 0.0
    return loc_t, conf_t
