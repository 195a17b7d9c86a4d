"""SL-FMDet: MobileNetV1-0.25 + FPN + RCAM context + SSD heads (+ auxiliary heatmap head)."""

from __future__ import annotations

import torch
from torch import nn

from slfm.config import ModelConfig
from slfm.layers import FPN, RCAM, Head, HeatmapHead, MobileNetV1


class SLFMDet(nn.Module):
    """Outputs ``(loc [N, A, 4], conf [N, A, num_classes])`` as raw SSD offsets and class logits.

    ``forward(x, with_heatmap=True)`` also returns the stride-16 heatmap [N, 1, H/16, W/16]; it is a
    training-only output and never part of an exported graph.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        c = self.config
        ch = c.fpn_channels
        self.body = MobileNetV1()
        self.fpn = FPN(MobileNetV1.out_channels, ch)
        self.context1 = RCAM(ch, c.attention, c.cbam_reduction)
        self.context2 = RCAM(ch, c.attention, c.cbam_reduction)
        self.context3 = RCAM(ch, c.attention, c.cbam_reduction)
        levels = len(c.steps)
        self.ClassHead = nn.ModuleList([Head(ch, c.num_anchors, c.num_classes) for _ in range(levels)])
        self.BboxHead = nn.ModuleList([Head(ch, c.num_anchors, 4) for _ in range(levels)])
        self.heatmap_head = HeatmapHead(ch) if c.heatmap else None

    def forward(self, x: torch.Tensor, with_heatmap: bool = False):
        feats = self.fpn(self.body(x))
        ctx = [self.context1(feats[0]), self.context2(feats[1]), self.context3(feats[2])]
        loc = torch.cat([h(f) for h, f in zip(self.BboxHead, ctx, strict=True)], dim=1)
        conf = torch.cat([h(f) for h, f in zip(self.ClassHead, ctx, strict=True)], dim=1)
        if with_heatmap:
            if self.heatmap_head is None:
                raise ValueError("this model was built with heatmap=False: it has no heatmap head")
            return loc, conf, self.heatmap_head(ctx[1])
        return loc, conf


class InferenceWrapper(nn.Module):
    """What every exported artifact contains: the detector without the heatmap head, class scores as
    softmax probabilities. Decoding and NMS run on the host (:mod:`slfm.postprocess`)."""

    def __init__(self, model: SLFMDet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc, conf = self.model(x)
        return loc, torch.softmax(conf, dim=-1)
