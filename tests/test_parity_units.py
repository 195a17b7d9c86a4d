"""Parity harness pieces that need no dataset: thresholds, metrics, command construction and quoting,
bounded failures of unreachable or hung targets, adb and macOS error paths, the runner's image I/O."""

from __future__ import annotations

import json
import shlex
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from slfm.artifact import ArtifactMeta, write_sidecar
from slfm.device_tests import coreml_spec
from slfm.device_tests.compare import SNR_CAP_DB, live_anchors, match_detections, output_errors, snr_db
from slfm.device_tests.deploy_pi import detect_command
from slfm.device_tests.parity import ParityOptions, plan
from slfm.device_tests.remote import AdbRemote, SshRemote, parse_adb_devices
from slfm.device_tests.runners import DeviceRunner
from slfm.device_tests.thresholds import DEFAULTS, checks, load_thresholds
from slfm.errors import SlfmError
from slfm.inputs import DataSpec
from slfm.metrics import ImageDetections

NASTY = "my dir/it's $(rm -rf ~); `x` & y"


def test_snr_and_errors():
    ref = np.array([1.0, -2.0, 3.0, 4.0])
    assert snr_db(ref, ref) == SNR_CAP_DB
    e = output_errors(ref, ref + 0.1)
    assert e["max_abs_error"] == pytest.approx(0.1)
    assert e["snr_db"] == pytest.approx(10 * np.log10(30 / 0.04))
    with pytest.raises(ValueError, match="shape"):
        output_errors(ref, ref[:2])


def test_box_errors_count_only_anchors_that_can_become_detections():
    # 2 images x 3 anchors; probabilities (background, face, mask)
    scores = np.array(
        [
            [[0.99, 0.005, 0.005], [0.5, 0.45, 0.05], [0.97, 0.01, 0.02]],
            [[0.999, 0.0005, 0.0005], [0.99, 0.008, 0.002], [0.98, 0.019, 0.001]],
        ]
    )
    live = live_anchors(scores, 0.02)
    assert live.tolist() == [[False, True, True], [False, False, False]]
    loc = np.ones((2, 3, 4))
    out = loc.copy()
    out[0, 0] += 5.0  # a background anchor's offsets: never decoded
    assert output_errors(loc[live], out[live])["snr_db"] == SNR_CAP_DB
    assert output_errors(loc, out)["snr_db"] < 10
    assert live_anchors(scores[1:], 0.02).all()  # nothing above the threshold: every anchor counts


def test_match_detections_needs_same_label_and_iou():
    box = np.array([[10, 10, 50, 50]], np.float32)
    ref = [ImageDetections(np.vstack([box, box + 100]), np.array([0.9, 0.8]), np.array([1, 2]))]
    same = [ImageDetections(box + 2, np.array([0.9]), np.array([1]))]
    wrong_label = [ImageDetections(box, np.array([0.9]), np.array([2]))]
    far = [ImageDetections(box + 30, np.array([0.9]), np.array([1]))]
    assert match_detections(ref, same) == {"reference": 2, "artifact": 1, "matched": 1, "precision": 1.0, "recall": 0.5}
    assert match_detections(ref, wrong_label)["matched"] == 0
    assert match_detections(ref, far)["precision"] == 0.0


def test_thresholds_override_and_errors(tmp_path):
    t = load_thresholds(overrides=["int8.min_snr_db=15"])
    assert t["int8"]["min_snr_db"] == 15 and t["fp32"] == DEFAULTS["fp32"]
    f = tmp_path / "t.json"
    f.write_text(json.dumps({"fp32": {"max_map50_drop": 0.2}}))
    assert load_thresholds(f)["fp32"]["max_map50_drop"] == 0.2
    for bad, msg in (
        ("int8.snr=3", "unknown threshold"),
        ("int9.min_snr_db=3", "unknown precision"),
        ("fp32.min_snr_db=x", "not a number"),
        ("nodot", "PRECISION.NAME=VALUE"),
    ):
        with pytest.raises(SlfmError, match=msg):
            load_thresholds(overrides=[bad])
    row = {"snr_db": 30.0, "detection_recall": 1.0, "detection_precision": 0.5, "map50_drop": 0.0}
    failed = [c["name"] for c in checks(row, DEFAULTS["fp32"]) if not c["passed"]]
    assert failed == ["snr_db", "detection_precision"]


