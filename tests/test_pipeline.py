"""``slfm pipeline``: the whole chain on real photos, a rerun that skips finished steps, a failing step."""

import json

import pytest
from click.testing import CliRunner

from slfm.cli import main
from slfm.pipeline import Step, run_steps, up_to_date


def test_pipeline_runs_skips_and_keeps_outputs(tmp_path):
    pytest.importorskip("litert_torch")
    out = tmp_path / "run"
    args = ["pipeline", "--checkpoint", "moxa3k", "--formats", "tflite", "--parity-limit", "2", "--out", str(out)]
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    state = json.loads((out / "steps.json").read_text())
    assert all(s["status"] == "done" for s in state.values())
    report = json.loads((out / "report.json").read_text())
    assert {a["format"] for a in report["artifacts"]} == {"tflite"}
    assert all(a["passed"] is True and a["snr_db"] > 40 for a in report["artifacts"])
    # a rerun finds every step up to date
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0 and r.output.count("up to date, skipped") == len(state)


def test_failing_step_stops_the_chain_and_keeps_earlier_outputs(tmp_path):
    out = tmp_path / "run"
    first = tmp_path / "first.txt"
    steps = [
        Step("ok", ["info", "--image-size", "320"], [out / "logs" / "ok.log"]),
        Step("broken", ["eval", str(tmp_path / "missing.pt"), "--data", str(tmp_path)], [first]),
        Step("never", ["info"], [tmp_path / "never"]),
    ]
    from slfm.errors import SlfmError

    with pytest.raises(SlfmError, match="step 'broken' failed.*missing.pt"):
        run_steps(steps, out)
    state = json.loads((out / "steps.json").read_text())
    assert state["ok"]["status"] == "done" and state["broken"]["status"] == "failed" and "never" not in state
    assert "0.24" in (out / "logs" / "ok.log").read_text()  # the earlier step's output is still there
    assert up_to_date(steps[0], state) and not up_to_date(steps[1], state)


def test_rerun_with_new_weights_moves_the_old_weights_artifacts_aside(tmp_path):
    from slfm.artifact import ArtifactMeta, write_sidecar
    from slfm.checkpoint import bundled_checkpoint, file_sha256
    from slfm.config import ModelConfig
    from slfm.pipeline import retire_stale_artifacts

    ckpt = bundled_checkpoint("moxa3k")
    art = tmp_path / "artifacts"
    art.mkdir()
    for name, sha in (("old", "0" * 64), ("new", file_sha256(ckpt))):
        (art / f"{name}.tflite").write_bytes(name.encode())
        write_sidecar(
            art / f"{name}.tflite", ArtifactMeta.from_model_config(ModelConfig(), "tflite", "fp32", source_sha256=sha)
        )
    (art / "notes.json").write_text("{}")  # not an artifact's sidecar: left alone
    (art / "fp32-tflite.done").write_text("")
    lines = []
    moved = retire_stale_artifacts(art, ckpt, tmp_path / "stale", echo=lines.append)
    assert moved == [tmp_path / "stale" / "old.tflite"]
    assert (tmp_path / "stale" / "old.tflite").read_bytes() == b"old"  # kept, not deleted
    assert (tmp_path / "stale" / "old.tflite.json").exists() and not (art / "old.tflite").exists()
    assert (art / "new.tflite").exists() and (art / "notes.json").exists() and not (art / "fp32-tflite.done").exists()
    assert "old" not in lines[0] and str(tmp_path / "stale") in lines[0]
    # nothing stale: nothing moved, markers kept
    (art / "fp32-tflite.done").write_text("")
    assert retire_stale_artifacts(art, ckpt, tmp_path / "stale2") == []
    assert (art / "fp32-tflite.done").exists() and not (tmp_path / "stale2").exists()
