"""The graph that is quantized, fine-tuned (QAT) and exported.

One graph for every backend: the detector in its export forms (:mod:`slfm.forms`), no heatmap head,
returning ``(loc, conf logits, scores)``. QAT trains on ``(loc, conf)`` with the multibox loss (the heatmap
task is a training aid of the fp32 run and is not in the exported graph, so QAT does not use it); the
artifacts keep ``(loc, scores)`` through :class:`DeployOutputs`. Softmax is inside the quantized graph
(int8 with the fixed 1/256 output scale) so that the artifact is int8 end to end.
"""

from __future__ import annotations

import torch
from torch import nn

from slfm.config import ModelConfig
from slfm.forms import export_friendly
from slfm.model import SLFMDet


class QuantGraph(nn.Module):
    def __init__(self, model: SLFMDet) -> None:
        super().__init__()
        self.model = export_friendly(model)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        loc, conf = self.model(x)
        return loc, conf, torch.softmax(conf, dim=-1)


class DeployOutputs(nn.Module):
    """``(loc, scores)`` of a quantized graph: the graph outputs every artifact has."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net  # not "graph": a submodule named graph clashes with GraphModule.graph on re-export

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc, _, scores = self.net(x)
        return loc, scores


def example_input(config: ModelConfig, batch: int = 1) -> torch.Tensor:
    """A fixed example input for tracing (values do not matter: spatial shapes are static)."""
    s = config.image_size
    return torch.zeros(batch, 3, s, s)


def capture(model: SLFMDet) -> torch.fx.GraphModule:
    """``torch.export`` the quantizable graph with a dynamic batch (QAT trains on batches; the artifacts are
    re-exported at batch 1 after ``convert_pt2e``)."""
    was_training = model.training
    model.eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    ep = torch.export.export(QuantGraph(model).eval(), (example_input(model.config, 2),), dynamic_shapes=({0: batch},))
    model.train(was_training)
    return ep.module()
