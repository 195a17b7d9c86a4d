"""Real images for parity, prepared exactly as on a device (letterbox, BGR mean subtracted, NCHW).

Labelled datasets (``--data``) give mAP; without them the real photos bundled in scikit-image's wheel
(astronaut, coffee, chelsea, rocket) still give raw-output and detection parity, never random tensors.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slfm.config import ModelConfig
from slfm.core import Frame, prepare
from slfm.errors import SlfmError
from slfm.images import DataWarning, read_image
from slfm.voc import load_dataset

SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
DEFAULT_SPLITS = {"moxa3k": "test", "aizoo": "val-sample", "voc": "test"}


@dataclass
class DataSpec:
    kind: str
    root: Path
    split: str

    @classmethod
    def parse(cls, spec: str) -> DataSpec:
        """``KIND:PATH[:SPLIT]``, e.g. ``moxa3k:../shared/data/moxa3k`` or ``aizoo:../shared/data/aizoo:val-sample``."""
        parts = spec.split(":")
        if len(parts) < 2 or parts[0] not in DEFAULT_SPLITS:
            raise SlfmError(f"--data {spec!r}: expected KIND:PATH[:SPLIT] with KIND one of {', '.join(DEFAULT_SPLITS)}")
        split = parts[2] if len(parts) > 2 else DEFAULT_SPLITS[parts[0]]
        return cls(parts[0], Path(parts[1]), split)

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.split}"


@dataclass
class Image:
    dataset: str  # "moxa3k/test", or "photos" (no labels)
    path: str
    image: np.ndarray  # BGR uint8
    gt_boxes: np.ndarray | None = None
    gt_labels: np.ndarray | None = None


def load_images(specs: list[DataSpec], limit: int | None) -> list[Image]:
    """The first ``limit`` images of each dataset (all of them if None), or the bundled photos."""
    out: list[Image] = []
    for spec in specs:
        for s in load_dataset(spec.root, spec.kind, spec.split, limit=limit):
            try:
                image = read_image(s.image, quiet=True)
            except SlfmError as e:
                warnings.warn(f"{e}; skipped", DataWarning, stacklevel=2)
                continue
            out.append(Image(spec.name, str(s.image), image, s.boxes, s.labels))
    if not specs:
        try:
            from skimage import data
        except ImportError:
            raise SlfmError("no --data given and scikit-image (its bundled photos) is not installed") from None
        for name in SKIMAGE_PHOTOS[: limit or None]:
            rgb = getattr(data, name)()
            rgb = np.repeat(rgb[..., None], 3, axis=2) if rgb.ndim == 2 else rgb[..., :3]
            out.append(Image("photos", f"skimage.data.{name}", np.ascontiguousarray(rgb[..., ::-1])))
    return out


def prepare_inputs(images: list[Image], config: ModelConfig, size: int) -> tuple[np.ndarray, list[Frame]]:
    """float32 [N, 3, size, size] and each image's letterbox :class:`slfm.core.Frame`."""
    xs, frames = [], []
    for im in images:
        x, frame = prepare(im.image, config, size)
        xs.append(x[0])
        frames.append(frame)
    return np.stack(xs), frames
