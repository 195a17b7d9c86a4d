"""PyTorch inference on images: preprocess, run, postprocess, map boxes back to image pixels."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from slfm.anchors import anchors
from slfm.config import ModelConfig
from slfm.metrics import ImageDetections
from slfm.postprocess import DEMO, PostprocessConfig, postprocess, softmax
from slfm.preprocess import letterbox, normalize, resize_short_side

MODES = ("letterbox", "reference")


@lru_cache(maxsize=32)
def cached_anchors(height: int, width: int, min_sizes: tuple, steps: tuple) -> np.ndarray:
    return anchors(height, width, min_sizes, steps)


def prepare(image: np.ndarray, config: ModelConfig, mode: str = "letterbox", size: int | None = None):
    """BGR image -> (input [1, 3, H, W] float32, scale from image pixels to input pixels)."""
    if mode == "letterbox":
        img, scale = letterbox(image, size or config.image_size, config.mean_bgr)
    elif mode == "reference":
        img, scale = resize_short_side(image, size or 840)
    else:
        raise ValueError(f"unknown inference mode {mode!r}: use one of {MODES}")
    return normalize(img, config.mean_bgr), scale


def to_image_pixels(boxes: np.ndarray, input_hw: tuple[int, int], scale: float, image_hw: tuple[int, int]):
    h, w = input_hw
    px = boxes * np.array([w, h, w, h], dtype=np.float32) / scale
    px[:, [0, 2]] = np.clip(px[:, [0, 2]], 0, image_hw[1])
    px[:, [1, 3]] = np.clip(px[:, [1, 3]], 0, image_hw[0])
    return px


class Predictor:
    """Runs an SL-FMDet model on BGR images and returns detections in image pixels.

    ``model`` is the PyTorch module, or any runner ``x [1, 3, H, W] -> (loc [A, 4], scores [A, C])``
    (an artifact loaded by :func:`slfm.convert.runtimes.load_runner`): pre- and post-processing are the same.
    """

    def __init__(
        self,
        model,
        config: ModelConfig,
        mode: str = "letterbox",
        size: int | None = None,
        post: PostprocessConfig = DEMO,
    ) -> None:
        self.model = model.eval() if isinstance(model, torch.nn.Module) else model
        self.config = config
        self.mode = mode
        self.size = size
        self.post = post

    def raw(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw outputs for a prepared input: (loc [A, 4], class probabilities [A, C])."""
        if not isinstance(self.model, torch.nn.Module):
            return self.model(x)
        with torch.no_grad():
            loc, conf = self.model(torch.from_numpy(x))
        return loc[0].numpy(), softmax(conf[0].numpy())

    def __call__(self, image: np.ndarray) -> ImageDetections:
        x, scale = prepare(image, self.config, self.mode, self.size)
        loc, scores = self.raw(x)
        h, w = x.shape[2:]
        priors = cached_anchors(h, w, self.config.min_sizes, self.config.steps)
        boxes, s, labels = postprocess(loc, scores, priors, self.config.variances, self.post)
        return ImageDetections(to_image_pixels(boxes, (h, w), scale, image.shape[:2]), s, labels)
