"""Shared helpers for the parity and Pi tests (no tests here): a RetinaFace-initialised 320 checkpoint and its
fp32 .tflite (made by slfm's own converter, the artifact that ships), cached on disk across test files."""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the quick subset (make test-fast) leaves this file out

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATA = SHARED / "data"
MOXA = DATA / "moxa3k"
AIZOO = DATA / "aizoo"
RETINAFACE = SHARED / "weights" / "retinaface_mobilenet0.25_Final.pth"
PI_CACHE = Path(os.environ.get("SLFM_PI_ROOT", "/var/cache/slfm-pi-root"))
CACHE = Path(tempfile.gettempdir()) / "slfm-parity-test-cache"
CONVERTER = "slfm.convert.api fp32"  # in the cache key: files made before by litert-torch directly are not reused


def need_data() -> None:
    if not (MOXA.is_dir() and (AIZOO / "val-sample").is_dir() and RETINAFACE.is_file()):
        pytest.skip(f"needs the shared datasets and weights in {SHARED} (absent here)")


def data_args(n_moxa: int) -> list[str]:
    moxa = ["--data", str(MOXA), "--dataset", "moxa3k", "--split", "test"]
    aizoo = ["--data", str(AIZOO), "--dataset", "aizoo", "--split", "val-sample"]
    return [*moxa, *aizoo, "--limit", str(n_moxa)]


def make_checkpoint(path: Path, size: int = 320, perturb: str | None = None) -> Path:
    """RetinaFace-initialised SL-FMDet without attention, its face logits raised by 6 so that it makes
    detections at the demo threshold on real photos (as initialised, its face probability stays below 0.02):
    parity needs detections to match, not good ones. ``perturb`` names a parameter to zero (a broken model)."""
    import torch

    from slfm.checkpoint import save_checkpoint
    from slfm.config import ModelConfig
    from slfm.model import SLFMDet
    from slfm.weights import load_retinaface

    torch.manual_seed(0)
    cfg = ModelConfig(image_size=size, attention=False)
    model = SLFMDet(cfg)
    load_retinaface(model, RETINAFACE)
    with torch.no_grad():
        for head in model.ClassHead:
            head.conv1x1.bias.view(-1, cfg.num_classes)[:, 1] += 6.0
        if perturb:
            model.get_parameter(perturb).mul_(0.0)
    save_checkpoint(path, model.eval(), cfg)
    return path


def export_tflite(checkpoint: Path, out: Path) -> Path:
    """fp32 .tflite + sidecar of a checkpoint, made by the converter ``slfm convert --to tflite`` ships
    (:func:`slfm.convert.api.convert`, ``FORMATS["tflite"]``'s converter), moved to ``out``."""
    from slfm.artifact import sidecar_path
    from slfm.convert.api import convert

    with tempfile.TemporaryDirectory(prefix="convert-", dir=out.parent) as tmp:
        (made,) = convert(checkpoint, ["tflite"], "fp32", Path(tmp))
        os.replace(sidecar_path(made), sidecar_path(out))
        os.replace(made, out)
    return out


def artifacts(perturb: str | None = None) -> tuple[Path, Path]:
    """(reference checkpoint, fp32 .tflite made from it or from its ``perturb``ed copy), cached."""
    need_data()
    CACHE.mkdir(parents=True, exist_ok=True)
    ckpt = CACHE / "retinaface320.pt"
    if not ckpt.is_file():
        make_checkpoint(ckpt)
    key = hashlib.sha256(ckpt.read_bytes() + (perturb or "").encode() + CONVERTER.encode()).hexdigest()[:12]
    tfl = CACHE / f"model-{key}.tflite"
    if not (tfl.is_file() and Path(str(tfl) + ".json").is_file()):
        src = make_checkpoint(CACHE / f"perturbed-{key}.pt", perturb=perturb) if perturb else ckpt
        export_tflite(src, tfl)
        if perturb:  # the sidecar names the real reference, as a converter's would
            import json

            side = Path(str(tfl) + ".json")
            d = json.loads(side.read_text())
            d["source_checkpoint"] = str(ckpt)
            side.write_text(json.dumps(d))
    return ckpt, tfl


def pi_ssh() -> tuple[str, Path]:
    """(ssh://pi@127.0.0.1:PORT, ssh config) of the emulated Pi, or skip saying why."""
    setup = "device_tests/pi_root/setup.sh"
    if (PI_CACHE / "UNAVAILABLE").is_file():
        pytest.skip(f"emulated Pi unavailable on this machine: {(PI_CACHE / 'UNAVAILABLE').read_text().strip()}")
    cfg, port_file = PI_CACHE / "ssh_config", PI_CACHE / "port"
    if not (cfg.is_file() and port_file.is_file()):
        pytest.skip(f"emulated Pi not set up: run {setup} as root (builds it under {PI_CACHE})")
    port = int(port_file.read_text())
    with socket.socket() as s:
        s.settimeout(2)
        if s.connect_ex(("127.0.0.1", port)) != 0:
            pytest.skip(f"emulated Pi's sshd not running on 127.0.0.1:{port}: run {setup} as root")
    return f"ssh://pi@127.0.0.1:{port}", cfg
