"""Core ML: conversion and the spec on Linux (prediction needs macOS)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from _fixtures_convert import NUM_ANCHORS, SIZE

from slfm.errors import SlfmError

pytestmark = pytest.mark.slow  # the quick subset (make test-fast) leaves this file out

pytest.importorskip("coremltools", reason="needs the coreml extra: pip install 'slfm[coreml]'")


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_coreml_spec(real_checkpoint, tmp_path, precision):
    from slfm.convert.api import convert
    from slfm.convert.coreml import spec_summary

    (path,) = convert(real_checkpoint, ["coreml"], precision, tmp_path)
    s = spec_summary(path)
    assert s["inputs"] == {"image": "imageType"} and s["input_shapes"]["image"] == [SIZE, SIZE]
    assert s["image_color"]["image"] == 30  # BGR
    assert s["outputs"] == {"loc": [1, NUM_ANCHORS, 4], "scores": [1, NUM_ANCHORS, 3]}
    meta = json.loads(s["metadata"]["slfm"])
    assert meta["classes"] == ["background", "face", "mask"] and meta["precision"] == precision
    assert s["metadata"]["classes"] == "background,face,mask"
    assert meta["extra"]["compute_units"] == "ALL"
    assert s["ops"]["conv"] == 62 and s["ops"]["softmax"] == 1
    assert "batch_norm" not in s["ops"]  # folded
    if precision == "int8":
        assert s["ops"].get("constexpr_affine_dequantize", 0) > 0  # int8 weights
    if sys.platform != "darwin":
        from slfm.device_tests.runtimes import load_runner

        with pytest.raises(SlfmError, match="macOS"):
            load_runner(path)


def test_coreml_w8a8_from_the_bundled_qat_checkpoint(real_checkpoint, tmp_path):
    """int8 with --qat: activations quantized too (quantize/dequantize ops), every conv weight int8."""
    from _fixtures_convert import run_convert

    from slfm.artifact import read_sidecar
    from slfm.checkpoint import bundled_qat, load_model
    from slfm.convert.api import fp32_module
    from slfm.convert.coreml import spec_summary

    qat = bundled_qat(real_checkpoint)
    assert qat is not None and qat.name == "moxa3k_512_qat.pt"
    done = run_convert(
        str(real_checkpoint), "--to", "coreml", "--precision", "int8", "--qat", str(qat), "--out", str(tmp_path)
    )
    path = done["coreml"]["artifact"]
    assert path.endswith("_int8_qat.mlpackage") and done["coreml"]["qat"] == str(qat)
    s = spec_summary(path)
    ops = s["ops"]
    assert ops["quantize"] > 0 and ops["dequantize"] > 0  # W8A8, not weights-only
    assert ops["constexpr_affine_dequantize"] == ops["conv"] == 62  # each conv's weights stored int8
    assert s["spec_version"] >= 8  # iOS17: the quantize/dequantize ops' minimum target
    assert s["outputs"] == {"loc": [1, NUM_ANCHORS, 4], "scores": [1, NUM_ANCHORS, 3]}
    n_params = sum(p.numel() for p in fp32_module(load_model(real_checkpoint)[0]).parameters())
    weights = (Path(path) / "Data" / "com.apple.CoreML" / "weights" / "weight.bin").stat().st_size
    assert n_params <= weights < 1.15 * n_params  # about a byte a weight (fp16 is two)
    meta = read_sidecar(path)
    assert meta.precision == "int8" and meta.quantization.startswith("qat-") and meta.quantization.endswith("-w8a8")
    assert meta.extra["compute_units"] == "ALL" and meta.extra["quantized_checkpoint"] == str(qat)
    assert json.loads(s["metadata"]["slfm"]) == json.loads(meta.to_json())
