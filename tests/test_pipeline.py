"""``slfm pipeline``: the whole chain on real photos, a rerun that skips finished steps, a failing step."""

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from slfm.cli import main
from slfm.eval_job import EvalJob
from slfm.manifest import Manifest
from slfm.pipeline import Step, StepStatus, run_steps

pytestmark = pytest.mark.slow  # the quick subset (make test-fast) leaves this file out


def test_pipeline_runs_skips_and_keeps_outputs(tmp_path):
    pytest.importorskip("litert_torch")
    out = tmp_path / "run"
    args = ["pipeline", "--checkpoint", "moxa3k", "--to", "tflite", "--parity-limit", "2", "--out", str(out)]
    r = CliRunner().invoke(main, [*args, "--threads", "1"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    state = json.loads((out / "manifest.json").read_text())
    assert set(state) == {"convert-fp32", "convert-int8-tflite", "parity"}
    assert all(s["status"] == "done" and s["outputs"] for s in state.values())
    # what made each artifact, recorded by the convert step itself
    made = json.loads((out / "artifacts" / "manifest.json").read_text())
    assert {e["precision"] for e in made.values()} == {"fp32", "int8"} and all(
        Path(e["artifact"]).exists() for e in made.values()
    )
    report = json.loads((out / "report.json").read_text())
    assert {a["format"] for a in report["artifacts"]} == {"tflite"}
    # fp32 and, without any data, int8 from the bundled QAT checkpoint: both checked on real photos
    assert {a["precision"] for a in report["artifacts"]} == {"fp32", "int8"}
    assert all(a["passed"] is True for a in report["artifacts"])
    assert all(a["snr_db"] > 40 for a in report["artifacts"] if a["precision"] == "fp32")
    # a rerun finds every step up to date, at another thread count too (the default one follows the load)
    r = CliRunner().invoke(main, [*args, "--threads", "2"], catch_exceptions=False)
    assert r.exit_code == 0 and r.output.count("up to date, skipped") == len(state), r.output
    assert "ran at 1 threads, --force reruns at 2" in r.output


def test_failing_step_stops_the_chain_and_keeps_earlier_outputs(moxa, tmp_path):
    out = tmp_path / "run"
    ok = EvalJob("moxa3k", moxa, limit=2, json_out=tmp_path / "ok.json", threads=1)
    steps = [
        Step("ok", ok),
        Step("broken", EvalJob(str(tmp_path / "missing.pt"), tmp_path)),
        Step("never", ok),
    ]
    from slfm.errors import SlfmError

    with pytest.raises(SlfmError, match="step 'broken' failed.*missing.pt"):
        run_steps(steps, out)
    state = json.loads((out / "manifest.json").read_text())
    assert state["ok"]["status"] == "done" and state["broken"]["status"] == "failed" and "never" not in state
    assert state["ok"]["outputs"] == [str(tmp_path / "ok.json")] and (tmp_path / "ok.json").exists()  # kept
    manifest = Manifest(out)
    assert manifest.up_to_date("ok", steps[0].key()) and manifest.up_to_date("broken", steps[1].key()) is None
    # the step's config travels as data, and reads back equal
    from slfm.steps import from_json

    assert from_json(json.loads((out / "steps" / "ok.json").read_text())) == ok


def test_step_key_follows_settings_and_input_content_not_mtimes_or_command_lines(tmp_path):
    """The cache keys on what decides a step's output: an edited input, another setting or other code reruns
    it; a touch does not."""
    import os

    data = tmp_path / "in.bin"
    data.write_bytes(b"weights v1")
    job = EvalJob(str(data), tmp_path, limit=3)
    key = Step("s", job, [data]).key(code="c1")
    os.utime(data, (1, 1))  # older mtime, same content: same key
    assert Step("s", job, [data]).key(code="c1") == key
    data.write_bytes(b"weights v2")
    assert Step("s", job, [data]).key(code="c1") != key
    data.write_bytes(b"weights v1")
    assert Step("s", job, [data]).key(code="c2") != key  # an upgrade of slfm (its source or version) reruns the step
    assert Step("s", EvalJob(str(data), tmp_path, limit=4), [data]).key(code="c1") != key  # another setting
    # a setting left at its default and the same setting given explicitly are one config: one key
    assert Step("s", EvalJob(str(data), tmp_path, limit=3, bootstrap=0), [data]).key(code="c1") == key
    # how many threads ran it is not what it made: the default follows the machine's load, and a finished step
    # must not rerun because the load moved (a CI failure: the rerun's parity step had other threads)
    assert Step("s", EvalJob(str(data), tmp_path, limit=3, threads=2), [data], threads=2).key(code="c1") == key
    from slfm.fingerprint import code_fingerprint

    assert code_fingerprint() == code_fingerprint() and len(code_fingerprint()) == 64


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
    Manifest(art).record("fp32-tflite", "k", [art / "new.tflite"])
    lines = []
    moved = retire_stale_artifacts(art, ckpt, tmp_path / "stale", echo=lines.append)
    assert moved == [tmp_path / "stale" / "old.tflite"]
    assert (tmp_path / "stale" / "old.tflite").read_bytes() == b"old"  # kept, not deleted
    assert (tmp_path / "stale" / "old.tflite.json").exists() and not (art / "old.tflite").exists()
    assert (art / "new.tflite").exists() and (art / "notes.json").exists() and Manifest(art).entries == {}
    assert "old" not in lines[0] and str(tmp_path / "stale") in lines[0]
    # nothing stale: nothing moved, records kept
    Manifest(art).record("fp32-tflite", "k", [art / "new.tflite"])
    assert retire_stale_artifacts(art, ckpt, tmp_path / "stale2") == []
    assert "fp32-tflite" in Manifest(art).entries and not (tmp_path / "stale2").exists()


def test_main_job_takes_int8_from_the_bundled_qat_checkpoint(tmp_path):
    """No QAT training by default: the bundled weights' QAT checkpoint makes the int8 artifacts; QAT runs only
    when asked (--qat-epochs), and other weights fall back to PTQ, with or without data."""
    from slfm.checkpoint import BUNDLED_QAT, MODELS_DIR, bundled_qat, resolve_checkpoint
    from slfm.pipeline import plan

    fmts = ["tflite", "executorch"]
    ckpt = resolve_checkpoint("moxa3k")
    assert bundled_qat(ckpt) == MODELS_DIR / BUNDLED_QAT["moxa3k"]
    for data in (None, tmp_path):
        steps = {s.name: s for s in plan(tmp_path, None, data, "moxa3k", 0, 0, None, fmts, ["local"], 3, 1)}
        assert "qat" not in steps
        for fmt in fmts:
            assert steps[f"convert-int8-{fmt}"].config.qat == bundled_qat(ckpt)
            assert bundled_qat(ckpt) in steps[f"convert-int8-{fmt}"].inputs  # its content decides the artifact
    steps = {s.name: s for s in plan(tmp_path, None, tmp_path, "moxa3k", 0, 3, None, fmts, ["local"], 3, 1)}
    assert steps["qat"].config.config.epochs == 3
    assert steps["convert-int8-tflite"].config.qat == tmp_path / "qat" / "qat.pt"
    other = tmp_path / "other.pt"
    other.write_bytes(ckpt.read_bytes() + b"")  # same bytes: same hash, so still the bundled QAT's source
    assert bundled_qat(other) == bundled_qat(ckpt)
    from slfm.checkpoint import load_model, save_checkpoint

    model, _ = load_model(ckpt)
    save_checkpoint(other, model, model.config)  # the same weights saved anew: another file, no bundled QAT
    steps = {s.name: s for s in plan(tmp_path, other, None, "moxa3k", 0, 0, None, fmts, ["local"], 3, 1)}
    job = steps["convert-int8-tflite"].config
    assert job.ptq and job.qat is None


def test_bundled_qat_checkpoints_belong_to_the_bundled_weights():
    """When the bundled fp32 weights change, their QAT checkpoint must be remade (the card's command)."""
    from slfm.checkpoint import BUNDLED, BUNDLED_QAT, MODELS_DIR, file_sha256, read_data

    for name, qfile in BUNDLED_QAT.items():
        q = read_data(MODELS_DIR / qfile)
        assert q["source_sha256"] == file_sha256(MODELS_DIR / BUNDLED[name]), f"{qfile} is stale: remake it"
        assert q["quantizer"]["mode"] == "qat" and (MODELS_DIR / qfile).stat().st_size < 2_000_000
        assert q["data"]["val_split"] == "holdout"  # picked on data carved from train, not the test split


def test_a_running_step_shows_its_progress_and_elapsed_time_on_the_console(moxa, tmp_path):
    lines = []
    status = StepStatus(lines.append, every=0.5, live=False)
    step = Step("eval", EvalJob("moxa3k", moxa, limit=30, threads=1), threads=1)
    run_steps([step], tmp_path / "run", echo=lines.append, status=status)
    progress = [ln for ln in lines if re.match(r"\[1/1\] eval: \d+:\d\d elapsed", ln)]
    assert any(re.search(r"\d+/30 \[", ln) for ln in progress), lines  # tqdm's count and ETA, from the log
    assert re.fullmatch(r"\[1/1\] eval: done in 0:\d\d \([\d.]+ s\)", lines[-2]), lines
    assert "eval" in (tmp_path / "run" / "logs" / "eval.log").read_text()
