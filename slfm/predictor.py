"""PyTorch (or any runner's) inference on images: :mod:`slfm.core` prepares the input and decodes the outputs."""

from __future__ import annotations

import numpy as np
import torch

from slfm.artifact import ArtifactMeta
from slfm.config import ModelConfig
from slfm.core import DEMO, ImageDetections, PostprocessConfig, decode, prepare, softmax


class Predictor:
    """Runs an SL-FMDet model on BGR images and returns detections in image pixels.

    ``model`` is the PyTorch module, or any runner ``x [1, 3, H, W] -> (loc [A, 4], scores [A, C])``
    (an artifact loaded by :func:`slfm.device_tests.runtimes.load_runner`): pre- and post-processing are the same.
    ``config`` is the model config, or an artifact's :class:`slfm.artifact.ArtifactMeta` (its ``pixel_scale`` too).
    """

    def __init__(
        self,
        model,
        config: ModelConfig | ArtifactMeta,
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
        x, frame = prepare(image, self.config, self.size, self.mode)
        return decode(self.raw(x), self.config, self.post, frame)
