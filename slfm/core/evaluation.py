"""VOC mAP@0.5: the one definition (:func:`slfm.metrics.evaluate`), with the class names and per-dataset
grouping every report uses."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from slfm.metrics import ImageDetections, evaluate

CLASS_NAMES = {1: "face", 2: "mask"}


def map50(
    dets: Sequence[ImageDetections],
    gt_boxes: Sequence[np.ndarray],
    gt_labels: Sequence[np.ndarray],
    groups: Sequence[str] | None = None,
) -> dict:
    """{"map50", "ap50" per class, "images"}; with ``groups`` (a dataset name per image), also "by_dataset"."""

    def one(ids):
        r = evaluate([dets[i] for i in ids], [gt_boxes[i] for i in ids], [gt_labels[i] for i in ids], CLASS_NAMES)
        return {"map50": r["map50"], "ap50": r["ap50"], "images": r["images"]}

    out = one(range(len(dets)))
    if groups is not None:
        out["by_dataset"] = {g: one([i for i, x in enumerate(groups) if x == g]) for g in dict.fromkeys(groups)}
    return out
