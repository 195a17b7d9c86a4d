"""The runner interface: ``runner(x NCHW float32) -> (loc [A, 4], scores [A, C])``, what
:class:`slfm.predictor.Predictor` takes as its model.

:class:`Runner` is the base of every artifact runtime (:mod:`slfm.device_tests.runtimes`); :class:`TorchRunner`
puts a PyTorch module (e.g. a fake-quantized graph, for quantize's evaluation) behind the same API.
"""

from __future__ import annotations

import numpy as np

from slfm.artifact import ArtifactMeta
from slfm.errors import SlfmError


class Runner:
    """Base: ``__call__(x NCHW float32) -> (loc [A, 4], scores [A, C])``."""

    name = "runner"

    def __init__(self, meta: ArtifactMeta | None) -> None:
        self.meta = meta

    def _validate(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self.meta is not None:
            s = self.meta.image_size
            if x.shape != (1, 3, s, s):
                raise SlfmError(f"{self.name}: expected input [1, 3, {s}, {s}] (NCHW float32), got {list(x.shape)}")
        return x

    def _check(self, x: np.ndarray) -> np.ndarray:
        x = self._validate(x)
        if self.meta is not None and self.meta.layout == "NHWC":
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        return x

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class TorchRunner(Runner):
    """A PyTorch module with outputs ``(loc, scores)`` (e.g. a fake-quantized graph) behind the same API."""

    name = "torch"

    def __init__(self, module, meta: ArtifactMeta | None = None) -> None:
        super().__init__(meta)
        self.module = module

    def __call__(self, x):
        import torch

        with torch.no_grad():
            loc, scores = self.module(torch.from_numpy(np.asarray(x, dtype=np.float32)))
        return loc[0].numpy(), scores[0].numpy()
