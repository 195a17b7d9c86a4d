"""Fixtures for the converter and quantization tests: a real-weights checkpoint (RetinaFace init, 320),
real Moxa3K images, and the artifacts built once per session. Import with ``from _fixtures_convert import *``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MOXA = SHARED / "data" / "moxa3k"
RETINAFACE = SHARED / "weights" / "retinaface_mobilenet0.25_Final.pth"
SIZE = 320


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs {path} (real images / weights in ../shared beside the repo)")
    return path


@pytest.fixture(scope="session")
def real_checkpoint(tmp_path_factory) -> Path:
    """An slfm checkpoint at 320 initialised from the real RetinaFace weights (realistic activations)."""
    from slfm.checkpoint import save_checkpoint
    from slfm.config import ModelConfig
    from slfm.model import SLFMDet
    from slfm.weights import load_retinaface

    torch.manual_seed(0)
    cfg = ModelConfig(image_size=SIZE)
    model = SLFMDet(cfg)
    load_retinaface(model, _need(RETINAFACE))
    path = tmp_path_factory.mktemp("ckpt") / "retina320.pt"
    save_checkpoint(path, model, cfg)
    return path


@pytest.fixture(scope="session")
def moxa_samples():
    from slfm.voc import load_dataset

    return load_dataset(_need(MOXA), "moxa3k", "test", limit=40)


@pytest.fixture(scope="session")
def real_inputs(moxa_samples) -> list[np.ndarray]:
    """Six real Moxa3K test images, letterboxed and normalised as every artifact receives them."""
    from slfm.config import ModelConfig
    from slfm.images import read_image
    from slfm.predictor import prepare

    cfg = ModelConfig(image_size=SIZE)
    return [prepare(read_image(s.image, quiet=True), cfg)[0] for s in moxa_samples[-6:]]


@pytest.fixture(scope="session")
def ptq_graph(real_checkpoint, moxa_samples):
    """PTQ-calibrated graph (16 real images, distinct from the test inputs)."""
    from slfm.checkpoint import load_model
    from slfm.quantize.calibrate import calibration_batches, ptq

    model, _ = load_model(real_checkpoint)
    return ptq(model, calibration_batches(moxa_samples[:30], model, 16))


@pytest.fixture(scope="session")
def ptq_checkpoint(ptq_graph, real_checkpoint, tmp_path_factory) -> Path:
    from slfm.checkpoint import load_model
    from slfm.quantize.quantized import save_quantized

    model, _ = load_model(real_checkpoint)
    return save_quantized(tmp_path_factory.mktemp("ptq") / "ptq.pt", ptq_graph, model, "ptq", ["xnnpack", "litert"])


@pytest.fixture(scope="session")
def artifacts(real_checkpoint, ptq_checkpoint, tmp_path_factory) -> dict[str, Path]:
    """fp32 and int8 (from the PTQ checkpoint) TFLite and ExecuTorch artifacts, built once."""
    from slfm.convert.api import convert

    out = tmp_path_factory.mktemp("artifacts")
    paths = {}
    for precision, qat in (("fp32", None), ("int8", ptq_checkpoint)):
        tfl, pte = convert(real_checkpoint, ["tflite", "executorch"], precision, out, qat=qat)
        paths[f"tflite-{precision}"] = tfl
        paths[f"executorch-{precision}"] = pte
    return paths


def torch_outputs(checkpoint: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw (loc, scores) of the PyTorch model (slfm.model.InferenceWrapper, the literal layer forms)."""
    from slfm.checkpoint import load_model
    from slfm.model import InferenceWrapper

    model, _ = load_model(checkpoint)
    with torch.no_grad():
        loc, scores = InferenceWrapper(model).eval()(torch.from_numpy(x))
    return loc[0].numpy(), scores[0].numpy()


def detections(loc: np.ndarray, scores: np.ndarray, threshold: float = 0.5):
    from slfm.anchors import anchors
    from slfm.postprocess import PostprocessConfig, postprocess

    priors = anchors(SIZE, SIZE, ((16, 32), (64, 128), (256, 512)), (8, 16, 32))
    return postprocess(loc, scores, priors, config=PostprocessConfig(score_threshold=threshold))


def matched_fraction(a, b, iou_min: float = 0.5) -> float:
    """Fraction of detections in ``a`` with a same-label detection in ``b`` at IoU >= iou_min (1.0 if a empty)."""
    from slfm.nms import iou

    boxes_a, _, labels_a = a
    boxes_b, _, labels_b = b
    if len(boxes_a) == 0:
        return 1.0
    if len(boxes_b) == 0:
        return 0.0
    ov = iou(boxes_a, boxes_b)
    ok = (ov >= iou_min) & (labels_a[:, None] == labels_b[None, :])
    return float(ok.any(1).mean())
