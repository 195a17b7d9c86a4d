"""slfm.manifest: the one cache (key -> outputs) and configs carried between processes as data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from slfm.manifest import Manifest, config_from_json, config_json, input_hashes, step_key


def test_configs_round_trip_through_json_with_paths_tuples_and_nested_configs(tmp_path):
    from slfm.config import ModelConfig
    from slfm.convert.job import ConvertJob
    from slfm.quantize.qat import QATConfig, QATJob
    from slfm.train import TrainConfig, TrainJob

    jobs = [
        ConvertJob(checkpoint="moxa3k", formats=("tflite", "executorch"), qat=tmp_path / "q.pt", out=tmp_path),
        QATJob("moxa3k", tmp_path, config=QATConfig(epochs=3, limit=5), class_map={"a": "face"}),
        TrainJob(
            TrainConfig(data=str(tmp_path), milestones=(0.5, 0.8)), ModelConfig(image_size=320), tmp_path / "l.pt"
        ),
    ]
    for job in jobs:
        data = json.loads(json.dumps(config_json(job)))  # plain JSON: strings, numbers, lists, dicts
        back = config_from_json(type(job), data)
        assert back == job, type(job).__name__
    assert isinstance(config_from_json(ConvertJob, config_json(jobs[0])).qat, Path)


def test_a_config_with_an_unknown_field_is_refused_by_name():
    from slfm.convert.job import ConvertJob

    with pytest.raises(ValueError, match="ConvertJob: unknown field.*shell"):
        config_from_json(ConvertJob, {"checkpoint": "moxa3k", "shell": "rm -rf /"})


def test_up_to_date_needs_the_same_key_a_done_status_and_every_output(tmp_path):
    out = tmp_path / "a.bin"
    out.write_bytes(b"x")
    m = Manifest(tmp_path)
    m.record("step", "k1", [out])
    again = Manifest(tmp_path)  # read back from disk
    assert again.up_to_date("step", "k1") == [out]
    assert again.up_to_date("step", "k2") is None  # other settings / inputs / code
    out.unlink()
    assert again.up_to_date("step", "k1") is None  # an output is gone: rerun
    out.write_bytes(b"x")
    again.record("step", "k1", [out], status="failed")
    assert Manifest(tmp_path).up_to_date("step", "k1") is None
    Manifest(tmp_path).drop()
    assert Manifest(tmp_path).entries == {}


def test_keys_follow_input_content_and_ignore_the_manifest_in_an_input_folder(tmp_path):
    d = tmp_path / "art"
    d.mkdir()
    (d / "m.tflite").write_bytes(b"v1")
    k = step_key("s", {"a": 1}, [d], code="c")
    Manifest(d).record("x", "y", [])  # the folder's own record is not an input
    assert step_key("s", {"a": 1}, [d], code="c") == k and "manifest.json" not in str(input_hashes([d]))
    (d / "m.tflite").write_bytes(b"v2")
    assert step_key("s", {"a": 1}, [d], code="c") != k
    assert step_key("s", {"a": 2}, [d], code="c") != step_key("s", {"a": 1}, [d], code="c")


def test_the_step_runner_takes_only_known_step_kinds(tmp_path):
    """A step file names a kind of slfm.steps.KINDS, never a module or function to import."""
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"kind": "os:system", "config": {}}))
    res = subprocess.run(
        [sys.executable, "-m", "slfm.steps", str(cfg), str(tmp_path / "r.json")], capture_output=True, text=True
    )
    assert res.returncode == 1 and "unknown step kind 'os:system'" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "r.json").exists()
