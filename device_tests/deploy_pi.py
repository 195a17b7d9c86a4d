"""``slfm deploy pi ssh://user@host ARTIFACT [SOURCE]``: copy the runner and the model to a Raspberry Pi and
run it there on an image, a folder, a video file or a camera. The Pi needs Python 3 with numpy and
tflite-runtime or ai-edge-litert; OpenCV only for video, camera and JPEG input. For an int8 model install
ai-edge-litert (aarch64 wheels on PyPI): the runner picks it first for int8, because tflite-runtime 2.14's
default XNNPACK delegate takes no int8 op (reports/README.md, `slfm bench latency`)."""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

import click

from slfm.artifact import read_sidecar, sidecar_path
from slfm.device_tests.bundle import build_bundle
from slfm.device_tests.remote import SshRemote
from slfm.errors import SlfmError
from slfm.formats import for_deploy, hint
from slfm.options import FRACTION


def detect_command(
    remote_dir: str, python: str, source: str, threads: int | None, score: float | None, max_frames: int | None
) -> str:
    """The shell line run on the Pi (every piece quoted)."""
    args = ["../model.tflite", source, "--out", "../out"]
    if threads:
        args += ["--threads", str(threads)]
    if score is not None:
        args += ["--score", str(score)]
    if max_frames:
        args += ["--max-frames", str(max_frames)]
    return f"cd {shlex.quote(remote_dir + '/bundle')} && {shlex.quote(python)} -m pi_runner.detect {shlex.join(args)}"


def deploy(
    remote: SshRemote,
    artifact: Path,
    source: Path | None,
    camera: int | None,
    remote_source: str | None,
    remote_dir: str,
    python: str,
    threads: int | None,
    score: float | None,
    max_frames: int | None,
    fetch: Path | None,
    timeout: float,
    echo=click.echo,
) -> None:
    meta = read_sidecar(artifact)
    if meta.format not in for_deploy("pi"):
        wanted = " or ".join(hint(f) for f in for_deploy("pi").values())
        raise SlfmError(f"{artifact}: a {meta.format} artifact; a Pi runs {wanted} (slfm convert --to tflite)")
    given = [x is not None for x in (source, camera, remote_source)]
    if sum(given) != 1:
        raise SlfmError(
            "give exactly one input: SOURCE (a local image, folder or video), --camera N or --remote-source"
        )
    if source is not None and not source.exists():
        raise SlfmError(f"source not found: {source}")
    arch = remote.check(timeout=max(remote.connect_timeout * 4, 60))
    echo(f"{remote.name}: {arch}; copying runner, {artifact.name} and input to {remote_dir}")
    q = shlex.quote(remote_dir)
    remote.run(f"rm -rf {q}/bundle {q}/input {q}/out", timeout, f"clean {remote_dir}")
    with tempfile.TemporaryDirectory(prefix="slfm-deploy-") as tmp:
        files = {
            "bundle": build_bundle(Path(tmp) / "bundle"),
            "model.tflite": artifact,
            "model.tflite.json": sidecar_path(artifact),
        }
        if source is not None:
            files[f"input/{source.name}"] = source
        remote.push(files, remote_dir, timeout)
    if source is not None:
        src = f"../input/{source.name}"
    elif camera is not None:
        src = str(camera)
    else:
        src = remote_source
    remote.stream(detect_command(remote_dir, python, src, threads, score, max_frames), timeout, echo, "detector")
    if fetch is not None:
        remote.pull(remote_dir, ["out"], fetch, timeout)
        echo(f"annotated outputs and detections.json copied to {fetch / 'out'}")


@click.command("pi")
@click.argument("target")
@click.argument("artifact", type=click.Path(path_type=Path))
@click.argument("source", required=False, type=click.Path(path_type=Path))
@click.option("--camera", type=int, default=None, help="camera index on the Pi (needs OpenCV there)")
@click.option("--remote-source", default=None, help="an image, folder or video already on the Pi")
@click.option("--remote-dir", default="slfm-deploy", show_default=True, help="folder on the Pi (relative: home)")
@click.option("--remote-python", default="python3", show_default=True)
@click.option("--threads", type=int, default=None, help="interpreter threads (default: the Pi's cores)")
@click.option(
    "--score-threshold", "score", type=FRACTION, default=None, help="keep scores above this  [default: the artifact's]"
)
@click.option("--score", "score_alias", type=FRACTION, default=None, hidden=True)  # the former spelling
@click.option("--max-frames", type=int, default=None, help="video/camera: stop after N frames")
@click.option("--fetch", type=click.Path(path_type=Path), default=None, help="copy annotated outputs back here")
@click.option("--ssh-config", type=click.Path(path_type=Path), default=None, help="ssh -F FILE")
@click.option("--identity", type=click.Path(path_type=Path), default=None, help="ssh -i KEY")
@click.option("--connect-timeout", type=int, default=15, show_default=True)
@click.option("--timeout", type=float, default=3600, show_default=True, help="seconds before giving up")
def pi(
    target,
    artifact,
    source,
    camera,
    remote_source,
    remote_dir,
    remote_python,
    threads,
    score,
    score_alias,
    max_frames,
    fetch,
    ssh_config,
    identity,
    connect_timeout,
    timeout,
):
    """Run ARTIFACT (.tflite + its .json sidecar) on the Raspberry Pi at TARGET (ssh://user@host[:port]) on
    SOURCE (a local image, folder or video, copied over), --camera N or --remote-source PATH: boxes and labels
    drawn, detections and FPS printed."""
    remote = SshRemote.parse(target, ssh_config=ssh_config, identity=identity, connect_timeout=connect_timeout)
    score = score_alias if score is None else score
    deploy(
        remote,
        artifact,
        source,
        camera,
        remote_source,
        remote_dir,
        remote_python,
        threads,
        score,
        max_frames,
        fetch,
        timeout,
    )
