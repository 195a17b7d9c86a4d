"""The local tflite-runtime 2.14 environment: a venv with numpy<2 (tflite-runtime 2.14 needs it, the main
environment has numpy 2), used as a subprocess with .npy files -- the same runtime a Raspberry Pi runs.
The one place that finds or makes it: the parity harness (:class:`slfm.device_tests.runners.SubprocessRunner`)
and ``slfm.device_tests.runtimes.load_runner(path, runtime="tflite-runtime")`` both use it.

    python -m slfm.device_tests.tflrt_env [--venv PATH]    # create it (idempotent, needs PyPI)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from slfm.errors import SlfmError

PACKAGES = ("numpy<2", "tflite-runtime==2.14.0")


REPO_VENV = Path(__file__).resolve().parents[1] / ".venv-tflrt"  # a checkout's own, when made there


def default_venv() -> Path:
    env = os.environ.get("SLFM_TFLRT_VENV")
    if env:
        return Path(env)
    if (REPO_VENV / "bin" / "python").is_file():
        return REPO_VENV
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "slfm" / "tflite-runtime-2.14"


def venv_python(venv: str | Path | None = None) -> Path:
    return Path(venv or default_venv()) / "bin" / "python"


def is_ready(venv: str | Path | None = None) -> bool:
    py = venv_python(venv)
    if not py.is_file():
        return False
    r = subprocess.run([str(py), "-c", "import numpy, tflite_runtime.interpreter"], capture_output=True, timeout=120)
    return r.returncode == 0


def ensure(venv: str | Path | None = None, quiet: bool = True) -> Path:
    """Create the venv if it is not ready; returns its python."""
    venv = Path(venv or default_venv())
    if is_ready(venv):
        return venv_python(venv)
    py = venv_python(venv)
    steps = [[sys.executable, "-m", "venv", str(venv)], [str(py), "-m", "pip", "install", "-q", *PACKAGES]]
    for cmd in steps:
        r = subprocess.run(cmd, capture_output=quiet, text=True)
        if r.returncode != 0:
            tail = (r.stderr or "").strip().splitlines()[-1:] if quiet else []
            raise SlfmError(f"creating the tflite-runtime venv {venv} failed at {' '.join(cmd[:3])}: {tail}")
    if not is_ready(venv):
        raise SlfmError(f"{venv}: tflite-runtime still not importable after install")
    return py


@click.command()
@click.option(
    "--venv",
    type=click.Path(path_type=Path),
    default=None,
    help="where (default: $SLFM_TFLRT_VENV or ~/.cache/slfm/tflite-runtime-2.14)",
)
def main(venv: Path | None) -> None:
    """Create the tflite-runtime 2.14 venv the parity harness drives as a subprocess."""
    try:
        py = ensure(venv, quiet=False)
    except SlfmError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"tflite-runtime venv ready: {py}")


if __name__ == "__main__":
    main()
