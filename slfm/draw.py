"""Drawing detections on images."""

from __future__ import annotations

import cv2
import numpy as np

from slfm.metrics import ImageDetections

COLORS = {1: (0, 0, 255), 2: (0, 200, 0)}  # BGR: no mask red, mask green
NAMES = {1: "face", 2: "mask"}  # the data's class names (detections.json "label")
# What people read: "face" alone does not say that the mask is missing.
DISPLAY = {1: "no mask", 2: "mask"}
FONT = cv2.FONT_HERSHEY_SIMPLEX

Rect = tuple[int, int, int, int]  # x1, y1, x2, y2


def display_name(label: int) -> str:
    return DISPLAY.get(int(label), str(label))


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(boxes: np.ndarray, sizes: list[tuple[int, int]], width: int, height: int) -> list[Rect]:
    """A rectangle for each label (``sizes``: its width and height): inside the image, beside its box (above
    it, else below it, else inside its top edge, then stepping down), not over an earlier label where any
    of those places is free."""
    placed: list[Rect] = []
    for (x1, y1, _x2, y2), (w, h) in zip(np.asarray(boxes).reshape(-1, 4), sizes, strict=True):
        w, h = min(w, width), min(h, height)
        x = int(min(max(x1, 0), width - w))
        tops = [int(y1) - h, int(y2), int(y1)] + [int(y1) + k * h for k in range(1, 6)]
        candidates = [(x, min(max(t, 0), height - h)) for t in tops]
        rects = [(cx, cy, cx + w, cy + h) for cx, cy in candidates]
        free = [r for r in rects if not any(_overlaps(r, p) for p in placed)]
        placed.append(free[0] if free else rects[0])
    return placed


def draw(image: np.ndarray, det: ImageDetections) -> np.ndarray:
    out = image.copy()
    height, width = image.shape[:2]
    thick = max(1, round(max(height, width) / 500))
    scale = 0.4 * thick
    texts, sizes = [], []
    for (x1, y1, x2, y2), s, lab in zip(det.boxes, det.scores, det.labels, strict=True):
        cv2.rectangle(out, (int(x1), int(y1)), (int(x2), int(y2)), COLORS.get(int(lab), (255, 0, 0)), thick)
        texts.append(f"{display_name(lab)} {s:.2f}")
        (tw, th), _ = cv2.getTextSize(texts[-1], FONT, scale, thick)
        sizes.append((tw + 2, th + 4))
    for (rx1, ry1, rx2, ry2), text, lab in zip(
        place_labels(det.boxes, sizes, width, height), texts, det.labels, strict=True
    ):
        cv2.rectangle(out, (rx1, ry1), (rx2, ry2), COLORS.get(int(lab), (255, 0, 0)), -1)
        cv2.putText(out, text, (rx1 + 1, ry2 - 3), FONT, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


def to_json(det: ImageDetections) -> list[dict]:
    return [
        {
            "label": NAMES.get(int(lab), str(lab)),
            "display": display_name(lab),
            "score": round(float(s), 5),
            "box": [round(float(v), 2) for v in b],
        }
        for b, s, lab in zip(det.boxes, det.scores, det.labels, strict=True)
    ]