def test_data_spec_parse():
    d = DataSpec.parse("aizoo:/x y/aizoo:val-sample")
    assert (d.kind, d.root, d.split) == ("aizoo", Path("/x y/aizoo"), "val-sample")
    assert DataSpec.parse("moxa3k:/d").split == "test"
    with pytest.raises(SlfmError, match="KIND:PATH"):
        DataSpec.parse("coco:/d")


def test_data_specs_pair_data_dataset_split_like_train(tmp_path):
    from slfm.images import DataWarning
    from slfm.inputs import data_specs

    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    got = data_specs([a, b], ["moxa3k", "aizoo"], ["test", "val-sample"])
    assert [(d.kind, str(d.root), d.split) for d in got] == [("moxa3k", a, "test"), ("aizoo", b, "val-sample")]
    # defaults: moxa3k, and each layout's test split (slfm.layouts)
    assert [(d.kind, d.split) for d in data_specs([a, b], ["aizoo"])] == [("aizoo", "val"), ("aizoo", "val")]
    assert [(d.kind, d.split) for d in data_specs([a])] == [("moxa3k", "test")]
    with pytest.raises(SlfmError, match="2 --split options for 1 --data"):
        data_specs([a], [], ["test", "val"])
    with pytest.warns(DataWarning, match="deprecated"):  # the old KIND:PATH[:SPLIT] still works
        (old,) = data_specs([f"aizoo:{a}:val-sample"])
    assert (old.kind, str(old.root), old.split) == ("aizoo", a, "val-sample")
    with pytest.warns(DataWarning), pytest.raises(SlfmError, match="--dataset says moxa3k"):
        data_specs([f"aizoo:{a}"], ["moxa3k"])


def test_ssh_parse_and_command_quoting():
    r = SshRemote.parse("ssh://pi@raspberrypi.local:2222", ssh_config=Path("/c f/cfg"))
    assert (r.user, r.host, r.port) == ("pi", "raspberrypi.local", 2222)
    assert SshRemote.parse("ssh://host").user is None
    for bad in ("ssh://pi@host:0", "ssh://pi@ho st", "pi@host", "ssh://pi@host;rm"):
        with pytest.raises(SlfmError, match="ssh"):
            SshRemote.parse(bad)
    meta = ArtifactMeta(format="tflite", precision="fp32", image_size=320)
    dr = DeviceRunner(r, Path("m.tflite"), meta, python="/opt/my py/bin/python3", base_dir=NASTY)
    line = dr.remote_command(NASTY + "/run-1", 5, 1)
    argv = r.command(line)
    opts = " ".join(argv)
    assert "BatchMode=yes" in opts and "StrictHostKeyChecking" not in opts
    assert argv[argv.index("-F") + 1] == "/c f/cfg" and argv[argv.index("-p") + 1] == "2222"
    assert argv[-3:-1] == ["pi@raspberrypi.local", "--"]
    # the remote shell sees exactly the intended words: the nasty folder stays one argument
    words = shlex.split(line)
    assert words[:3] == ["cd", NASTY + "/run-1/bundle", "&&"]
    assert words[3] == "/opt/my py/bin/python3" and words[4:6] == ["-m", "pi_runner.parity"]
    d = shlex.split(detect_command(NASTY, "python3", "../input/a b.png", 2, 0.4, None))
    assert d[1] == NASTY + "/bundle" and "../input/a b.png" in d and d[d.index("--score") + 1] == "0.4"


def test_ssh_unreachable_fails_fast_with_host():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = SshRemote.parse(f"ssh://pi@127.0.0.1:{port}", connect_timeout=5)
    t = time.monotonic()
    with pytest.raises(SlfmError, match=f"127.0.0.1:{port}.*ssh failed"):
        r.check(timeout=30)
    assert time.monotonic() - t < 20


