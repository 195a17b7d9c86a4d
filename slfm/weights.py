"""Loading pretrained weights from the reference's files (legacy pickles, ``module.`` prefixes)."""

from __future__ import annotations

from pathlib import Path

import torch

from slfm.checkpoint import load_data
from slfm.errors import SlfmError
from slfm.model import SLFMDet


def _load_state(path: str | Path) -> dict[str, torch.Tensor]:
    obj = load_data(path, "weights file")
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise SlfmError(f"{path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_imagenet_backbone(model: SLFMDet, path: str | Path) -> None:
    """Load the ImageNet MobileNetV1-0.25 (keys ``stage{1,2,3}.*``, ``fc.*``) strictly into ``model.body``."""
    state = {k: v for k, v in _load_state(path).items() if not k.startswith("fc.")}
    try:
        model.body.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise SlfmError(f"{path} does not match the MobileNetV1-0.25 backbone: {e}") from e


def load_retinaface(model: SLFMDet, path: str | Path) -> list[str]:
    """Initialise from RetinaFace-mnet0.25 (WIDER FACE): backbone, FPN, SSH and box heads.

    The 3-class heads start from RetinaFace's 2-class (background, face) heads, the face logit
    copied to the mask logit. CBAM and heatmap parts keep their fresh init. Returns the loaded keys.
    """
    src = _load_state(path)
    own = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for k, v in src.items():
        if k.startswith("body.") or k.startswith("fpn.") or k.startswith("BboxHead."):
            out[k] = v
        elif k.startswith("ssh"):
            out[f"context{k[3]}.ssh.{k[5:]}"] = v
        elif k.startswith("ClassHead."):
            a = model.config.num_anchors
            per = v.shape[0] // a
            if per != 2 or model.config.num_classes != 3:
                continue
            v = v.reshape(a, 2, *v.shape[1:])
            v = torch.cat([v, v[:, 1:2]], dim=1)  # (bg, face) -> (bg, face, mask)
            out[k] = v.reshape(a * 3, *v.shape[2:])
    bad = [k for k, v in out.items() if k not in own or own[k].shape != v.shape]
    if bad:
        raise SlfmError(f"{path} does not match SL-FMDet: unexpected or mis-shaped keys {bad[:5]}")
    if not any(k.startswith("body.") for k in out):
        raise SlfmError(f"{path} holds no RetinaFace backbone weights (keys 'body.*')")
    model.load_state_dict(out, strict=False)
    return sorted(out)
