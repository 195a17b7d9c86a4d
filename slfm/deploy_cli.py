"""``slfm deploy android|ios|pi``: put an exported artifact into a demo app (or onto a Pi) and run it there.

``android`` copies the .tflite (or ExecuTorch .pte) and its sidecar into ``android_demo``'s assets, builds
the app with Gradle where an Android SDK is present and installs it over adb. ``ios`` copies the .mlpackage
and its sidecar into ``ios_demo``'s resources and builds with xcodebuild on macOS. Each step that cannot run
here stops with one clear line saying what is missing; the copy before it has been done.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import click

from slfm.artifact import ArtifactMeta, read_sidecar, sidecar_path
from slfm.errors import SlfmError
from slfm.formats import FORMATS, for_deploy, hint
from slfm.options import LazyGroup

REPO = Path(__file__).resolve().parents[1]
ANDROID_APP = REPO / "android_demo"
IOS_APP = REPO / "ios_demo"
ANDROID_ASSETS = Path("app/src/main/assets")
ANDROID_PACKAGE = "org.slfm.demo"
ANDROID_APK = Path("app/build/outputs/apk/debug/app-debug.apk")
# file names the app looks for: model<suffix> for each format slfm.formats lists for android
ANDROID_MODELS = {name: "model" + f.suffix for name, f in for_deploy("android").items()}
IOS_RESOURCES = Path("SLFMDemo/Resources")
IOS_MODEL = "Model.mlpackage"  # the name the app's code loads (Xcode compiles it to Model.mlmodelc)
IOS_SCHEME = "SLFMDemo"


class DeployGroup(LazyGroup):
    lazy = {"pi": "slfm.device_tests.deploy_pi:pi", "web": "slfm.deploy_web:web"}


@click.group(cls=DeployGroup)
def deploy() -> None:
    """Put an artifact on a device: Android (adb), iOS (Xcode), a Raspberry Pi (ssh) or a web page (any phone)."""


# ---------------------------------------------------------------------------------------------- shared


def read_artifact(artifact: Path, app: str) -> ArtifactMeta:
    """The artifact's metadata, checked: it exists, has a sidecar, and is a format the ``app`` takes."""
    if not artifact.exists():
        raise SlfmError(f"artifact not found: {artifact}")
    meta = read_sidecar(artifact)
    formats = for_deploy(app)
    if meta.format not in formats:
        wanted = " or ".join(hint(f) for f in formats.values())
        raise SlfmError(f"{artifact}: a {meta.format} artifact; this app takes {wanted}")
    return meta


def _replace(src: Path, dst: Path) -> None:
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    elif dst.exists() or dst.is_symlink():
        dst.unlink()
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy2(src, dst)


def _run(cmd: list[str], what: str, cwd: Path | None = None, echo=click.echo) -> str:
    echo("$ " + " ".join(cmd))
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except OSError as e:
        raise SlfmError(f"{what}: cannot run {cmd[0]}: {e}") from e
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-15:])
        raise SlfmError(f"{what} failed (exit {r.returncode}):\n{tail}")
    return r.stdout


# ---------------------------------------------------------------------------------------------- android


def copy_android_model(artifact: Path, app: Path) -> list[Path]:
    """Copy the model and its sidecar into the app's assets under the names the app loads; remove the other
    runtime's model so that the app runs what was deployed. Returns the written paths."""
    meta = read_artifact(artifact, "android")
    if not (app / "app").is_dir():
        raise SlfmError(f"{app} is not the Android demo (no app/ module); pass --app android_demo")
    assets = app / ANDROID_ASSETS
    assets.mkdir(parents=True, exist_ok=True)
    for fmt, name in ANDROID_MODELS.items():
        if fmt != meta.format:
            for stale in (assets / name, sidecar_path(assets / name)):
                stale.unlink(missing_ok=True)
    dst = assets / ANDROID_MODELS[meta.format]
    _replace(artifact, dst)
    _replace(sidecar_path(artifact), sidecar_path(dst))
    return [dst, sidecar_path(dst)]


def find_android_sdk(app: Path, env: dict | None = None) -> Path:
    env = os.environ if env is None else env
    for key in ("ANDROID_HOME", "ANDROID_SDK_ROOT"):
        if env.get(key):
            sdk = Path(env[key])
            if not sdk.is_dir():
                raise SlfmError(f"{key}={sdk} is not a folder")
            return sdk
    props = app / "local.properties"
    if props.is_file():
        for line in props.read_text().splitlines():
            if line.startswith("sdk.dir="):
                return Path(line.split("=", 1)[1].strip())
    raise SlfmError(
        "no Android SDK: set ANDROID_HOME (Android Studio installs it in ~/Android/Sdk or ~/Library/Android/sdk), "
        f"or open {app} in Android Studio and build there"
    )


def find_gradle(app: Path) -> list[str]:
    wrapper = app / "gradlew"
    if wrapper.is_file():
        return [str(wrapper)]
    gradle = shutil.which("gradle")
    if gradle:
        return [gradle]
    raise SlfmError(
        f"no Gradle: {wrapper} is missing and `gradle` is not on PATH "
        f"(install Gradle 8.9+ and run `gradle wrapper` in {app} once, or build in Android Studio)"
    )


def find_adb(sdk: Path | None) -> str:
    if sdk is not None and (sdk / "platform-tools" / "adb").is_file():
        return str(sdk / "platform-tools" / "adb")
    adb = shutil.which("adb")
    if adb:
        return adb
    raise SlfmError("adb not found: install the Android SDK platform-tools (or `apt install adb`)")


