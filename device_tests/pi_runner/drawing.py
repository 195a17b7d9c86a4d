"""Boxes and labels drawn with numpy alone (when OpenCV is absent): rectangle outlines and a 5x7 bitmap
font for the label text ("face 0.97"). With OpenCV the runner uses ``slfm.draw`` instead."""

from __future__ import annotations

import numpy as np

COLORS = {1: (0, 0, 255), 2: (0, 200, 0)}  # BGR, as slfm.draw: face red, mask green
NAMES = {1: "face", 2: "mask"}
_GLYPHS = {
    "0": "01110 10001 10011 10101 11001 10001 01110",
    "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111",
    "3": "11110 00001 00001 01110 00001 00001 11110",
    "4": "00010 00110 01010 10010 11111 00010 00010",
    "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110",
    "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110",
    "9": "01110 10001 10001 01111 00001 00010 01100",
    ".": "00000 00000 00000 00000 00000 01100 01100",
    "a": "00000 00000 01110 00001 01111 10001 01111",
    "c": "00000 00000 01110 10000 10000 10001 01110",
    "e": "00000 00000 01110 10001 11111 10000 01110",
    "f": "00110 01001 01000 11100 01000 01000 01000",
    "k": "10000 10000 10010 10100 11000 10100 10010",
    "m": "00000 00000 11010 10101 10101 10001 10001",
    "s": "00000 00000 01110 10000 01110 00001 11110",
}
FONT = {ch: np.array([[c == "1" for c in row] for row in rows.split()], dtype=bool) for ch, rows in _GLYPHS.items()}
BLANK = np.zeros((7, 5), dtype=bool)


def text_mask(text: str, scale: int = 1) -> np.ndarray:
    cells = [np.pad(FONT.get(ch, BLANK), ((0, 0), (0, 1))) for ch in text]
    m = np.concatenate(cells, axis=1) if cells else np.zeros((7, 0), dtype=bool)
    return np.kron(m, np.ones((scale, scale), dtype=bool)).astype(bool)


def draw(image: np.ndarray, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    out = image.copy()
    h, w = out.shape[:2]
    t = max(1, round(max(h, w) / 500))
    for (x1, y1, x2, y2), s, lab in zip(np.round(boxes).astype(int), scores, labels, strict=True):
        color = COLORS.get(int(lab), (255, 0, 0))
        x1, x2 = np.clip([x1, x2], 0, w - 1)
        y1, y2 = np.clip([y1, y2], 0, h - 1)
        out[y1 : y1 + t, x1 : x2 + 1] = color
        out[max(y2 - t + 1, 0) : y2 + 1, x1 : x2 + 1] = color
        out[y1 : y2 + 1, x1 : x1 + t] = color
        out[y1 : y2 + 1, max(x2 - t + 1, 0) : x2 + 1] = color
        m = text_mask(f"{NAMES.get(int(lab), str(lab))} {s:.2f}", t)
        mh, mw = m.shape
        top = max(y1 - mh - 4, 0)
        bh, bw = min(mh + 4, h - top), min(mw + 4, w - x1)
        out[top : top + bh, x1 : x1 + bw] = color
        region = out[top + 2 : top + 2 + mh, x1 + 2 : x1 + 2 + mw]
        region[m[: region.shape[0], : region.shape[1]]] = (255, 255, 255)
    return out
