"""Training images that hold no face, so that the model answers "nothing" when there is nothing.

Neither training set has an image without people: without negatives a covered camera (a black frame) was
reported as one "mask" at 0.97 covering the frame. A negative sample is one of

- ``crop``: a window of the training image that overlaps none of its boxes (real background: walls, sky, desks);
- ``uniform``: a frame of one colour (black, white, gray or any), letterboxed as a camera frame would be;
- ``noise``: sensor-like or blotchy noise around a random level;
- ``photo``: a face-free photo that scikit-image ships (coffee, a rocket, coins, the moon, bricks, ...), where that
  package is installed. :data:`HELD_OUT_PHOTOS` are never trained on: the no-face test reads them.

Every negative goes through the same photometric distortion, mirror, square padding and resize as a positive.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from slfm.augment import distort, pad_to_square

KINDS = ("crop", "uniform", "noise", "photo")
# scikit-image's bundled photos without people or faces (no download needed): trained on ...
TRAIN_PHOTOS = (
    "coffee",
    "rocket",
    "coins",
    "moon",
    "page",
    "horse",
    "hubble_deep_field",
    "brick",
    "grass",
    "gravel",
    "colorwheel",
    "retina",
    "cell",
)
# ... and kept back for tests/test_negatives.py (a cat's face among them: a hard case the model never saw)
HELD_OUT_PHOTOS = ("chelsea", "text", "immunohistochemistry", "logo", "clock", "checkerboard", "shepp_logan_phantom")


def skimage_photo(name: str) -> np.ndarray:
    """A scikit-image sample photo as 3-channel BGR uint8 (gray and RGBA converted)."""
    import skimage.data

    im = np.asarray(getattr(skimage.data, name)())
    if im.dtype != np.uint8:
        im = (255 * (im.astype(np.float64) / max(float(im.max()), 1e-9))).astype(np.uint8)
    if im.ndim == 2:
        im = np.repeat(im[:, :, None], 3, axis=2)
    return np.ascontiguousarray(im[:, :, 2::-1])  # RGB(A) -> BGR


@functools.lru_cache(maxsize=1)
def training_photos() -> tuple[np.ndarray, ...]:
    """The :data:`TRAIN_PHOTOS` (empty where scikit-image is not installed: ``photo`` negatives are then skipped)."""
    try:
        import skimage.data  # noqa: F401
    except ImportError:
        return ()
    return tuple(skimage_photo(n) for n in TRAIN_PHOTOS)


def face_free_crop(image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, tries: int = 30):
    """A random window (0.15-0.6 of the short side, aspect 0.5-2) touching none of ``boxes`` (pixels, each grown
    by a quarter of its size); None when no such window is found in ``tries``."""
    h, w = image.shape[:2]
    grown = boxes.copy()
    if len(grown):
        pad = (grown[:, 2:] - grown[:, :2]) * 0.25
        grown[:, :2] -= pad
        grown[:, 2:] += pad
    for _ in range(tries):
        side = rng.uniform(0.15, 0.6) * min(h, w)
        aspect = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
        cw, ch = int(min(w, side * np.sqrt(aspect))), int(min(h, side / np.sqrt(aspect)))
        if cw < 16 or ch < 16:
            continue
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        if len(grown):
            hit = (grown[:, 0] < x0 + cw) & (grown[:, 2] > x0) & (grown[:, 1] < y0 + ch) & (grown[:, 3] > y0)
            if hit.any():
                continue
        return image[y0 : y0 + ch, x0 : x0 + cw]
    return None


def uniform_frame(rng: np.random.Generator) -> np.ndarray:
    h, w = int(rng.integers(48, 1281)), int(rng.integers(48, 1281))
    pick = rng.integers(4)
    colour = [(0, 0, 0), (255, 255, 255), (128, 128, 128)][pick] if pick < 3 else tuple(rng.integers(0, 256, 3))
    return np.full((h, w, 3), colour, dtype=np.uint8)


def noise_frame(rng: np.random.Generator) -> np.ndarray:
    h, w = int(rng.integers(48, 1281)), int(rng.integers(48, 1281))
    # low-resolution noise blown up gives blotches; full resolution gives sensor grain
    factor = int(rng.choice([1, 8, 32, 128]))
    gh, gw = max(2, h // factor), max(2, w // factor)
    level, spread = rng.uniform(0, 255), rng.uniform(5, 80)
    grain = rng.normal(level, spread, size=(gh, gw, 1 if rng.integers(2) else 3))
    grain = np.clip(grain, 0, 255).astype(np.uint8)
    grain = np.repeat(grain, 3, axis=2) if grain.shape[2] == 1 else grain
    return cv2.resize(grain, (w, h), interpolation=cv2.INTER_LINEAR)


def negative_image(image: np.ndarray, boxes: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size`` x ``size`` training input with no face in it, made from ``image`` (whose face boxes, in pixels,
    are ``boxes``) or from nothing, as the module docstring lists."""
    photos = training_photos()
    kind = KINDS[int(rng.integers(len(KINDS) if photos else len(KINDS) - 1))]
    frame = None
    if kind == "crop":
        frame = face_free_crop(image, boxes, rng)
    elif kind == "photo":
        photo = photos[int(rng.integers(len(photos)))]
        frame = face_free_crop(photo, np.zeros((0, 4), np.float32), rng) if rng.integers(2) else photo
    elif kind == "noise":
        frame = noise_frame(rng)
    if frame is None:  # "uniform", or no face-free window in this image
        frame = uniform_frame(rng)
    frame = distort(frame, rng)
    if rng.integers(2):
        frame = frame[:, ::-1]
    frame = pad_to_square(frame)
    return cv2.resize(np.ascontiguousarray(frame), (size, size), interpolation=cv2.INTER_LINEAR)


def no_face_probes(sizes: tuple[tuple[int, int], ...] = ((1, 1), (64, 64), (480, 640), (720, 1280))) -> dict:
    """Inputs with no face in them, by name: black, white, gray and noise frames at each (height, width) of
    ``sizes``, and the :data:`HELD_OUT_PHOTOS` where scikit-image is installed. A detector shown any of these
    should report nothing at the demo threshold."""
    rng = np.random.default_rng(0)
    probes = {}
    for h, w in sizes:
        for name, value in (("black", 0), ("white", 255), ("gray", 128)):
            probes[f"{name} {w}x{h}"] = np.full((h, w, 3), value, np.uint8)
        probes[f"noise {w}x{h}"] = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    try:
        import skimage.data  # noqa: F401
    except ImportError:
        return probes
    for name in HELD_OUT_PHOTOS:
        probes[f"photo {name}"] = skimage_photo(name)
    return probes
