"""The committed golden vectors (tests/golden, read by the Kotlin, Swift and JS ports' tests) still agree with the
Python inference core (slfm.core): every expected value is recomputed from the inputs stored in the files."""

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
    from slfm.core import letterbox, letterbox_geometry

    data = load("letterbox.json")
    for case in data["cases"]:
        assert letterbox_geometry(case["height"], case["width"], case["size"]) == case
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
    from slfm.core import dequantize, quantize

    below = np.nextafter(np.float32(0.5), np.float32(0))
    got = quantize(np.array([0.5, 1.5, -0.5, -2.5, 400.0, below, -below], np.float32), 1.0, 0)
    np.testing.assert_array_equal(got, [1, 2, -1, -3, 127, 0, 0])
    assert quantize(np.float32(2.5), 1.0, 0, np.uint8) == 3 and quantize(np.float32(300), 1.0, 0, np.uint8) == 255
    np.testing.assert_array_equal(dequantize([-128, 0, 127], 0.5, -128), [0.0, 64.0, 127.5])


def test_quant_vectors_hold_ties_that_half_to_even_gets_wrong():
    """The ports and every Python path round as TFLite does; np.round (halves to even) must fail these files."""
    cases = {c["name"]: c for c in load("quant.json")["cases"]}
    ties = cases["ties"]
    y = np.asarray(ties["values"], np.float32) / np.float32(ties["scale"])
    assert (np.abs(y - np.trunc(y)) == 0.5).sum() >= 20
    assert np.round(y).astype(int).tolist() != ties["expected"]["quantized"]
    enc = {c["name"]: c for c in load("encode.json")["cases"]}
    for name in ("int8_ties_nhwc", "int8_ties_nchw"):
        meta = enc[name]["sidecar"]
        assert meta["pixel_scale"] != 1 and meta["input_dtype"] == "int8", name


@pytest.mark.parametrize("case", load("encode.json")["cases"], ids=lambda c: c["name"])
def test_encode(case):
    assert golden.expected_encode(case) == case["expected"]
    assert len(case["expected"]) == 3 * case["sidecar"]["image_size"] ** 2
    assert set(case["pixels"]) == set(range(256))


def test_encode_cases_scale_pixels():
    scales = {c["sidecar"]["pixel_scale"] for c in load("encode.json")["cases"]}
    assert 1.0 not in scales and len(scales) >= 3
    layouts = {c["sidecar"]["layout"] for c in load("encode.json")["cases"]}
    assert layouts == {"NCHW", "NHWC"}


def test_output_order():
    cases = load("outputs.json")["cases"]
    assert any(c["expected"] is None for c in cases) and any(c["indices"] for c in cases)
    for case in cases:
        assert golden.expected_order(case) == case["expected"], case


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
    assert meta.output_indices == [1, 0]


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
