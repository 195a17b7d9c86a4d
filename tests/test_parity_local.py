"""`slfm parity` on this machine, on real Moxa3K and AIZOO images: the fp32 .tflite through ai-edge-litert
and through tflite-runtime 2.14 (its own numpy<2 venv), against PyTorch; and a broken artifact failing with
its first divergent layer named."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from test_parity_support import artifacts, data_args

from slfm.cli import main

pytestmark = pytest.mark.slow  # the quick subset (make test-fast) leaves this file out


def run(args):
    return CliRunner().invoke(main, ["parity", *args], catch_exceptions=False)


def test_fp32_tflite_matches_pytorch_locally(tmp_path):
    ckpt, tfl = artifacts()
    out = tmp_path / "rep"
    # threads named: by default the harness takes the cores the load leaves free, 1 or 2 here depending on the load
    args = [str(tfl), "--checkpoint", str(ckpt), *data_args(6), "--runs", "5", "--warmup", "2", "--threads", "1"]
    r = run([*args, "--out", str(out)])
    assert r.exit_code == 0, r.output
    rep = json.loads(out.with_suffix(".json").read_text())
    assert rep["schema"] == "slfm-parity/1" and rep["passed"] is True
    assert [d["name"] for d in rep["data"]] == ["moxa3k/test", "aizoo/val-sample"]
    ref = rep["reference"]
    assert 0 <= ref["map50"] <= 1 and set(ref["ap50"]) == {"face", "mask"} and ref["latency_ms"]["p50"] > 0
    rows = rep["artifacts"]
    assert [row["runtime"].split(" ")[0] for row in rows] == ["ai-edge-litert", "tflite-runtime"]
    assert "slfm.device_tests.runtimes" in rows[0]["runtime"]  # the converters' in-process runtime API
    assert "tflite_runtime 2.14.0" in rows[1]["runtime"]
    for row in rows:
        for key in (
            "format",
            "precision",
            "target",
            "map50",
            "size_bytes",
            "max_abs_error",
            "snr_db",
            "detection_recall",
            "passed",
        ):
            assert key in row
        assert row["passed"] is True and row["target"] == "local"
        assert row["snr_db"] > 60 and row["max_abs_error"] < 1e-3
        assert row["loc_all_anchors"]["snr_db"] > 60 and row["live_anchors"] > 0  # real faces: some anchors live
        assert row["detections"]["reference"] > 0 and row["detection_recall"] == 1.0
        assert abs(row["map50"] - ref["map50"]) < 1e-3
        assert set(row["map50_by_dataset"]) == {"moxa3k/test", "aizoo/val-sample"}
        assert row["latency_ms"]["runs"] == 5 and row["latency_ms"]["p90"] >= row["latency_ms"]["p50"] > 0
        assert len(row["latency_ms"]["warmup_ms"]) == 2 and row["threads"] == 1
        assert row["size_bytes"] == tfl.stat().st_size and row["peak_memory_mb"] > 0
    assert rows[1]["on_device_postprocess"] is True  # the shipped slfm.postprocess ran in the venv
    md = out.with_suffix(".md").read_text()
    assert "| model-" in md and "pass" in md
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_broken_artifact_fails_and_names_first_divergent_layer(tmp_path):
    ckpt, good = artifacts()
    _, bad = artifacts(perturb="fpn.merge2.0.weight")  # merge2's conv zeroed: everything after it differs
    out = tmp_path / "rep"
    r = run(
        [
            str(good),
            str(bad),
            "--checkpoint",
            str(ckpt),
            *data_args(3),
            "--runs",
            "2",
            "--warmup",
            "1",
            "--no-tflite-runtime",
            "--out",
            str(out),
        ]
    )
    assert r.exit_code == 1
    assert f"parity failed for 1 of 2: {bad.name} on local" in r.output
    rep = json.loads(out.with_suffix(".json").read_text())
    good_row, bad_row = rep["artifacts"]
    assert good_row["passed"] is True and "divergence" not in good_row
    assert bad_row["passed"] is False and bad_row["snr_db"] < 40
    assert any(c["name"] == "snr_db" and not c["passed"] for c in bad_row["checks"])
    div = bad_row["divergence"]
    assert div["layers_compared"] > 50
    assert div["first_divergent_layer"]["module"].startswith("model.fpn.merge2")
    before = [x for x in div["layers"] if x["op_index"] < div["first_divergent_layer"]["op_index"]]
    assert before and all(x["snr_db"] > 60 for x in before)  # the backbone still matches
    assert "first divergent layer: `model.fpn.merge2" in out.with_suffix(".md").read_text()
