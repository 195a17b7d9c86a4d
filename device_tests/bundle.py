"""The runner bundle shipped to a device: the ``pi_runner`` package plus the NumPy-only inference core
(:mod:`slfm.core`, copied whole) and the ``slfm`` modules it and the runner reuse (copied, never
re-implemented), laid out so ``python3 -m pi_runner.parity`` runs from its root."""

from __future__ import annotations

import shutil
from pathlib import Path

import slfm

# numpy-only modules (slfm.core uses OpenCV when present; draw is only imported when it is).
SLFM_PACKAGES = ("core",)
SLFM_MODULES = (
    "__init__",
    "anchors",
    "codec",
    "nms",
    "postprocess",
    "config",
    "errors",
    "artifact",
    "metrics",
    "draw",
    "outputs",  # stdlib only: artifact.py writes sidecars through it
    "formats",  # stdlib only: artifact.py checks a sidecar's format and precision against it
)
RUNNER_DIR = Path(__file__).resolve().parent / "pi_runner"


def build_bundle(dest: str | Path) -> Path:
    """Write the bundle into ``dest`` (created; replaced if present) and return it."""
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "slfm").mkdir(parents=True)
    src = Path(slfm.__file__).resolve().parent
    for name in SLFM_MODULES:
        shutil.copy2(src / f"{name}.py", dest / "slfm" / f"{name}.py")
    for name in SLFM_PACKAGES:
        shutil.copytree(src / name, dest / "slfm" / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(RUNNER_DIR, dest / "pi_runner", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest
