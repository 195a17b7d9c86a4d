"""``slfm convert`` options and ``slfm bench artifacts`` report logic (no conversion: fast)."""

from __future__ import annotations

from pathlib import Path

from slfm.convert.job import formats_to_make


def test_to_accepts_several_formats_and_all():
    assert formats_to_make(("executorch", "tflite", "tflite"), "fp32", False) == (["tflite", "executorch"], [])
    assert formats_to_make(("all",), "fp32", False) == (["tflite", "coreml", "executorch"], [])
    assert formats_to_make(("all",), "fp16", False) == (["tflite", "coreml", "executorch"], [])  # ExecuTorch fp16 too
    assert formats_to_make(("all",), "fp32", True)[0] == ["tflite"]  # --nhwc is TFLite only


def test_pipeline_plans_one_convert_step_per_int8_graph_format(tmp_path):
    from slfm.pipeline import plan

    fmts = ["tflite", "coreml", "executorch"]
    steps = {s.name: s for s in plan(tmp_path, None, Path("data"), "moxa3k", 0, 1, None, fmts, ["local"], 3, 1)}
    art = tmp_path / "artifacts"
    assert steps["convert-fp32"].config.formats == tuple(fmts) and steps["convert-fp32"].config.out == art
    for fmt in ("tflite", "executorch"):
        job = steps[f"convert-int8-{fmt}"].config
        assert job.formats == (fmt,) and job.precision == "int8" and job.qat == tmp_path / "qat" / "qat.pt"
    assert "convert-int8-coreml" not in steps  # the int8 steps are the QAT / PTQ graph formats (Format.int8_graph)


def test_unknown_format_is_refused_by_name():
    import pytest

    from slfm.errors import SlfmError

    with pytest.raises(SlfmError, match="unknown format 'onnx'"):
        formats_to_make(("onnx",), "fp32", False)


def test_checkpoint_argument_is_optional():
    from click.testing import CliRunner

    from slfm.cli import main

    res = CliRunner().invoke(main, ["convert", "--help"])
    assert res.exit_code == 0 and "[CHECKPOINT]" in res.output and "--to" in res.output


def _row(model, p50_1, p50_2, map50):
    fmt = model.split()[0]
    lat = {"1": {"p50": p50_1}, "2": {"p50": p50_2}}
    return {"model": model, "format": fmt, "precision": "x", "quantization": None, "latency_ms": lat, "map50": map50}


def test_bench_targets_pass_and_fail():
    from slfm.device_tests.bench import targets

    rows = [
        _row("tflite fp32", 10, 6, 0.50),
        _row("tflite int8 PTQ", 5, 3, 0.48),
        _row("tflite int8 QAT", 5, 3, 0.495),
        _row("executorch fp32", 12, 7, 0.50),
        _row("executorch int8 PTQ", 6, 4, 0.48),
        _row("executorch int8 QAT", 8, 5, 0.47),
    ]
    got = {t["target"]: t["passed"] for t in targets(rows)}
    assert got["tflite int8-QAT mAP within 1 point of tflite fp32"] is True
    assert got["executorch int8-QAT mAP within 1 point of executorch fp32"] is False  # 3 points down
    assert got["TFLite int8 (QAT) >= 1.5x faster than TFLite fp32, 1 thread"] is True
    assert got["ExecuTorch fp32 within 1.25x of TFLite fp32, 1 thread(s)"] is True
    assert got["ExecuTorch int8 QAT within 1.25x of TFLite int8 QAT, 1 thread(s)"] is False  # 1.6x
    # the QAT-PTQ difference carries its own paired spread where the bench measured one
    rows[2]["vs_ptq_bootstrap"] = {"resamples": 200, "std": 0.008, "p5": -0.01, "p95": 0.025}
    value = {t["target"]: t["value"] for t in targets(rows)}["tflite int8-QAT ahead of int8-PTQ"]
    assert value.startswith("+1.50 points") and "± 0.80 (-1.00 to +2.50, p5-p95) over 200 paired" in value
    partial = {t["target"]: t for t in targets(rows[:2])}  # a missing row: "not measured", never a silent pass
    assert partial["executorch int8-QAT ahead of int8-PTQ"]["passed"] is None
    assert partial["executorch int8-QAT ahead of int8-PTQ"]["value"].startswith("not measured")
    assert partial["TFLite int8 (PTQ) >= 1.5x faster than TFLite fp32, 1 thread"]["passed"] is True


def test_bundled_qat_serves_the_graph_formats_and_core_ml_gets_int8_weights(tmp_path, monkeypatch):
    """int8 of bundled weights: the bundled QAT checkpoint for TFLite / ExecuTorch (Format.int8_graph), Core ML
    converted without it (int8 weights); each marker names the QAT file only where it was used."""
    import json

    import slfm.convert.api as api
    from slfm.convert.job import ConvertJob, convert_job

    calls = []

    def fake(checkpoint, formats, precision, out, qat=None, *a, **kw):
        calls.append((list(formats), qat is not None))
        return [Path(out) / f"m.{f}" for f in formats]

    monkeypatch.setattr(api, "convert", fake)
    convert_job(ConvertJob(checkpoint="aizoo", precision="int8", out=tmp_path))
    assert calls == [(["tflite", "executorch"], True), (["coreml"], False)]
    entries = json.loads((tmp_path / "manifest.json").read_text())
    assert entries["int8-tflite"]["qat"] and entries["int8-coreml"]["qat"] is None
