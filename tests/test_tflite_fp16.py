"""TFLite fp16 (ai-edge-quantizer float16 weights) made by ``slfm convert`` loads, keeps its contract inside,
and scores like its checkpoint on real Moxa3K test images. The weights live after the flatbuffer (by offset):
embedding the contract once dropped them (an artifact that converted but would not load)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _fixtures_convert import run_convert
from click.testing import CliRunner

from slfm.cli import main

pytestmark = pytest.mark.slow  # the quick subset (make test-fast) leaves this file out

pytest.importorskip("litert_torch", reason="needs the tflite extra: pip install 'slfm[tflite]'")


def test_fp16_tflite_loads_and_scores_like_the_checkpoint(real_checkpoint, moxa, tmp_path):
    from slfm.convert.meta import read_tflite
    from slfm.device_tests.thresholds import DEFAULTS

    done = run_convert("--to", "tflite", "--precision", "fp16", "--out", str(tmp_path))
    art = Path(done["tflite"]["artifact"])
    assert read_tflite(art)["precision"] == "fp16" and read_tflite(art)["quantization"] == "weights-fp16"
    got = {}
    for name, model in (("checkpoint", real_checkpoint), ("fp16", art)):
        r = CliRunner().invoke(main, ["eval", str(model), "--data", str(moxa), "--limit", "20", "--threads", "1"])
        assert r.exit_code == 0, r.output
        got[name] = json.loads(r.output[r.output.index("{") :])["map50"]
    assert abs(got["checkpoint"] - got["fp16"]) <= DEFAULTS["fp16"]["max_map50_drop"], got
