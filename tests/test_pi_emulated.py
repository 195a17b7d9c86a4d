"""The ssh target and `slfm deploy pi`, for real: an emulated aarch64 Debian root (qemu-user) with
Python 3.11, numpy<2 and tflite-runtime 2.14, reached through its own sshd on 127.0.0.1 like any Pi.
Set up by device_tests/pi_root/setup.sh (as root); about 100x slower than native, so a 320 model and
a few images."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner
from test_parity_support import MOXA, artifacts, data_args, pi_ssh

from slfm.cli import main
from slfm.device_tests.deploy_pi import pi

pytestmark = pytest.mark.slow  # the quick subset (make test-fast) leaves this file out


def test_parity_over_ssh_on_emulated_pi(tmp_path):
    target, cfg = pi_ssh()
    ckpt, tfl = artifacts()
    out = tmp_path / "rep"
    args = [
        "parity",
        str(tfl),
        "--checkpoint",
        str(ckpt),
        "--target",
        target,
        "--ssh-config",
        str(cfg),
        *data_args(2),
        "--runs",
        "2",
        "--warmup",
        "1",
        "--out",
        str(out),
    ]
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    rep = json.loads(out.with_suffix(".json").read_text())
    assert rep["target_machine"] == "aarch64"
    (row,) = rep["artifacts"]
    assert row["target"] == target and row["passed"] is True
    assert "tflite_runtime 2.14.0" in row["runtime"] and row["device"]["machine"] == "aarch64"
    assert row["device"]["python"].startswith("3.11") and row["device"]["numpy"].startswith("1.")
    assert row["on_device_postprocess"] is True  # detections from the shipped slfm.postprocess on the Pi
    assert row["snr_db"] > 60 and row["detection_recall"] == 1.0 and row["map50"] is not None
    assert row["latency_ms"]["runs"] == 2 and row["peak_memory_mb"] > 10


def test_deploy_pi_image_mode(tmp_path):
    target, cfg = pi_ssh()
    _, tfl = artifacts()
    src = tmp_path / "photos; with spaces"  # quoting: a folder name the remote shell must not split
    src.mkdir()
    names = [Path(ln.strip()).stem for ln in (MOXA / "test.txt").read_text().splitlines()[:2]]
    for n in names:  # the Pi has no OpenCV/Pillow: PNG is read by the runner's numpy decoder
        cv2.imwrite(str(src / f"{n}.png"), cv2.imread(str(MOXA / "images" / f"{n}.jpg")))
    r = CliRunner().invoke(
        pi,
        [
            target,
            str(tfl),
            str(src),
            "--ssh-config",
            str(cfg),
            "--threads",
            "1",
            "--score-threshold",
            "0.3",
            "--fetch",
            str(tmp_path / "back"),
        ],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    assert "aarch64" in r.output and "FPS:" in r.output and "OpenCV no" in r.output
    lines = [json.loads(ln) for ln in r.output.splitlines() if ln.startswith("{")]
    assert sorted(d["image"] for d in lines) == sorted(f"{n}.png" for n in names)
    summary = json.loads((tmp_path / "back" / "out" / "detections.json").read_text())
    assert summary["frames"] == 2 and summary["fps_inference"] > 0 and "tflite_runtime" in summary["runtime"]
    for n in names:
        drawn = cv2.imread(str(tmp_path / "back" / "out" / f"{n}.png"))
        orig = cv2.imread(str(src / f"{n}.png"))
        assert drawn.shape == orig.shape
        n_dets = len(summary["results"][f"{n}.png"])
        assert (n_dets > 0) == bool((drawn != orig).any())  # boxes drawn exactly when something was found
    assert sum(len(v) for v in summary["results"].values()) > 0


def test_deploy_pi_jpeg_without_opencv_is_a_clear_error(tmp_path):
    target, cfg = pi_ssh()
    _, tfl = artifacts()
    jpg = MOXA / "images" / Path((MOXA / "test.txt").read_text().split()[0]).name
    r = CliRunner().invoke(pi, [target, str(tfl), str(jpg), "--ssh-config", str(cfg), "--threads", "1"])
    assert r.exit_code != 0
    assert f"{jpg.name}: JPEG needs OpenCV or Pillow" in str(r.exception) + r.output
