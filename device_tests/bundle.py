"""The runner bundle shipped to a device: the ``pi_runner`` package plus the numpy-only ``slfm`` modules it
reuses (copied, never re-implemented), laid out so ``python3 -m pi_runner.parity`` runs from its root."""

from __future__ import annotations

import shutil
from pathlib import Path

import slfm

# numpy-only modules (cv2 is optional for preprocess/draw: the runner supplies a numpy stand-in).
SLFM_MODULES = (
    "__init__",
    "anchors",
    "codec",
    "nms",
    "postprocess",
    "preprocess",
    "config",
    "errors",
    "artifact",
    "metrics",
    "draw",
    "outputs",  # stdlib only: artifact.py writes sidecars through it
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
    shutil.copytree(RUNNER_DIR, dest / "pi_runner", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest
