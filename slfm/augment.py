"""Training augmentation, as the reference: random square crop (0.3-1.0 of the short side, boxes kept
when their centre stays inside), photometric distortion, horizontal mirror, pad to square, resize.

With ``full_image_prob`` > 0 a sample skips the crop with that probability and is letterboxed whole, as
at test time: the crops alone (at most the short side, resized to the input) enlarge faces beyond what a
whole-image letterbox shows (tests/test_targets.py measures it on Moxa3K), so small faces are under-trained."""

from __future__ import annotations

import cv2
import numpy as np

from slfm.config import BGR_MEAN

CROP_SCALES = (0.3, 0.45, 0.6, 0.8, 1.0)
_INTERPOLATIONS = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA, cv2.INTER_NEAREST, cv2.INTER_LANCZOS4)


def random_crop(image, boxes, labels, rng: np.random.Generator, tries: int = 250):
    """Square crop of a random 0.3-1.0 of the short side; boxes whose centres fall outside are dropped."""
    h, w = image.shape[:2]
    for _ in range(tries):
        side = int(rng.choice(CROP_SCALES) * min(h, w))
        left = int(rng.integers(0, w - side + 1))
        top = int(rng.integers(0, h - side + 1))
        roi = np.array([left, top, left + side, top + side], dtype=np.float32)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        inside = np.all((centres > roi[:2]) & (centres < roi[2:]), axis=1)
        if not inside.any():
            continue
        b = boxes[inside].copy()
        b[:, :2] = np.maximum(b[:, :2], roi[:2]) - roi[:2]
        b[:, 2:] = np.minimum(b[:, 2:], roi[2:]) - roi[:2]
        ok = np.all(b[:, 2:] - b[:, :2] > 0, axis=1)
        if not ok.any():
            continue
        return image[top : top + side, left : left + side], b[ok], labels[inside][ok]
    return image, boxes, labels


def distort(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast, saturation and hue, each applied with probability 1/2."""
    img = image.astype(np.float32)

    def brightness(x):
        return x + rng.uniform(-32, 32) if rng.integers(2) else x

    def contrast(x):
        return x * rng.uniform(0.5, 1.5) if rng.integers(2) else x

    def hsv(x):
        x = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_BGR2HSV).astype(np.float32)
        if rng.integers(2):
            x[:, :, 1] *= rng.uniform(0.5, 1.5)
        if rng.integers(2):
            x[:, :, 0] = (x[:, :, 0] + rng.integers(-18, 19)) % 180
        x = np.clip(x, 0, [179, 255, 255])
        return cv2.cvtColor(x.astype(np.uint8), cv2.COLOR_HSV2BGR).astype(np.float32)

    steps = (brightness, contrast, hsv) if rng.integers(2) else (brightness, hsv, contrast)
    for step in steps:
        img = step(img)
    return np.clip(img, 0, 255).astype(np.uint8)


def mirror(image, boxes, rng: np.random.Generator):
    if rng.integers(2):
        w = image.shape[1]
        image = image[:, ::-1]
        boxes = boxes.copy()
        boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
    return image, boxes


def pad_to_square(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    if h == w:
        return image
    side = max(h, w)
    out = np.empty((side, side, 3), dtype=image.dtype)
    out[:] = np.round(np.asarray(BGR_MEAN)).astype(np.uint8)
    out[:h, :w] = image
    return out


def augment(image, boxes, labels, size: int, rng: np.random.Generator, full_image_prob: float = 0.0):
    """Pixel boxes in, an image of ``size`` x ``size`` and boxes normalised to it out."""
    if not (full_image_prob > 0 and rng.random() < full_image_prob):
        image, boxes, labels = random_crop(image, boxes, labels, rng)
    image = distort(image, rng)
    image, boxes = mirror(image, boxes, rng)
    image = pad_to_square(image)
    side = image.shape[0]
    image = cv2.resize(np.ascontiguousarray(image), (size, size), interpolation=_INTERPOLATIONS[rng.integers(5)])
    return image, boxes / side, labels
