"""``slfm deploy android|ios``: the copy into real copies of the demo apps, and every error path reachable
without a phone, an Android SDK or a Mac (real adb when installed)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from slfm.artifact import ArtifactMeta, write_sidecar
from slfm.cli import main
from slfm.config import ModelConfig
from slfm.deploy_cli import ANDROID_ASSETS, IOS_RESOURCES, adb_devices, find_android_sdk

REPO = Path(__file__).resolve().parents[1]


def make_artifact(folder: Path, name: str, fmt: str) -> Path:
    """A small stand-in model file (or .mlpackage folder) with a real sidecar."""
    path = folder / name
    if name.endswith(".mlpackage"):
        (path / "Data").mkdir(parents=True)
        (path / "Manifest.json").write_text("{}")
        (path / "Data" / "weights.bin").write_bytes(b"\x01\x02")
    else:
        path.write_bytes(b"model-bytes-" + name.encode())
    write_sidecar(path, ArtifactMeta.from_model_config(ModelConfig(image_size=320), fmt, "fp32"))
    return path


@pytest.fixture()
def android_app(tmp_path) -> Path:
    app = tmp_path / "android_demo"
    shutil.copytree(REPO / "android_demo", app, ignore=shutil.ignore_patterns("build", ".gradle", "assets"))
    return app


@pytest.fixture()
def ios_app(tmp_path) -> Path:
    app = tmp_path / "ios_demo"
    shutil.copytree(REPO / "ios_demo", app, ignore=shutil.ignore_patterns(".build", "build", "Resources"))
    return app


@pytest.fixture()
def no_sdk(monkeypatch):
    monkeypatch.delenv("ANDROID_HOME", raising=False)
    monkeypatch.delenv("ANDROID_SDK_ROOT", raising=False)


def invoke(*args):
    return CliRunner().invoke(main, ["deploy", *map(str, args)])


def test_deploy_help_lists_subcommands():
    r = invoke("--help")
    assert r.exit_code == 0
    assert "android" in r.output and "ios" in r.output
    if importlib.util.find_spec("slfm.device_tests.deploy_pi"):
        assert "pi" in r.output


def test_deploy_help_without_pi_module(monkeypatch):
    """`pi` comes from another package, imported lazily: `slfm deploy --help` works without it."""
    from slfm.deploy_cli import DeployGroup

    monkeypatch.setattr(DeployGroup, "lazy", {"pi": "slfm.device_tests.no_such_module:pi"})
    r = invoke("--help")
    assert r.exit_code == 0
    assert "android" in r.output and "  pi " not in r.output


def test_android_missing_artifact(android_app):
    r = invoke("android", android_app / "nope.tflite", "--app", android_app)
    assert r.exit_code == 1
    assert "artifact not found" in r.output


def test_android_artifact_without_sidecar(tmp_path, android_app):
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(b"x")
    r = invoke("android", bare, "--app", android_app)
    assert r.exit_code == 1
    assert "sidecar" in r.output and "bare.tflite.json" in r.output


def test_android_refuses_coreml(tmp_path, android_app):
    art = make_artifact(tmp_path, "m.mlpackage", "coreml")
    r = invoke("android", art, "--app", android_app)
    assert r.exit_code == 1
    assert "a coreml artifact" in r.output


def test_android_wrong_app_folder(tmp_path):
    art = make_artifact(tmp_path, "m.tflite", "tflite")
    r = invoke("android", art, "--app", tmp_path)
    assert r.exit_code == 1
    assert "is not the Android demo" in r.output


def test_android_copies_then_stops_without_sdk(tmp_path, android_app, no_sdk):
    assets = android_app / ANDROID_ASSETS
    assets.mkdir(parents=True)
    (assets / "model.pte").write_bytes(b"old")  # a previous ExecuTorch deploy: must go
    (assets / "model.pte.json").write_text("{}")
    art = make_artifact(tmp_path, "slfm_int8.tflite", "tflite")
    r = invoke("android", art, "--app", android_app)
    assert r.exit_code == 1
    assert "no Android SDK" in r.output and "ANDROID_HOME" in r.output
    assert (assets / "model.tflite").read_bytes() == art.read_bytes()
    assert (assets / "model.tflite.json").read_text() == Path(f"{art}.json").read_text()
    assert not (assets / "model.pte").exists() and not (assets / "model.pte.json").exists()


def test_android_executorch_copy_only(tmp_path, android_app, no_sdk):
    art = make_artifact(tmp_path, "slfm.pte", "executorch")
    r = invoke("android", art, "--app", android_app, "--no-build")
    assert r.exit_code == 0, r.output
    assert (android_app / ANDROID_ASSETS / "model.pte").read_bytes() == art.read_bytes()


def test_android_sdk_from_local_properties(android_app, no_sdk, tmp_path):
    (android_app / "local.properties").write_text(f"sdk.dir={tmp_path}\n")
    assert find_android_sdk(android_app) == tmp_path


def test_android_without_gradle(tmp_path, android_app, monkeypatch):
    monkeypatch.setenv("ANDROID_HOME", str(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    (android_app / "gradlew").unlink(missing_ok=True)
    r = invoke("android", make_artifact(tmp_path, "m.tflite", "tflite"), "--app", android_app)
    assert r.exit_code == 1
    assert "no Gradle" in r.output


def test_android_without_adb(tmp_path, android_app, monkeypatch):
    sdk = tmp_path / "sdk"
    sdk.mkdir()
    monkeypatch.setenv("ANDROID_HOME", str(sdk))
    (android_app / "gradlew").write_text("#!/bin/sh\nexit 99\n")  # never reached: the device check comes first
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "adb" else real_which(name, *a, **k))
    r = invoke("android", make_artifact(tmp_path, "m.tflite", "tflite"), "--app", android_app)
    assert r.exit_code == 1
    assert "adb not found" in r.output


@pytest.fixture()
def real_adb():
    adb = shutil.which("adb")
    if not adb:
        pytest.skip("adb not installed (apt install adb)")
    yield adb
    subprocess.run([adb, "kill-server"], capture_output=True, timeout=60)  # the server `adb devices` started


def test_android_no_device_with_real_adb(tmp_path, android_app, monkeypatch, real_adb):
    if adb_devices(real_adb):
        pytest.skip("a real Android device is connected")
    sdk = tmp_path / "sdk"
    sdk.mkdir()
    monkeypatch.setenv("ANDROID_HOME", str(sdk))
    (android_app / "gradlew").write_text("#!/bin/sh\nexit 99\n")
    r = invoke("android", make_artifact(tmp_path, "m.tflite", "tflite"), "--app", android_app)
    assert r.exit_code == 1
    assert "no Android device" in r.output
    r = invoke("android", tmp_path / "m.tflite", "--app", android_app, "--serial", "emulator-5554")
    assert "'emulator-5554' is not connected" in r.output


def test_ios_copies_then_stops_without_xcode(tmp_path, ios_app, monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    art = make_artifact(tmp_path, "slfm_fp16.mlpackage", "coreml")
    res = ios_app / IOS_RESOURCES
    r = invoke("ios", art, "--app", ios_app)
    assert r.exit_code == 1
    assert "xcodebuild not found" in r.output and "macOS" in r.output
    assert (res / "Model.mlpackage" / "Data" / "weights.bin").read_bytes() == b"\x01\x02"
    assert (res / "Model.mlpackage.json").read_text() == Path(f"{art}.json").read_text()
    # A second deploy replaces the package rather than nesting it.
    r = invoke("ios", art, "--app", ios_app, "--no-build")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (res / "Model.mlpackage").iterdir()) == ["Data", "Manifest.json"]


def test_ios_refuses_tflite(tmp_path, ios_app):
    r = invoke("ios", make_artifact(tmp_path, "m.tflite", "tflite"), "--app", ios_app)
    assert r.exit_code == 1
    assert "a tflite artifact" in r.output and ".mlpackage" in r.output


def test_ios_wrong_app_folder(tmp_path):
    r = invoke("ios", make_artifact(tmp_path, "m.mlpackage", "coreml"), "--app", tmp_path)
    assert r.exit_code == 1
    assert "is not the iOS demo" in r.output
