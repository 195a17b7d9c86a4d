"""Real images for parity and calibration, prepared exactly as on a device (letterbox, BGR mean subtracted, NCHW).

Labelled datasets (``--data``) give mAP; without them the real photos bundled in scikit-image's wheel
(astronaut, coffee, chelsea, rocket) still give raw-output and detection parity, never random tensors.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slfm.config import ModelConfig
from slfm.core import Frame, prepare
from slfm.errors import SlfmError
from slfm.images import DataWarning, read_image
from slfm.layouts import KINDS, layout
from slfm.voc import load_dataset

SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


@dataclass
class DataSpec:
    kind: str
    root: Path
    split: str

    @classmethod
    def parse(cls, spec: str) -> DataSpec:
        """The deprecated ``--data KIND:PATH[:SPLIT]``, e.g. ``moxa3k:../shared/data/moxa3k`` or
        ``aizoo:../shared/data/aizoo:val-sample`` (now ``--data PATH --dataset KIND [--split SPLIT]``)."""
        parts = spec.split(":")
        if len(parts) < 2 or parts[0] not in KINDS:
            raise SlfmError(f"--data {spec!r}: expected KIND:PATH[:SPLIT] with KIND one of {', '.join(KINDS)}")
        split = parts[2] if len(parts) > 2 else layout(parts[0]).test_split
        return cls(parts[0], Path(parts[1]), split)

    @staticmethod
    def legacy(value: str) -> bool:
        """``value`` is the old ``KIND:PATH[:SPLIT]`` form (not a folder that happens to start with ``KIND:``)."""
        kind, sep, _ = value.partition(":")
        return bool(sep) and kind in KINDS and not Path(value).exists()

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


def data_specs(data: Sequence[str], kinds: Sequence[str] = (), splits: Sequence[str] = ()) -> list[DataSpec]:
    """``--data PATH --dataset KIND [--split S]``, repeated and paired by position as for ``slfm train`` (one
    ``--dataset`` / ``--split`` per ``--data`` or one for all; default moxa3k, and each layout's test split). A
    ``--data KIND:PATH[:SPLIT]`` (the old form) still works, with a deprecation note."""
    from slfm.sources import per_data

    kinds_ = per_data(kinds, len(data), "--dataset", None)
    specs = []
    for d, kind, split in zip(data, kinds_, per_data(splits, len(data), "--split", None), strict=True):
        root = Path(d)
        if DataSpec.legacy(d):
            warnings.warn(
                f"--data {d}: KIND:PATH[:SPLIT] is deprecated; use --data PATH --dataset KIND [--split SPLIT]",
                DataWarning,
                stacklevel=2,
            )
            old = DataSpec.parse(d)
            if kind not in (None, old.kind):
                raise SlfmError(f"--data {d} names the {old.kind} layout but --dataset says {kind}")
            kind, root, split = old.kind, old.root, split or old.split
        kind = kind or "moxa3k"
        specs.append(DataSpec(kind, root, split or layout(kind).test_split))
    return specs


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
