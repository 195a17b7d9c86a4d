"""PyTorch dataset: image -> (normalised tensor, anchor targets, heatmap target), all made in the workers."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch.utils.data import Dataset

from slfm.anchors import anchors
from slfm.augment import augment
from slfm.config import ModelConfig
from slfm.core.image import letterbox, normalize
from slfm.errors import SlfmError
from slfm.heatmap import gaussian_heatmap
from slfm.images import DataWarning, read_image
from slfm.match import match
from slfm.negatives import negative_image
from slfm.voc import Sample


def decode_reduction(width: int, height: int, size: int) -> int:
    """Largest JPEG decode reduction (1, 2, 4, 8) that keeps the short side >= 1.5x the training size."""
    r = 1
    while r < 8 and min(width, height) / (r * 2) >= 1.5 * size:
        r *= 2
    return r


class DetectionDataset(Dataset):
    """Training (augmented) or plain letterboxed samples with SSD targets for ``config.image_size``.

    Randomness is a function of (seed, epoch, index), so a resumed run sees the same augmentations.
    """

    def __init__(
        self,
        samples: list[Sample],
        config: ModelConfig,
        train: bool = True,
        seed: int = 0,
        match_threshold: float = 0.35,
        full_image_prob: float = 0.0,
        negative_prob: float = 0.0,
        source_ids: list[int] | None = None,
    ) -> None:
        self.samples = samples
        # given: each item also yields its sample's source index (-1 where a face-free image replaced it), which
        # the loop uses to pick the source's teacher
        self.source_ids = source_ids
        self.config = config
        self.train = train
        self.seed = seed
        self.epoch = 0
        self.match_threshold = match_threshold
        self.full_image_prob = full_image_prob
        self.negative_prob = negative_prob  # share of training samples replaced by a face-free image
        s = config.image_size
        self.priors = anchors(s, s, config.min_sizes, config.steps)
        self.heat_size = -(-s // 16)
        self.unreadable: set = set()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def _read(self, index: int) -> tuple[int, Sample, np.ndarray]:
        """The index, sample and image at ``index``; an image that cannot be decoded (a file cut or changed after
        the dataset was loaded) is warned about once per worker and replaced by the next readable one."""
        for k in range(len(self.samples)):
            i = (index + k) % len(self.samples)
            smp = self.samples[i]
            if smp.image in self.unreadable:
                continue
            try:
                return (
                    i,
                    smp,
                    read_image(
                        smp.image, reduce=decode_reduction(smp.width, smp.height, self.config.image_size), quiet=True
                    ),
                )
            except SlfmError as e:
                self.unreadable.add(smp.image)
                warnings.warn(f"{e}; skipped (another training image takes its place)", DataWarning, stacklevel=2)
        raise SlfmError(f"none of the {len(self.samples)} training images can be read")

    def __getitem__(self, index: int):
        read, smp, image = self._read(index)
        source = self.source_ids[read] if self.source_ids is not None else 0
        size = self.config.image_size
        sx, sy = image.shape[1] / smp.width, image.shape[0] / smp.height
        boxes = smp.boxes * np.array([sx, sy, sx, sy], dtype=np.float32)
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            if self.negative_prob > 0 and rng.random() < self.negative_prob:
                image = negative_image(image, boxes, size, rng)
                boxes, labels = np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
                source = -1
            else:
                image, boxes, labels = augment(image, boxes, smp.labels, size, rng, self.full_image_prob)
        else:
            image, scale = letterbox(image, size, self.config.mean_bgr)
            boxes, labels = boxes * scale / size, smp.labels
        boxes = boxes.astype(np.float32)
        loc_t, conf_t = match(boxes, labels, self.priors, self.match_threshold, self.config.variances)
        x = torch.from_numpy(normalize(image, self.config.mean_bgr)[0])
        heat = gaussian_heatmap(boxes, labels, self.heat_size, self.heat_size)
        out = (x, torch.from_numpy(loc_t), torch.from_numpy(conf_t), torch.from_numpy(heat)[None])
        return (*out, torch.tensor(source)) if self.source_ids is not None else out