def adb_devices(adb: str) -> list[str]:
    """Serials of the devices adb can use (state 'device'; 'unauthorized' and 'offline' ones are not)."""
    out = _run([adb, "devices"], "adb devices", echo=lambda _: None)
    rows = [line.split() for line in out.splitlines()[1:] if line.strip() and not line.startswith("*")]
    return [r[0] for r in rows if len(r) >= 2 and r[1] == "device"]


def pick_device(adb: str, serial: str | None) -> str:
    devices = adb_devices(adb)
    if serial:
        if serial not in devices:
            raise SlfmError(f"Android device {serial!r} is not connected (adb sees: {devices or 'none'})")
        return serial
    if not devices:
        raise SlfmError(
            "no Android device: connect a phone by USB with USB debugging on (Settings > Developer options) "
            "and accept the prompt; `adb devices` must list it as 'device'"
        )
    if len(devices) > 1:
        raise SlfmError(f"several Android devices ({', '.join(devices)}): choose one with --serial")
    return devices[0]


@deploy.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--app", type=click.Path(path_type=Path), default=ANDROID_APP, show_default=True, help="android_demo")
@click.option("--build/--no-build", default=True, show_default=True, help="build the APK with Gradle")
@click.option("--install/--no-install", default=True, show_default=True, help="install and start it over adb")
@click.option("--serial", default=None, help="adb serial of the phone (when several are connected)")
def android(artifact, app, build, install, serial):
    """Copy ARTIFACT (.tflite or .pte, with its .json sidecar) into the Android demo, build it and install it."""
    written = copy_android_model(artifact, app)
    click.echo("copied: " + ", ".join(str(p) for p in written))
    if not build:
        return
    sdk = find_android_sdk(app)
    gradle = find_gradle(app)
    adb = device = None
    if install:
        adb = find_adb(sdk)
        device = pick_device(adb, serial)
    _run([*gradle, "--console=plain", ":app:assembleDebug"], "Gradle build", cwd=app)
    apk = app / ANDROID_APK
    click.echo(f"built: {apk}")
    if device is None:
        return
    _run([adb, "-s", device, "install", "-r", str(apk)], "adb install")
    _run([adb, "-s", device, "shell", "am", "start", "-n", f"{ANDROID_PACKAGE}/.MainActivity"], "adb start")
    click.echo(f"installed and started on {device}")


# ---------------------------------------------------------------------------------------------- ios


def copy_ios_model(artifact: Path, app: Path) -> list[Path]:
    """Copy the .mlpackage and its sidecar into the iOS app's resources as Model.mlpackage(.json)."""
    meta = read_artifact(artifact, "ios")
    suffixes = FORMATS[meta.format].suffixes
    if artifact.suffix not in suffixes:
        raise SlfmError(f"{artifact}: expected a {' or a '.join(suffixes)}")
    if not (app / "project.yml").is_file():
        raise SlfmError(f"{app} is not the iOS demo (no project.yml); pass --app ios_demo")
    res = app / IOS_RESOURCES
    res.mkdir(parents=True, exist_ok=True)
    dst = res / (Path(IOS_MODEL).stem + artifact.suffix)
    for other in (res / (Path(IOS_MODEL).stem + s) for s in suffixes):
        if other != dst:
            for stale in (other, sidecar_path(other)):
                if stale.is_dir():
                    shutil.rmtree(stale)
                elif stale.exists():
                    stale.unlink()
    _replace(artifact, dst)
    _replace(sidecar_path(artifact), sidecar_path(dst))
    return [dst, sidecar_path(dst)]


def find_xcodebuild() -> str:
    xcodebuild = shutil.which("xcodebuild")
    if sys.platform != "darwin" or not xcodebuild:
        raise SlfmError(
            "xcodebuild not found: building the iOS app needs macOS with Xcode 15+ "
            "(the model is in place; on a Mac run `slfm deploy ios` again or open the project in Xcode)"
        )
    return xcodebuild


@deploy.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--app", type=click.Path(path_type=Path), default=IOS_APP, show_default=True, help="ios_demo")
@click.option("--build/--no-build", default=True, show_default=True, help="build with xcodebuild (macOS)")
@click.option("--device", default=None, help="UDID of a connected iPhone: build for it and install (devicectl)")
@click.option("--team", default=None, help="Apple development team ID for code signing")
def ios(artifact, app, build, device, team):
    """Copy ARTIFACT (.mlpackage with its .json sidecar) into the iOS demo and build it with Xcode."""
    written = copy_ios_model(artifact, app)
    click.echo("copied: " + ", ".join(str(p) for p in written))
    if not build:
        return
    xcodebuild = find_xcodebuild()
    if not (app / "SLFMDemo.xcodeproj").is_dir():
        xcodegen = shutil.which("xcodegen")
        if not xcodegen:
            raise SlfmError("no SLFMDemo.xcodeproj and no xcodegen: `brew install xcodegen`, then run this again")
        _run([xcodegen, "generate"], "xcodegen", cwd=app)
    dest = f"id={device}" if device else "generic/platform=iOS"
    cmd = [xcodebuild, "-project", "SLFMDemo.xcodeproj", "-scheme", IOS_SCHEME, "-configuration", "Debug"]
    cmd += ["-destination", dest, "-derivedDataPath", "build", "-allowProvisioningUpdates"]
    if team:
        cmd.append(f"DEVELOPMENT_TEAM={team}")
    _run([*cmd, "build"], "xcodebuild", cwd=app)
    built = app / "build/Build/Products/Debug-iphoneos/SLFMDemo.app"
    click.echo(f"built: {built}")
    if device:
        _run(["xcrun", "devicectl", "device", "install", "app", "--device", device, str(built)], "devicectl install")
        click.echo(f"installed on {device}; open 'SLFM Demo' on the phone")
