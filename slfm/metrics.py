"""Detection metrics: VOC AP at IoU 0.5 (all-point interpolation, as the paper) and COCO-style
AP@[.5:.95] (101-point, up to 100 detections an image, as pycocotools), overall and by face size."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from slfm.nms import box_area, iou


@dataclass
class ImageDetections:
    boxes: np.ndarray  # [K, 4] pixels
    scores: np.ndarray  # [K]
    labels: np.ndarray  # [K]


# COCO's face-size buckets (pixels of the original image, box area w*h), as pycocotools' areaRng.
AREA_RANGES: dict[str, tuple[float, float]] = {
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e5**2),
}


def _match_image(det_boxes, gt_boxes, thresholds: np.ndarray, rule: str) -> np.ndarray:
    """True-positive flags [T, K] for detections already sorted by descending score.

    rule 'voc': a detection takes its best-overlap ground truth; TP if IoU > t and that box is free.
    rule 'coco': a detection takes the best free ground truth with IoU >= t (``_match_coco`` with nothing ignored).
    """
    if rule == "coco":
        return _match_coco(det_boxes, gt_boxes, np.zeros(gt_boxes.shape[0], bool), thresholds)[0]
    tp = np.zeros((thresholds.size, det_boxes.shape[0]), dtype=bool)
    if det_boxes.shape[0] == 0 or gt_boxes.shape[0] == 0:
        return tp
    ov = iou(det_boxes, gt_boxes).astype(np.float64)
    for ti, t in enumerate(thresholds):
        used = np.zeros(gt_boxes.shape[0], dtype=bool)
        for d in range(det_boxes.shape[0]):
            g = int(np.argmax(ov[d]))
            if ov[d, g] > t and not used[g]:
                used[g] = tp[ti, d] = True
    return tp


def _match_coco(det_boxes, gt_boxes, gt_ignore: np.ndarray, thresholds: np.ndarray):
    """pycocotools' matching: ([T, K] matched, [T, K] matched to an ignored ground truth).

    Each detection (sorted by descending score) takes the free ground truth of highest IoU >= t, preferring
    ones that are not ignored: once it holds a regular box it never moves to an ignored one.
    """
    k = det_boxes.shape[0]
    matched = np.zeros((thresholds.size, k), dtype=bool)
    on_ignored = np.zeros((thresholds.size, k), dtype=bool)
    if k == 0 or gt_boxes.shape[0] == 0:
        return matched, on_ignored
    ov = iou(det_boxes, gt_boxes).astype(np.float64)
    groups = [np.flatnonzero(~gt_ignore), np.flatnonzero(gt_ignore)]  # regular boxes first
    for ti, t in enumerate(thresholds):
        used = np.zeros(gt_boxes.shape[0], dtype=bool)
        for d in range(k):
            for is_ignored, idx in enumerate(groups):
                if idx.size == 0:
                    continue
                cand = np.where(used[idx], -1.0, ov[d, idx])
                j = idx.size - 1 - int(np.argmax(cand[::-1]))  # the last of equal IoUs, as pycocotools' loop
                if cand[j] >= min(t, 1 - 1e-10):
                    used[idx[j]] = matched[ti, d] = True
                    on_ignored[ti, d] = bool(is_ignored)
                    break
    return matched, on_ignored


def coco_ap_by_size(
    detections: Sequence[ImageDetections],
    gt_boxes: Sequence[np.ndarray],
    gt_labels: Sequence[np.ndarray],
    class_names: dict[int, str],
    max_dets: int = 100,
) -> dict:
    """COCO AP@[.5:.95] per face-size bucket (pycocotools' AP_small/medium/large): ground truth outside the
    bucket is ignored, and so are unmatched detections outside it. Per bucket: the mean over classes that have
    ground truth there (None when none has), the per-class AP and the ground-truth count."""
    coco_t = np.linspace(0.5, 0.95, 10)
    out: dict = {}
    for bucket, (lo, hi) in AREA_RANGES.items():
        per_class, counts = {}, {}
        for label, name in class_names.items():
            scores: list[list[np.ndarray]] = [[] for _ in coco_t]
            tps: list[list[np.ndarray]] = [[] for _ in coco_t]
            n_gt = 0
            for det, gb, gl in zip(detections, gt_boxes, gt_labels, strict=True):
                g = gb[gl == label]
                ga = box_area(g)
                g_ign = (ga < lo) | (ga > hi)
                n_gt += int((~g_ign).sum())
                m = det.labels == label
                b, sc = det.boxes[m], det.scores[m]
                order = np.argsort(-sc, kind="mergesort")[:max_dets]
                b, sc = b[order], sc[order]
                matched, on_ign = _match_coco(b, g, g_ign, coco_t)
                da = box_area(b)
                keep = ~(on_ign | (~matched & ((da < lo) | (da > hi))))
                for ti in range(coco_t.size):
                    scores[ti].append(sc[keep[ti]])
                    tps[ti].append(matched[ti][keep[ti]])
            counts[name] = n_gt
            if n_gt == 0:
                continue
            aps = []
            for ti in range(coco_t.size):
                rec, prec, _ = _pr_curve(scores[ti], tps[ti], n_gt)
                aps.append(coco_ap(rec, prec))
            per_class[name] = float(np.mean(aps))
        out[bucket] = {
            "ap50_95": float(np.mean(list(per_class.values()))) if per_class else None,
            "per_class": per_class,
            "gt_counts": counts,
        }
    return out


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope, all points (VOC2010+)."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def coco_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """101-point interpolated AP as pycocotools computes it."""
    if precision.size == 0:
        return 0.0
    pr = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
    q = np.zeros(idx.size)
    valid = idx < pr.size
    q[valid] = pr[idx[valid]]
    return float(np.mean(q))


def _pr_curve(scores: list[np.ndarray], tps: list[np.ndarray], n_gt: int):
    if not scores or n_gt == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    s = np.concatenate(scores)
    tp = np.concatenate(tps, axis=-1)
    order = np.argsort(-s, kind="mergesort")
    tp = tp[..., order]
    tp_cum = np.cumsum(tp, axis=-1)
    fp_cum = np.cumsum(~tp, axis=-1)
    recall = tp_cum / n_gt
    precision = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
    return recall, precision, s[order]


def voc_image_matches(
    detections: Sequence[ImageDetections],
    gt_boxes: Sequence[np.ndarray],
    gt_labels: Sequence[np.ndarray],
    class_names: dict[int, str],
) -> dict[str, list[tuple[np.ndarray, np.ndarray, int]]]:
    """Per class, per image: (scores in descending order, TP flags at IoU 0.5, ground-truth count). VOC matching
    never looks across images, so any resampled test set's mAP@0.5 follows from these without matching again
    (:func:`map50_from_matches`)."""
    out = {}
    for label, name in class_names.items():
        rows = []
        for det, gb, gl in zip(detections, gt_boxes, gt_labels, strict=True):
            g = gb[gl == label]
            m = det.labels == label
            b, s = det.boxes[m], det.scores[m]
            order = np.argsort(-s, kind="mergesort")
            rows.append((s[order], _match_image(b[order], g, np.array([0.5]), "voc")[0], int(g.shape[0])))
        out[name] = rows
    return out


def map50_from_matches(matches: dict[str, list[tuple[np.ndarray, np.ndarray, int]]], idx=None) -> float:
    """mAP@0.5 of the images ``idx`` (repeats allowed; None: all), equal to :func:`evaluate`'s on that list."""
    aps = []
    for rows in matches.values():
        sel = rows if idx is None else [rows[i] for i in idx]
        n_gt = sum(r[2] for r in sel)
        if n_gt == 0:
            continue
        rec, prec, _ = _pr_curve([r[0] for r in sel], [r[1] for r in sel], n_gt)
        aps.append(voc_ap(rec, prec))
    return float(np.mean(aps)) if aps else 0.0


def evaluate(
    detections: Sequence[ImageDetections],
    gt_boxes: Sequence[np.ndarray],
    gt_labels: Sequence[np.ndarray],
    class_names: dict[int, str],
    coco_max_dets: int = 100,
) -> dict:
    """Per-class VOC AP@0.5 and COCO AP@[.5:.95] plus their means, and the PR curves at IoU 0.5."""
    coco_t = np.linspace(0.5, 0.95, 10)
    out: dict = {
        "images": len(detections),
        "ap50": {},
        "ap50_95": {},
        "ap50_coco101": {},
        "pr_curves": {},
        "gt_counts": {},
    }
    for label, name in class_names.items():
        v_scores, v_tps, c_scores, c_tps = [], [], [], []
        n_gt = 0
        for det, gb, gl in zip(detections, gt_boxes, gt_labels, strict=True):
            g = gb[gl == label]
            n_gt += g.shape[0]
            m = det.labels == label
            b, s = det.boxes[m], det.scores[m]
            order = np.argsort(-s, kind="mergesort")
            b, s = b[order], s[order]
            v_scores.append(s)
            v_tps.append(_match_image(b, g, np.array([0.5]), "voc")[0])
            b, s = b[:coco_max_dets], s[:coco_max_dets]
            c_scores.append(s)
            c_tps.append(_match_image(b, g, coco_t, "coco"))
        out["gt_counts"][name] = n_gt
        if n_gt == 0:
            continue
        rec, prec, _ = _pr_curve(v_scores, v_tps, n_gt)
        out["ap50"][name] = voc_ap(rec, prec)
        out["pr_curves"][name] = {"recall": rec.tolist(), "precision": prec.tolist()}
        crec, cprec, _ = _pr_curve(c_scores, c_tps, n_gt)
        per_t = [coco_ap(crec[i], cprec[i]) if crec.size else 0.0 for i in range(coco_t.size)]
        out["ap50_95"][name] = float(np.mean(per_t))
        out["ap50_coco101"][name] = per_t[0]
    aps = list(out["ap50"].values())
    out["map50"] = float(np.mean(aps)) if aps else 0.0
    out["map50_95"] = float(np.mean(list(out["ap50_95"].values()))) if aps else 0.0
    out["ap50_95_by_size"] = coco_ap_by_size(detections, gt_boxes, gt_labels, class_names, coco_max_dets)
    return out
