"""Numbers that say how far an artifact is from its PyTorch reference: raw-output errors and SNR, and
detections matched one-to-one against the reference's detections."""

from __future__ import annotations

import math

import numpy as np

from slfm.metrics import ImageDetections
from slfm.nms import iou

SNR_CAP_DB = 150.0  # identical outputs: report 150 dB rather than infinity (keeps the JSON strict)


def snr_db(ref: np.ndarray, out: np.ndarray) -> float:
    ref = np.asarray(ref, dtype=np.float64)
    err = np.sum((ref - np.asarray(out, dtype=np.float64)) ** 2)
    sig = np.sum(ref**2)
    if err == 0:
        return SNR_CAP_DB
    if sig == 0:
        return -SNR_CAP_DB
    return float(min(10 * math.log10(sig / err), SNR_CAP_DB))


def live_anchors(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Mask [N, A] of the anchors whose reference face or mask probability reaches ``threshold``.

    Only these anchors' box offsets can become detections (the rest are dropped by the score threshold
    before decoding), so box-offset errors are measured on them: the offsets of background anchors carry no
    meaning, and after int8 quantization they dominate an all-anchor SNR. Every anchor where none qualifies.
    """
    live = np.asarray(scores)[..., 1:].max(-1) >= threshold
    return live if live.any() else np.ones_like(live)


def output_errors(ref: np.ndarray, out: np.ndarray) -> dict:
    if ref.shape != out.shape:
        raise ValueError(f"output shape {list(out.shape)} differs from the reference's {list(ref.shape)}")
    d = np.abs(np.asarray(ref, np.float64) - np.asarray(out, np.float64))
    return {"max_abs_error": float(d.max()), "mean_abs_error": float(d.mean()), "snr_db": snr_db(ref, out)}


def match_detections(ref: list[ImageDetections], art: list[ImageDetections], iou_threshold: float = 0.5) -> dict:
    """Greedy one-to-one matching per image (artifact detections by descending score, each to the
    best-overlapping free reference detection of the same label with IoU >= ``iou_threshold``).

    precision = matched / artifact detections, recall = matched / reference detections (1.0 when there is
    nothing to find or to match).
    """
    matched = n_ref = n_art = 0
    for r, a in zip(ref, art, strict=True):
        n_ref += len(r.scores)
        n_art += len(a.scores)
        if len(r.scores) == 0 or len(a.scores) == 0:
            continue
        ov = iou(a.boxes, r.boxes)
        ov[a.labels[:, None] != r.labels[None, :]] = -1.0
        used = np.zeros(len(r.scores), dtype=bool)
        for i in np.argsort(-a.scores, kind="stable"):
            cand = np.where(used, -1.0, ov[i])
            j = int(np.argmax(cand))
            if cand[j] >= iou_threshold:
                used[j] = True
                matched += 1
    return {
        "reference": n_ref,
        "artifact": n_art,
        "matched": matched,
        "precision": matched / n_art if n_art else 1.0,
        "recall": matched / n_ref if n_ref else 1.0,
    }
