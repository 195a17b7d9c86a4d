"""Post-training quantization: observe activation ranges on real, letterboxed images (the baseline QAT beats)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class PTQJob:
    """The PTQ step's settings: an fp32 checkpoint calibrated on real images -> ``out/ptq.pt``."""

    checkpoint: str
    data: Path
    kind: str = "moxa3k"
    split: str = "train"
    class_map: dict | None = None
    calib: int = 128  # images spread over the split
    equalize: bool = True
    backend: str = "all"
    out: Path = Path("runs/ptq")
    val_split: str = ""  # evaluate the int8 simulation on this split ('' for none)
    val_limit: int | None = None


def ptq_job(job: PTQJob, log=print) -> Path:
    """Post-training int8 quantization as ``job`` says; returns the quantized checkpoint (``slfm ptq``, and
    the PTQ rows of ``slfm bench artifacts``)."""
    import json

    from slfm.checkpoint import file_sha256, load_model, resolve_checkpoint
    from slfm.quantize.qat import backends_of
    from slfm.quantize.quantized import save_quantized
    from slfm.voc import load_dataset

    checkpoint = resolve_checkpoint(job.checkpoint, job.kind)
    model, _ = load_model(checkpoint)
    samples = load_dataset(job.data, job.kind, job.split or "train", job.class_map)
    backends = backends_of(job.backend)
    batches = calibration_batches(samples, model, job.calib)
    pm, model = ptq(model, batches, backends[0], total=-(-min(job.calib, len(samples)) // 8), equalize=job.equalize)
    extra = {
        "source_checkpoint": str(checkpoint),
        "source_sha256": file_sha256(checkpoint),
        "calib_images": job.calib,
        "equalized": job.equalize,
    }
    if job.val_split:
        from slfm.quantize.evaluate import int8_map50

        val = load_dataset(job.data, job.kind, job.val_split, job.class_map)
        extra["metrics"] = int8_map50(pm, model.config, spread(val, job.val_limit) if job.val_limit else val)
        log(json.dumps(extra["metrics"], indent=1))
    return save_quantized(Path(job.out) / "ptq.pt", pm, model, "ptq", backends, **extra)
