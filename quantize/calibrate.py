"""Post-training quantization: observe activation ranges on real, letterboxed images (the baseline QAT beats)."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from tqdm import tqdm

from slfm.data import DetectionDataset
from slfm.model import SLFMDet
from slfm.quantize.equalize import EQUALIZE_BATCHES, equalized
from slfm.quantize.quantized import prepare
from slfm.voc import Sample


def spread(samples: list[Sample], n: int) -> list[Sample]:
    """``n`` samples spread evenly over the list (deterministic, covers the whole set rather than its start)."""
    if n >= len(samples):
        return list(samples)
    idx = np.linspace(0, len(samples) - 1, n).round().astype(int)
    return [samples[i] for i in idx]


def calibration_batches(samples: list[Sample], model: SLFMDet, n: int, batch: int = 8):
    """Letterboxed, normalised inputs (as every artifact receives them) for ``n`` samples."""
    ds = DetectionDataset(spread(samples, n), model.config, train=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=False, num_workers=0)
    for x, *_ in loader:
        yield x


def ptq(
    model: SLFMDet, batches, backend: str = "xnnpack", total: int | None = None, equalize: bool = True
) -> tuple[torch.fx.GraphModule, SLFMDet]:
    """(prepared graph with observers calibrated on ``batches`` (tensors [B, 3, S, S]), the fp32 model it was
    made from): with ``equalize``, a range-equalized copy of ``model`` (:func:`slfm.quantize.equalize.equalized`,
    measured on the first batches), otherwise ``model`` itself. Compare the graph with that model, not ``model``:
    equalization keeps the outputs but rescales the channels in between."""
    if equalize:
        batches = iter(batches)
        head = list(itertools.islice(batches, EQUALIZE_BATCHES))
        model = equalized(model, head)
        batches = itertools.chain(head, batches)
    pm = prepare(model.eval(), qat=False, backend=backend)
    with torch.no_grad():
        for x in tqdm(batches, desc="calibrate", total=total, leave=False):
            pm(x)
    return pm, model


def photo_batches(model: SLFMDet):
    """Fallback calibration set when no dataset is given: the real photos scikit-image's wheel ships (the
    parity harness's too: :func:`slfm.inputs.load_images`), letterboxed like every input. A handful
    of images: enough for a working int8 model; pass ``--data`` for a representative set."""
    from slfm.inputs import load_images, prepare_inputs

    images = load_images([], None)
    x, _ = prepare_inputs(images, model.config, model.config.image_size)
    yield torch.from_numpy(x)


def photo_names() -> list[str]:
    from slfm.inputs import SKIMAGE_PHOTOS

    return [f"skimage.data.{n}" for n in SKIMAGE_PHOTOS]
