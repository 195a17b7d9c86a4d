"""Export forms: the same math as :mod:`slfm.layers`, written with ops every backend delegates.

Measured with executorch 1.5.1's ``XnnpackPartitioner`` on SL-FMDet (320 input): ``amax`` (6), channel-wise
``mean(1)`` (3) and ``upsample_nearest2d`` (2) stayed outside the XNNPACK delegate, so the program hopped
between XNNPACK and portable kernels 11 times. The partitioner delegates ``max_pool2d``, ``avg_pool2d``,
``mean`` over (2, 3), ``permute``, ``cat`` and ``view``, so:

- global max over (H, W): ``max_pool2d`` with the whole feature map as kernel;
- channel-wise max / mean: move C into a spatial position (``permute``), ``max_pool2d`` / ``avg_pool2d``
  with kernel (C, 1), move back;
- nearest 2x upsampling: interleave copies with ``stack`` + ``reshape`` (only where the target size is
  exactly twice the source, as at every input size divisible by 32; otherwise ``F.interpolate`` stays).

TFLite converts all of them to int8 kernels too, so every artifact (and QAT) uses one graph.
:func:`export_friendly` returns a copy of the model with these forms; the original is untouched.
"""

from __future__ import annotations

import copy
import types

import torch
import torch.nn.functional as F
from torch import nn

from slfm.layers import FPN, ChannelGate, SpatialGate

FORMS_VERSION = 1


def global_max(x: torch.Tensor) -> torch.Tensor:
    """``x.amax((2, 3), keepdim=True)``."""
    k = tuple(x.shape[-2:])
    return F.max_pool2d(x, kernel_size=k, stride=k)  # explicit stride: coremltools needs it


def channel_max(x: torch.Tensor) -> torch.Tensor:
    """``x.amax(1, keepdim=True)``."""
    y = x.permute(0, 2, 1, 3)  # N, H, C, W
    k = (x.shape[1], 1)
    return F.max_pool2d(y, kernel_size=k, stride=k).permute(0, 2, 1, 3)


def channel_mean(x: torch.Tensor) -> torch.Tensor:
    """``x.mean(1, keepdim=True)``."""
    y = x.permute(0, 2, 1, 3)
    k = (x.shape[1], 1)
    return F.avg_pool2d(y, kernel_size=k, stride=k).permute(0, 2, 1, 3)


def upsample_nearest(x: torch.Tensor, size) -> torch.Tensor:
    """``F.interpolate(x, size=size, mode="nearest")``."""
    n, c, h, w = x.shape
    if tuple(size) != (2 * h, 2 * w):
        return F.interpolate(x, size=size, mode="nearest")
    # two distinct view nodes per cat: XNNPACK's partitioner counts distinct inputs and rejects cat([y, y])
    y = torch.cat([x.reshape(n, c, h, w, 1), x.reshape(n, c, h, w, 1)], dim=4).reshape(n, c, h, 2 * w)
    return torch.cat([y.reshape(n, c, h, 1, 2 * w), y.reshape(n, c, h, 1, 2 * w)], dim=3).reshape(n, c, 2 * h, 2 * w)


def _channel_gate_forward(self: ChannelGate, x: torch.Tensor) -> torch.Tensor:
    avg = x.mean((2, 3), keepdim=True)
    both = self.mlp(torch.cat([avg, global_max(x)], dim=0))
    n = x.shape[0]
    return x * torch.sigmoid(both[:n] + both[n:])


def _spatial_gate_forward(self: SpatialGate, x: torch.Tensor) -> torch.Tensor:
    desc = torch.cat([channel_max(x), channel_mean(x)], dim=1)
    return x * torch.sigmoid(self.conv(desc))


def _fpn_forward(self: FPN, feats):
    o1 = self.output1(feats[0])
    o2 = self.output2(feats[1])
    o3 = self.output3(feats[2])
    o2 = self.merge2(o2 + upsample_nearest(o3, o2.shape[-2:]))
    o1 = self.merge1(o1 + upsample_nearest(o2, o1.shape[-2:]))
    return [o1, o2, o3]


_FORWARDS = {ChannelGate: _channel_gate_forward, SpatialGate: _spatial_gate_forward, FPN: _fpn_forward}


def export_friendly(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` whose CBAM gates and FPN use the export forms (same parameters, same math)."""
    out = copy.deepcopy(model)
    for mod in out.modules():
        fwd = _FORWARDS.get(type(mod))
        if fwd is not None:
            mod.forward = types.MethodType(fwd, mod)
    return out
