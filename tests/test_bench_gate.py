"""``slfm bench artifacts`` as a gate: one row per artifact with its status, failures kept as rows, and
``--min-map`` turning the table into an exit status. Real converters, runtimes and Moxa3K test images."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from slfm.cli import main

pytestmark = pytest.mark.slow  # the quick subset (make test-fast) leaves this file out

pytest.importorskip("litert_torch", reason="needs the tflite extra: pip install 'slfm[tflite]'")
pytest.importorskip("executorch", reason="needs the executorch extra: pip install 'slfm[executorch]'")


def bench(checkpoint, moxa, tmp_path, *args) -> tuple[int, str, dict]:
    out = tmp_path / "report"
    common = ["--data", moxa, "--limit", 8, "--runs", 2, "--warmup", 0, "--threads", "1", "--bootstrap", 0]
    argv = ["bench", "artifacts", checkpoint, *common, "--work", tmp_path / "work", "--out", out, *args]
    r = CliRunner().invoke(main, [str(a) for a in argv], catch_exceptions=False)
    report = json.loads(out.with_suffix(".json").read_text()) if out.with_suffix(".json").exists() else {}
    return r.exit_code, r.output, report


def test_failed_rows_are_rows_and_the_gate_names_them(artifacts, real_checkpoint, moxa, tmp_path):
    good = artifacts["tflite-fp32"]
    broken = tmp_path / "broken.tflite"  # a truncated download, its sidecar intact
    broken.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    shutil.copy(good.with_name(good.name + ".json"), broken.with_name(broken.name + ".json"))
    junk = tmp_path / "junk_qat.pt"  # the QAT row's converter input is not a quantized checkpoint
    junk.write_bytes(b"not a checkpoint")
    code, out, report = bench(
        real_checkpoint,
        moxa,
        tmp_path,
        *("--to", "tflite", "--precision", "int8", "--int8", "qat", "--qat", junk),
        *("--artifact", good, "--artifact", artifacts["executorch-int8"], "--artifact", broken),
        *("--min-map", 0.3),
    )
    rows = {r["model"]: r for r in report["rows"]}
    assert list(rows) == [
        "pytorch fp32",
        "tflite int8 QAT",
        f"file {good.name}",
        f"file {artifacts['executorch-int8'].name}",
        "file broken.tflite",
    ]
    ref = rows["pytorch fp32"]["map50"]
    assert ref > 0.3
    fp32 = rows[f"file {good.name}"]
    assert fp32["status"] == "matches" and abs(fp32["map50"] - ref) <= 1e-3 and fp32["latency_ms"]["1"]["p50"] > 0
    assert fp32["size_bytes"] == good.stat().st_size
    int8 = rows[f"file {artifacts['executorch-int8'].name}"]
    assert int8["status"] in ("loads", "matches") and int8["precision"] == "int8" and "1" in int8["latency_ms"]
    qat = rows["tflite int8 QAT"]
    assert qat["status"] == "failed" and qat["reason"].startswith("export: QAT checkpoint:")
    assert str(junk) in qat["reason"]
    assert rows["file broken.tflite"]["status"] == "failed"
    assert rows["file broken.tflite"]["reason"].startswith(f"load: {broken}: not a loadable")
    assert code == 1  # the gate: both failed rows named, the good ones not
    last = out.strip().splitlines()[-1]
    assert last.startswith("Error: gate --min-map 0.3: 2 row(s) failed it:")
    assert "tflite int8 QAT (failed: export" in last and "file broken.tflite (failed: load" in last
    assert good.name not in last
    md = (tmp_path / "report.md").read_text()
    assert "| file broken.tflite | **failed** |" in md and "| tflite int8 QAT | **failed** |" in md


def test_min_map_floor_fails_a_row_that_runs(artifacts, real_checkpoint, moxa, tmp_path):
    good = artifacts["tflite-fp32"]
    args = ("--to", "none", "--artifact", good)
    code, out, report = bench(real_checkpoint, moxa, tmp_path, *args, "--min-map", 0.05)
    assert code == 0, out
    got = next(r for r in report["rows"] if r["model"] == f"file {good.name}")["map50"]
    code, out, _ = bench(real_checkpoint, moxa, tmp_path, *args, "--min-map", 0.99)
    assert code == 1 and f"file {good.name} (mAP@0.5 {got:.4f})" in out.strip().splitlines()[-1]
