"""The committed golden vectors (tests/golden, read by the Kotlin and Swift ports' tests) still agree with the
Python pre/post-processing: every expected value is recomputed from the inputs stored in the files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from slfm import golden
from slfm.anchors import anchors

GOLDEN = Path(__file__).resolve().parent / "golden"
POSTPROCESS = sorted(GOLDEN.glob("postprocess_*.json"))


def load(name: str | Path) -> dict:
    data = json.loads((GOLDEN / name).read_text())
    assert data["schema"] == golden.SCHEMA
    return data


def test_golden_files_present_and_small():
    assert len(POSTPROCESS) >= 2, "run: python -m slfm.golden --out tests/golden"
    total = sum(p.stat().st_size for p in GOLDEN.iterdir())
    assert total < 1_000_000


@pytest.mark.parametrize("case", load("anchors.json")["cases"], ids=lambda c: f"{c['height']}x{c['width']}")
def test_anchors(case):
    pri = anchors(case["height"], case["width"])
    assert pri.shape[0] == case["count"]
    np.testing.assert_array_equal(pri[case["indices"]], np.asarray(case["rows"], dtype=np.float32))


def test_letterbox_geometry_matches_preprocess():
    from slfm.preprocess import letterbox

    data = load("letterbox.json")
    for case in data["cases"]:
        assert golden.letterbox_params(case["height"], case["width"], case["size"]) == case
        image = np.zeros((case["height"], case["width"], 3), dtype=np.uint8)
        out, scale = letterbox(image, case["size"], data["mean_bgr"])
        assert scale == case["scale"]
        # The resized image fills [0, resized) and the mean colour pads the rest.
        if case["resized_width"] < case["size"]:
            assert (out[:, case["resized_width"] :] == np.round(data["mean_bgr"]).astype(np.uint8)).all()
        if case["resized_height"] < case["size"]:
            assert (out[case["resized_height"] :] == np.round(data["mean_bgr"]).astype(np.uint8)).all()
        assert (out[: case["resized_height"], : case["resized_width"]] == 0).all()


def test_decode():
    for case in load("decode.json")["cases"]:
        assert golden.expected_decode(case) == case["boxes"]
        pri = anchors(golden.IMAGE_SIZE, golden.IMAGE_SIZE)[case["anchor_indices"]]
        np.testing.assert_array_equal(pri, np.asarray(case["priors"], dtype=np.float32))


def test_nms():
    cases = load("nms.json")["cases"]
    assert any(len(set(c["scores"])) < len(c["scores"]) for c in cases), "no case exercises score ties"
    for case in cases:
        assert golden.expected_nms(case) == case["expected"]


def test_quant():
    for case in load("quant.json")["cases"]:
        assert golden.expected_quant(case) == case["expected"]


def test_quant_rounds_halves_away_from_zero():
    np.testing.assert_array_equal(golden.quantize([0.5, 1.5, -0.5, -2.5, 400.0], 1.0, 0), [1, 2, -1, -3, 127])
    np.testing.assert_array_equal(golden.dequantize([-128, 0, 127], 0.5, -128), [0.0, 64.0, 127.5])


@pytest.mark.parametrize("path", POSTPROCESS, ids=lambda p: p.stem)
def test_postprocess(path):
    case = load(path.name)
    assert sorted(case["anchor_indices"]) == case["anchor_indices"]
    assert len(case["loc"]) == len(case["scores"]) == len(case["anchor_indices"])
    for name, config in case["configs"].items():
        assert golden.expected_postprocess(case, config) == case["expected"][name], name
    assert case["expected"]["capped"]["labels"], "the capped config should keep some detections"


def test_sidecar_parses():
    from slfm.artifact import ArtifactMeta

    meta = ArtifactMeta.from_dict(load_sidecar())
    assert meta.num_anchors == anchors(meta.image_size, meta.image_size).shape[0]
    assert set(meta.output_quant) == {"loc", "scores"}


def load_sidecar() -> dict:
    return json.loads((GOLDEN / "sidecar_int8.tflite.json").read_text())


def test_generate_from_retinaface_weights(tmp_path, retinaface_weights, moxa):
    """The generator end to end on real weights and real photos (no checkpoint): consistent, small files."""
    paths = golden.generate(tmp_path, checkpoint=None, images=moxa / "images", retinaface=retinaface_weights, top=200)
    assert {p.name for p in paths} == {p.name for p in GOLDEN.glob("*.json")}
    assert sum(p.stat().st_size for p in paths) < 1_000_000
    for p in tmp_path.glob("postprocess_*.json"):
        case = json.loads(p.read_text())
        assert "RetinaFace" in case["source"]
        for name, config in case["configs"].items():
            assert golden.expected_postprocess(case, config) == case["expected"][name]
