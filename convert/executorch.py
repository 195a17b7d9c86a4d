"""PyTorch -> .pte: ``torch.export`` -> ``to_edge_transform_and_lower(XnnpackPartitioner)`` -> ``to_executorch``.

With the export forms (:mod:`slfm.forms`) the whole SL-FMDet graph lands in one XNNPACK delegate,
fp32 and int8 (measured with executorch 1.5.1). :func:`outside_delegate` reports any op that does not, and
the converter records the list in the artifact metadata.

fp16 (:class:`Float16`): the module in float16 between two casts, so the program keeps the float32 contract
(input and outputs) while XNNPACK runs fp16 compute. executorch 1.5.1 lowers it (measured: the whole network
in one delegate; the three casts, ``_to_dim_order_copy``, on portable kernels). Measured too: the fp16 .pte
is as large as the fp32 one (1.73 MB at 0.43M parameters, BatchNorm folded first or not), so the file is not
smaller; where those bytes go is not yet known.
"""

from __future__ import annotations

import copy
import re
from collections import Counter

import torch

from slfm.convert.failures import conversion_error
from slfm.toolchain import require

_PLUMBING = ("executorch_call_delegate", "getitem")


def outside_delegate(edge_program) -> dict[str, int]:
    """Ops of a lowered program that run on ExecuTorch's portable kernels instead of XNNPACK."""
    gm = edge_program.exported_program().graph_module
    left = Counter()
    for n in gm.graph.nodes:
        if n.op != "call_function":
            continue
        name = getattr(n.target, "__name__", str(n.target))
        if any(p in name for p in _PLUMBING):
            continue
        label = str(n.target)
        m = re.match(r"<EdgeOpOverload: ([^>]+)>", label)
        left[m.group(1) if m else label.split(":")[0]] += 1
    return dict(left)


class Float16(torch.nn.Module):
    """A float32 ``(x) -> (loc, scores)`` module run in float16 inside: ``x`` cast down, outputs cast back up."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.inner = copy.deepcopy(module).half().eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc, scores = self.inner(x.to(torch.float16))
        return loc.to(torch.float32), scores.to(torch.float32)


def to_pte(module: torch.nn.Module, example: torch.Tensor, constant_methods: dict | None = None):
    """Returns (program bytes, ops outside the delegate)."""
    require("executorch")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    try:
        ep = torch.export.export(module.eval(), (example,))
    except Exception as e:
        raise conversion_error("executorch", "running torch.export", e) from e
    try:
        edge = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()], constant_methods=constant_methods)
        left = outside_delegate(edge)
        prog = edge.to_executorch()
    except Exception as e:
        raise conversion_error("executorch", "lowering to XNNPACK", e) from e
    return prog.buffer, left