def test_ssh_hung_target_times_out_and_report_keeps_rows(tmp_path):
    """A server that accepts and never speaks: the step fails within its bound, the report is still written."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    conns = []
    threading.Thread(target=lambda: conns.append(srv.accept()), daemon=True).start()
    port = srv.getsockname()[1]
    try:
        r = SshRemote.parse(f"ssh://pi@127.0.0.1:{port}", connect_timeout=30)
        t = time.monotonic()
        with pytest.raises(SlfmError, match="did not finish within 3 s"):
            r.check(timeout=3)
        assert time.monotonic() - t < 10
    finally:
        srv.close()


def test_adb_missing_and_device_parsing(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no adb here (Debian's adb is not installed in this image)
    monkeypatch.delenv("ADB", raising=False)
    with pytest.raises(SlfmError, match="adb not found on PATH"):
        AdbRemote.parse("adb").check()
    assert AdbRemote.parse("adb:emulator-5554").serial == "emulator-5554"
    with pytest.raises(SlfmError, match="adb:SERIAL"):
        AdbRemote.parse("adb:bad serial")
    text = "List of devices attached\nR58M123\tdevice\nemulator-5554\toffline\n\n"
    assert parse_adb_devices(text) == [("R58M123", "device"), ("emulator-5554", "offline")]


def test_adb_command_construction(monkeypatch, tmp_path):
    fake = tmp_path / "adb"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("ADB", str(fake))
    r = AdbRemote(serial="R58M123")
    meta = ArtifactMeta(format="tflite", precision="fp32", image_size=320)
    line = DeviceRunner(r, Path("m.tflite"), meta, base_dir="/data/local/tmp/a b").remote_command(
        "/data/local/tmp/a b/r", 3, 1
    )
    argv = r.command(line)
    assert argv[:4] == [str(fake), "-s", "R58M123", "shell"] and len(argv) == 5
    assert shlex.split(argv[4])[1] == "/data/local/tmp/a b/r/bundle"


def test_macos_target_elsewhere_says_needs_macos(tmp_path):
    pkg = tmp_path / "m.mlpackage"
    pkg.mkdir()
    meta = ArtifactMeta(format="coreml", precision="fp32", image_size=320)
    write_sidecar(pkg, meta)
    steps = plan(ParityOptions(artifacts=[pkg], target="macos"), pkg, meta, None)
    if coreml_spec.is_macos():
        pytest.skip("on macOS the Core ML predictions run")
    assert steps[0][0] == "needs-macos" and "need macOS" in steps[0][1]
    spec = coreml_spec.spec_checks(pkg, meta)
    assert spec[0]["name"] == "loads" and spec[0]["passed"] is False  # an empty package is no model


def test_imageio_lite_reads_what_opencv_writes(tmp_path):
    import cv2
    from skimage import data

    from slfm.device_tests.pi_runner import imageio_lite
    from slfm.device_tests.pi_runner.backend import RunnerError

    img = np.ascontiguousarray(data.chelsea()[::4, ::4, ::-1])  # a real photo, small (Paeth rows are slow)
    for ext in (".png", ".ppm", ".bmp"):
        cv2.imwrite(str(tmp_path / f"a{ext}"), img)
        assert np.array_equal(imageio_lite.read(tmp_path / f"a{ext}"), img), ext
    imageio_lite.write_png(tmp_path / "b.png", img)
    assert np.array_equal(cv2.imread(str(tmp_path / "b.png")), img)
    cv2.imwrite(str(tmp_path / "c.jpg"), img)
    with pytest.raises(RunnerError, match=r"c\.jpg: JPEG needs OpenCV or Pillow"):
        imageio_lite.read(tmp_path / "c.jpg")


def test_numpy_drawing_marks_box_and_label():
    from slfm.device_tests.pi_runner import drawing

    img = np.zeros((100, 120, 3), np.uint8)
    out = drawing.draw(img, np.array([[20.0, 30.0, 80.0, 90.0]]), np.array([0.97]), np.array([2]))
    assert tuple(out[60, 20]) == drawing.COLORS[2] and tuple(out[60, 50]) == (0, 0, 0)
    assert (out[15:28, 22:60] == 255).all(axis=2).any()  # white text pixels above the box
