"""Cross-layer range equalization of the backbone before int8 (Nagel et al., "Data-Free Quantization Through
Weight Equalization and Bias Correction", ICCV 2019; AIMET's CLE).

int8 activations are per-tensor: one scale for all channels of a tensor. In the fp32 MobileNetV1-0.25 backbone
the channels of one tensor span up to 8x in range (``slfm bench layers`` and the per-channel maxima on Moxa3K
holdout images), so the typical channel gets a fraction of the 256 levels. Conv -> BatchNorm -> LeakyReLU is
positively homogeneous per channel, so channel ``i`` of a producer's output can be divided by ``s_i > 0`` (its
BatchNorm affine) and the consumers' input channel ``i`` multiplied by ``s_i``: the fp32 function is unchanged
and the ranges move.

- A tensor consumed only by depthwise convolutions (per-channel int8 weights) is fully equalized: every channel
  is scaled to the tensor's largest range, and the depthwise weights absorb ``s_i`` at no precision cost.
- A tensor consumed by a dense convolution is half-equalized (``s_i = sqrt(r_i / R)``): the consumer's
  per-output-channel weight scale is shared across its input channels, so moving all of the range there
  would trade activation precision for weight precision.

The result is an ordinary SL-FMDet state (same keys), so quantized checkpoints store it like any other weights.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from slfm.model import SLFMDet

EQUALIZE_BATCHES = 8  # calibration batches (of 8 letterboxed images) that measure the channel ranges


@dataclass(frozen=True)
class Pair:
    """A producer's BatchNorm and the convolutions that read its (activated) output."""

    bn: str
    consumers: tuple[str, ...]


def equalizable_pairs(model: SLFMDet) -> list[Pair]:
    """Every producer -> consumers edge whose consumers are all convolutions: the MobileNetV1 backbone and its taps
    into the FPN. The FPN's adds and the context modules' concatenations are left alone (their inputs share
    one scale); equalizing the SSH modules' stacked 3x3 branches as well changed no output SNR on Moxa3K."""
    blocks = [f"body.stage1.{i}" for i in range(len(model.body.stage1))]
    blocks += [f"body.stage2.{i}" for i in range(len(model.body.stage2))]
    blocks += [f"body.stage3.{i}" for i in range(len(model.body.stage3))]
    taps = {"body.stage1.5": "fpn.output1.0", "body.stage2.5": "fpn.output2.0", "body.stage3.1": "fpn.output3.0"}
    pairs: list[Pair] = []
    for k, name in enumerate(blocks):
        block = model.get_submodule(name)
        if len(block) == 6:  # depthwise -> BN -> act -> pointwise -> BN -> act
            pairs.append(Pair(f"{name}.1", (f"{name}.3",)))
            out_bn = f"{name}.4"
        else:  # the stem: conv -> BN -> act
            out_bn = f"{name}.1"
        consumers = ((f"{blocks[k + 1]}.0",) if k + 1 < len(blocks) else ()) + ((taps[name],) if name in taps else ())
        pairs.append(Pair(out_bn, consumers))
    return pairs


def channel_ranges(model: SLFMDet, batches: Iterable[torch.Tensor], names: list[str]) -> dict[str, torch.Tensor]:
    """Per-channel max |x| of each named BatchNorm's output over ``batches`` (letterboxed inputs)."""
    ranges: dict[str, torch.Tensor] = {}
    hooks = []
    for name in names:

        def hook(_m, _i, out, name=name):
            r = out.detach().abs().amax(dim=(0, 2, 3))
            ranges[name] = torch.maximum(ranges[name], r) if name in ranges else r

        hooks.append(model.get_submodule(name).register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for x in batches:
                model(x)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if not ranges:
        raise ValueError("equalization needs at least one calibration batch")
    return ranges


def _is_depthwise(conv: nn.Conv2d) -> bool:
    return conv.groups == conv.in_channels == conv.out_channels


@torch.no_grad()
def equalize(model: SLFMDet, batches: Iterable[torch.Tensor], floor: float = 1e-2) -> dict[str, float]:
    """Equalize ``model`` in place (fp32 outputs unchanged up to rounding); returns, per producer,
    the ratio of its largest to its median channel range after equalization (1.0 = equal)."""
    pairs = equalizable_pairs(model)
    ranges = channel_ranges(model, batches, [p.bn for p in pairs])
    spread: dict[str, float] = {}
    for pair in pairs:
        r = ranges[pair.bn].clamp_min(1e-8)
        convs = [model.get_submodule(c) for c in pair.consumers]
        full = r / r.max()
        s = full if all(_is_depthwise(c) for c in convs) else full.sqrt()
        s = s.clamp_min(floor)
        bn = model.get_submodule(pair.bn)
        bn.weight.div_(s)
        bn.bias.div_(s)
        for conv in convs:
            shape = (-1, 1, 1, 1) if _is_depthwise(conv) else (1, -1, 1, 1)
            conv.weight.mul_(s.view(shape))
        after = r / s
        spread[pair.bn] = float(after.max() / after.median())
    return spread


def equalized(model: SLFMDet, batches: Iterable[torch.Tensor]) -> SLFMDet:
    """An equalized copy of ``model`` (the same fp32 function; ``model`` is left as it is)."""
    out = copy.deepcopy(model)
    equalize(out, batches)
    return out
