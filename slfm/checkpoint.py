"""Checkpoints are plain data (tensors, numbers, strings), loaded with ``weights_only=True``.

Each carries its model config, so every later step needs only the checkpoint file.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch

from slfm.config import ModelConfig
from slfm.errors import SlfmError
from slfm.formats import format_of
from slfm.manifest import file_sha256
from slfm.model import SLFMDet
from slfm.outputs import atomic_path

FORMAT = "slfm-checkpoint"
MODELS_DIR = Path(__file__).resolve().parent / "models"
# Weights shipped inside the package (see slfm/models/MODEL_CARD.md): name -> file. ``faces`` is the one
# detector of both data sets (issue #16); the specialists serve their own data set's commands.
BUNDLED = {"faces": "faces_640.pt", "aizoo": "aizoo_480.pt", "moxa3k": "moxa3k_512.pt"}
# int8 QAT checkpoints made from those weights (slfm qat; commands in MODEL_CARD.md): name -> file
BUNDLED_QAT = {"faces": "faces_640_qat.pt", "aizoo": "aizoo_480_qat.pt", "moxa3k": "moxa3k_512_qat.pt"}
DEFAULT_BUNDLED = "faces"
VERSION = 1


def save_checkpoint(path: str | Path, model: torch.nn.Module, config: ModelConfig, **extra) -> None:
    """Write atomically (temp file + rename) so an interrupted save never corrupts the last good one."""
    state = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    save_data(path, state)


def save_data(path: str | Path, state: dict) -> Path:
    """``torch.save`` a plain-data dict atomically: readers see the old file or the new one, never half."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


# On-device artifacts, told apart from checkpoints by name or by their flatbuffer identifier (bytes 4-8).
_ARTIFACT_IDS = (b"TFL3", b"ET12")


def _is_artifact(path: Path) -> bool:
    if format_of(path) is not None:
        return True
    try:
        with open(path, "rb") as f:
            return f.read(8)[4:8] in _ARTIFACT_IDS
    except OSError:
        return False


def load_data(path: str | Path, what: str = "slfm checkpoint"):
    """Load a data-only file (``torch.load(weights_only=True)``: tensors, numbers, strings; nothing it holds can
    run code). Any failure is one :class:`SlfmError` line naming the file and why, never advice to lift the
    guard."""
    path = Path(path)
    if path.is_dir() or (path.is_file() and _is_artifact(path)):
        kind = "an on-device artifact" if _is_artifact(path) else "a folder"
        raise SlfmError(
            f"{path} is {kind}, not a {what}: give an slfm checkpoint (.pt) or a bundled name "
            f"({', '.join(BUNDLED)}); artifacts are checked with `slfm parity`"
        )
    if not path.is_file():
        raise SlfmError(f"{what} not found: {path}")
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols are not the user's business
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        msg = str(e)
        code = re.search(r"GLOBAL ([\w.]+)", msg)
        if code:
            why = f"it holds code or objects other than plain data ({code[1]}); refused, nothing in it was run"
        elif "zip archive" in msg or isinstance(e, (EOFError, RuntimeError)):
            why = "corrupt or truncated"
        else:
            why = "corrupt, truncated or not a PyTorch file"
        raise SlfmError(f"{path} is not a readable {what}: {why}") from e


def read_tagged(path: str | Path, fmt: str, version: int, what: str, hint: str) -> dict:
    """Load a data-only file (:func:`load_data`) whose dict carries ``format == fmt``; clear errors otherwise."""
    path = Path(path)
    ckpt = load_data(path, what)
    if not isinstance(ckpt, dict) or ckpt.get("format") != fmt:
        raise SlfmError(f"{path} is not an {what} (no '{fmt}' format tag); {hint}")
    if ckpt.get("version", 0) > version:
        raise SlfmError(f"{path} has {what} version {ckpt['version']}; this slfm reads up to {version}")
    return ckpt


def read_checkpoint(path: str | Path) -> dict:
    return read_tagged(path, FORMAT, VERSION, "slfm checkpoint", "for pretrained backbones use --init")


def load_model(path: str | Path) -> tuple[SLFMDet, dict]:
    """Rebuild the model from a checkpoint's own config; returns (model in eval mode, checkpoint dict)."""
    ckpt = read_checkpoint(path)
    try:
        config = ModelConfig.from_dict(ckpt["model_config"])
        model = SLFMDet(config)
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise SlfmError(f"{path}: checkpoint does not match its model config: {str(e).splitlines()[0]}") from e
    model.eval()
    return model, ckpt


def bundled_checkpoint(name: str = DEFAULT_BUNDLED) -> Path:
    if name not in BUNDLED:
        raise SlfmError(f"no bundled weights named {name!r}: choose one of {', '.join(BUNDLED)} or give a path")
    path = MODELS_DIR / BUNDLED[name]
    if not path.is_file():
        raise SlfmError(f"bundled weights {path} are missing from this installation; pass a checkpoint path")
    return path


def bundled_qat(checkpoint: str | Path) -> Path | None:
    """The bundled QAT checkpoint made from the fp32 ``checkpoint`` (by its sha256), or None."""
    sha = file_sha256(checkpoint)
    for name in BUNDLED_QAT.values():
        path = MODELS_DIR / name
        if path.is_file() and read_data(path).get("source_sha256") == sha:
            return path
    return None


def read_data(path: str | Path) -> dict:
    """A data-only slfm file (:func:`load_data`): nothing it holds can run code."""
    return load_data(path, "slfm file")


def resolve_checkpoint(arg: str | Path | None, dataset: str | None = None) -> Path:
    """A checkpoint argument: a path, a bundled name (``BUNDLED``), or None for the bundled weights matching
    ``dataset`` (the joint ``faces`` detector otherwise)."""
    if arg is None:
        return bundled_checkpoint(dataset if dataset in BUNDLED else DEFAULT_BUNDLED)
    if str(arg) in BUNDLED and not Path(arg).exists():
        return bundled_checkpoint(str(arg))
    return Path(arg)


def export_for_release(src: str | Path, dst: str | Path, image_size: int | None = None) -> Path:
    """A shippable copy of a training checkpoint: weights, configs and metrics, no optimizer state.

    ``image_size`` sets the default inference input (the network is fully convolutional, so it may differ
    from the training crops); the training size is kept as ``train_image_size``.
    """
    ckpt = read_checkpoint(src)
    keep = {k: v for k, v in ckpt.items() if k != "train_state"}
    keep["source_sha256"] = file_sha256(src)
    keep["model_config"] = dict(keep["model_config"])
    keep.setdefault("train_image_size", keep["model_config"]["image_size"])
    if image_size is not None:
        if image_size < 32:
            raise SlfmError(f"image size {image_size} is below 32, the network's largest stride")
        keep["model_config"]["image_size"] = image_size
    return save_data(dst, keep)
