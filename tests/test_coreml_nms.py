"""Core ML for Vision (``slfm convert --to coreml --coreml-nms``): the pipeline's spec on Linux, its decoder
evaluated from the saved package against :func:`slfm.codec.decode`, predictions on macOS only."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch
from _fixtures_convert import NUM_ANCHORS, SIZE, run_convert
from click.testing import CliRunner

from slfm.anchors import anchors
from slfm.codec import decode

pytestmark = pytest.mark.slow  # the quick subset (make test-fast) leaves this file out

pytest.importorskip("coremltools", reason="needs the coreml extra: pip install 'slfm[coreml]'")

MACOS = pytest.mark.skipif(sys.platform != "darwin", reason="Core ML prediction needs macOS (coremltools on Linux)")


def centre_size(corners: np.ndarray) -> np.ndarray:
    return np.concatenate([(corners[:, :2] + corners[:, 2:]) / 2, corners[:, 2:] - corners[:, :2]], axis=1)


def test_vision_decoder_on_a_known_anchor():
    from slfm.convert.coreml_nms import VisionDecoder

    priors = np.array([[0.5, 0.5, 0.1, 0.2]], dtype=np.float32)
    loc = np.array([[[1.0, -1.0, 0.0, math.log(2) / 0.2]]], dtype=np.float32)
    scores = np.array([[[0.1, 0.3, 0.6]]], dtype=np.float32)
    conf, coords = VisionDecoder(priors, (0.1, 0.2))(torch.from_numpy(loc), torch.from_numpy(scores))
    # centre moves by offset * variance * anchor size; size scales by exp(offset * variance)
    np.testing.assert_allclose(coords.numpy(), [[0.51, 0.48, 0.1, 0.4]], rtol=1e-6)
    np.testing.assert_allclose(conf.numpy(), [[0.3, 0.6]])  # background column dropped
    np.testing.assert_allclose(coords.numpy(), centre_size(decode(loc[0], priors)), rtol=1e-6)


@pytest.fixture(scope="module")
def nms_package(real_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("coreml_nms")
    done = run_convert(str(real_checkpoint), "--to", "coreml", "--coreml-nms", "--precision", "fp16", "--out", str(out))
    return done["coreml"]["artifact"]


def test_nms_pipeline_spec(nms_package):
    from slfm.artifact import read_sidecar
    from slfm.convert.coreml_nms import pipeline_summary

    meta = read_sidecar(nms_package)
    s = pipeline_summary(nms_package)
    assert s["models"] == ["mlProgram", "mlProgram", "nonMaximumSuppression"]
    assert s["inputs"] == {"image": "imageType"} and s["outputs"] == ["confidence", "coordinates"]
    assert s["decoder_inputs"] == {"loc": [1, NUM_ANCHORS, 4], "scores": [1, NUM_ANCHORS, 3]}
    nms = s["nms"]
    assert nms["class_labels"] == ["face", "mask"] == meta.classes[1:]  # no background, no padding
    assert nms["inputs"] == {"anchor_confidence": [NUM_ANCHORS, 2], "anchor_coordinates": [NUM_ANCHORS, 4]}
    assert s["decoder_outputs"] == nms["inputs"]
    assert nms["iou_threshold"] == pytest.approx(meta.nms_iou) and nms["per_class"]
    assert nms["confidence_threshold"] == pytest.approx(meta.score_threshold)
    assert meta.outputs == ["confidence", "coordinates"] and meta.extra["coreml_nms"]["class_labels"] == [
        "face",
        "mask",
    ]
    assert json.loads(s["metadata"]["slfm"]) == json.loads(meta.to_json())  # the contract inside, as in the sidecar
    assert nms_package.endswith("_nms.mlpackage")


def test_nms_pipeline_decoder_is_the_numpy_decode(nms_package):
    """The decoder saved in the package, evaluated op by op: the contract's anchors, centre/size form."""
    from slfm.convert.coreml_nms import run_decoder

    rng = np.random.default_rng(0)
    loc = rng.normal(size=(1, NUM_ANCHORS, 4)).astype(np.float32)
    scores = rng.dirichlet(np.ones(3), size=(1, NUM_ANCHORS)).astype(np.float32)
    out = run_decoder(nms_package, loc, scores)
    want = centre_size(decode(loc[0], anchors(SIZE, SIZE)))
    np.testing.assert_allclose(out["anchor_coordinates"], want, atol=1e-6)
    np.testing.assert_array_equal(out["anchor_confidence"], scores[0, :, 1:])


def test_coreml_nms_needs_coreml(real_checkpoint, tmp_path):
    from slfm.cli import main

    r = CliRunner().invoke(
        main, ["convert", str(real_checkpoint), "--to", "tflite", "--coreml-nms", "--out", str(tmp_path)]
    )
    assert r.exit_code == 1 and "--coreml-nms is a Core ML option" in r.output
    assert not list(tmp_path.glob("*.tflite"))


@MACOS
def test_nms_pipeline_predicts_the_raw_models_detections(real_checkpoint, nms_package, real_inputs, tmp_path):
    import coremltools as ct
    from PIL import Image

    from slfm.convert.api import convert
    from slfm.postprocess import PostprocessConfig, postprocess

    (raw,) = convert(real_checkpoint, ["coreml"], "fp16", tmp_path)
    raw_model, nms_model = ct.models.MLModel(str(raw)), ct.models.MLModel(str(nms_package))
    cfg = PostprocessConfig(cross_class_iou=0.0)  # the NMS model is per class only
    for x in real_inputs:
        bgr = x[0].transpose(1, 2, 0) + np.array([104.0, 117.0, 123.0], dtype=np.float32)
        img = Image.fromarray(np.clip(np.round(bgr[..., ::-1]), 0, 255).astype(np.uint8))
        r = raw_model.predict({"image": img})
        boxes, conf, labels = postprocess(
            np.asarray(r["loc"])[0], np.asarray(r["scores"])[0], anchors(SIZE, SIZE), config=cfg
        )
        p = nms_model.predict({"image": img})
        c, xywh = np.asarray(p["confidence"]), np.asarray(p["coordinates"])
        assert len(c) == len(boxes)
        order = np.argsort(-c.max(1), kind="stable")
        np.testing.assert_allclose(centre_size(boxes), xywh[order], atol=2e-3)
        np.testing.assert_array_equal(labels, c[order].argmax(1) + 1)


def test_runners_refuse_the_nms_pipeline(nms_package):
    from slfm.device_tests.runtimes import load_runner
    from slfm.errors import SlfmError

    with pytest.raises(SlfmError, match="NMS pipeline outputs detections"):
        load_runner(nms_package)


def test_parity_spec_checks_accept_the_nms_pipeline(nms_package):
    from slfm.artifact import read_sidecar
    from slfm.device_tests.coreml_spec import spec_checks

    checks = {c["name"]: c for c in spec_checks(nms_package, read_sidecar(nms_package))}
    assert all(c["passed"] for c in checks.values()), checks
    assert checks["model_type"]["value"] == "pipeline" and checks["ops"]["value"] > 0
    assert "pipeline_models" in checks
