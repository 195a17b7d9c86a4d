"""Fixtures for the converter and quantization tests: the bundled trained checkpoint (Moxa3K), real
Moxa3K test images, and the artifacts built once per session. ``tests/conftest.py`` imports them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from slfm.anchors import anchors
from slfm.checkpoint import bundled_checkpoint, read_checkpoint

# The bundled Moxa3K weights' default input: artifacts are made at this size.
SIZE = int(read_checkpoint(bundled_checkpoint("moxa3k"))["model_config"]["image_size"])
NUM_ANCHORS = len(anchors(SIZE, SIZE))


@pytest.fixture(scope="session")
def real_checkpoint() -> Path:
    """The bundled trained SL-FMDet (Moxa3K): real weights that detect faces and masks. It will be
    replaced by better weights, so tests compare artifacts with PyTorch and never with fixed outputs."""
    from slfm.checkpoint import bundled_checkpoint, load_model

    path = bundled_checkpoint("moxa3k")
    assert load_model(path)[0].config.image_size == SIZE
    return path


@pytest.fixture(scope="session")
def moxa_samples(moxa):
    from slfm.voc import load_dataset

    return load_dataset(moxa, "moxa3k", "test", limit=40)


@pytest.fixture(scope="session")
def real_inputs(moxa_samples) -> list[np.ndarray]:
    """Six real Moxa3K test images, letterboxed and normalised as every artifact receives them."""
    from slfm.config import ModelConfig
    from slfm.core import prepare
    from slfm.images import read_image

    cfg = ModelConfig(image_size=SIZE)
    return [prepare(read_image(s.image, quiet=True), cfg)[0] for s in moxa_samples[-6:]]


@pytest.fixture(scope="session")
def ptq_pair(real_checkpoint, moxa_samples):
    """(PTQ-calibrated graph, the range-equalized fp32 model it was made from): 16 real images, distinct from
    the test inputs."""
    from slfm.checkpoint import load_model
    from slfm.quantize.calibrate import calibration_batches, ptq

    model, _ = load_model(real_checkpoint)
    return ptq(model, calibration_batches(moxa_samples[:30], model, 16))


@pytest.fixture(scope="session")
def ptq_graph(ptq_pair):
    return ptq_pair[0]


@pytest.fixture(scope="session")
def ptq_source(ptq_pair):
    return ptq_pair[1]


@pytest.fixture(scope="session")
def ptq_checkpoint(ptq_graph, ptq_source, tmp_path_factory) -> Path:
    from slfm.quantize.quantized import save_quantized

    out = tmp_path_factory.mktemp("ptq") / "ptq.pt"
    return save_quantized(out, ptq_graph, ptq_source, "ptq", ["xnnpack", "litert"])


def run_convert(*args: str) -> dict[str, dict]:
    """``slfm convert ARGS`` through the real CLI; returns {format: its ``<precision>-<format>`` entry in
    ``OUT/manifest.json``}."""
    from click.testing import CliRunner

    from slfm.cli import main

    out = Path(args[args.index("--out") + 1])
    precision = args[args.index("--precision") + 1]
    res = CliRunner().invoke(main, ["convert", *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    entries = json.loads((out / "manifest.json").read_text())
    return {e["format"]: e for e in entries.values() if e["precision"] == precision}


@pytest.fixture(scope="session")
def artifacts(real_checkpoint, ptq_checkpoint, tmp_path_factory) -> dict[str, Path]:
    """fp32 and int8 (from the PTQ checkpoint) TFLite and ExecuTorch artifacts, built once by ``slfm convert``
    with the default checkpoint (the bundled Moxa3K weights) and several ``--to``."""
    out = tmp_path_factory.mktemp("artifacts")
    paths = {}
    for precision, extra in (("fp32", []), ("int8", ["--qat", str(ptq_checkpoint)])):
        done = run_convert("--to", "tflite", "--to", "executorch", "--precision", precision, "--out", str(out), *extra)
        assert sorted(done) == ["executorch", "tflite"]  # one manifest entry per format made
        for fmt, suffix in (("tflite", ".tflite"), ("executorch", ".pte")):
            assert done[fmt]["checkpoint"] == str(real_checkpoint) and done[fmt]["precision"] == precision
            paths[f"{fmt}-{precision}"] = Path(done[fmt]["artifact"])
            assert paths[f"{fmt}-{precision}"].suffix == suffix
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
