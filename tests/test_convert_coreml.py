"""Core ML: conversion and the spec on Linux (prediction needs macOS)."""

from __future__ import annotations

import json
import sys

import pytest
from _fixtures_convert import NUM_ANCHORS, SIZE

from slfm.errors import SlfmError

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
    assert s["ops"]["conv"] == 62 and s["ops"]["softmax"] == 1
    assert "batch_norm" not in s["ops"]  # folded
    if precision == "int8":
        assert s["ops"].get("constexpr_affine_dequantize", 0) > 0  # int8 weights
    if sys.platform != "darwin":
        from slfm.convert.runtimes import load_runner

        with pytest.raises(SlfmError, match="macOS"):
            load_runner(path)
