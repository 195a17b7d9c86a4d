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
