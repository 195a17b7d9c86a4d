"""Parameter and MAC counts of a model at a given input size."""

from __future__ import annotations

import torch
from torch import nn


def count_parameters(model: nn.Module, include_heatmap: bool = True) -> int:
    return sum(
        p.numel() for name, p in model.named_parameters() if include_heatmap or not name.startswith("heatmap_head.")
    )


def count_macs(model: nn.Module, image_size: int | tuple[int, int]) -> int:
    """Multiply-accumulates of convolutions and linear layers in one forward pass (batch 1)."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    total = 0

    def hook(mod: nn.Module, _inp, out) -> None:
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
            total += out.numel() * k
        elif isinstance(mod, nn.Linear):
            total += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, h, w))
    finally:
        for hd in handles:
            hd.remove()
        model.train(was_training)
    return total
