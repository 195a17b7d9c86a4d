"""Post-training quantization: observe activation ranges on real, letterboxed images (the baseline QAT beats)."""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from slfm.data import DetectionDataset
from slfm.model import SLFMDet
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


def ptq(model: SLFMDet, batches, backend: str = "xnnpack", total: int | None = None) -> torch.fx.GraphModule:
    """Prepared graph with observers calibrated on ``batches`` (tensors [B, 3, S, S])."""
    pm = prepare(model.eval(), qat=False, backend=backend)
    with torch.no_grad():
        for x in tqdm(batches, desc="calibrate", total=total, leave=False):
            pm(x)
    return pm


SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "cat", "immunohistochemistry")


def bundled_photo_batches(model: SLFMDet):
    """Fallback calibration set when no dataset is given: the real photos scikit-image's wheel ships (a few
    images only: fine for a smoke test; pass ``--data`` for a representative set)."""
    import cv2

    from slfm.predictor import prepare

    try:
        from skimage import data as skdata
    except ImportError as e:
        from slfm.errors import SlfmError

        raise SlfmError("int8 PTQ needs calibration images: pass --data DIR (or pip install scikit-image)") from e
    for name in SKIMAGE_PHOTOS:
        try:
            img = getattr(skdata, name)()
        except Exception:
            continue
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)
        x, _ = prepare(img, model.config)
        yield torch.from_numpy(x)
