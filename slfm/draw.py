"""Drawing detections on images."""

from __future__ import annotations

import cv2
import numpy as np

from slfm.metrics import ImageDetections

COLORS = {1: (0, 0, 255), 2: (0, 200, 0)}  # BGR: face red, mask green
NAMES = {1: "face", 2: "mask"}


def draw(image: np.ndarray, det: ImageDetections) -> np.ndarray:
    out = image.copy()
    thick = max(1, round(max(image.shape[:2]) / 500))
    for (x1, y1, x2, y2), s, lab in zip(det.boxes, det.scores, det.labels, strict=True):
        color = COLORS.get(int(lab), (255, 0, 0))
        p1, p2 = (int(x1), int(y1)), (int(x2), int(y2))
        cv2.rectangle(out, p1, p2, color, thick)
        text = f"{NAMES.get(int(lab), lab)} {s:.2f}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, thick)
        top = max(p1[1] - th - 4, 0)
        cv2.rectangle(out, (p1[0], top), (p1[0] + tw + 2, top + th + 4), color, -1)
        cv2.putText(
            out,
            text,
            (p1[0] + 1, top + th + 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * thick,
            (255, 255, 255),
            thick,
            cv2.LINE_AA,
        )
    return out


def to_json(det: ImageDetections) -> list[dict]:
    return [
        {"label": NAMES.get(int(lab), str(lab)), "score": round(float(s), 5), "box": [round(float(v), 2) for v in b]}
        for b, s, lab in zip(det.boxes, det.scores, det.labels, strict=True)
    ]
