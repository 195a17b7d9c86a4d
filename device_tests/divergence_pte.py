"""Where an ExecuTorch program starts to differ from PyTorch: every op's output, tapped through the XNNPACK
delegate, compared with the output of the PyTorch module it came from (as :mod:`.divergence` does for TFLite).

How: the artifact's source (the checkpoint its contract names, sha256 checked; fp16 through the same
:class:`slfm.convert.executorch.Float16` wrapper) is lowered again with executorch's devtools
``intermediate_output_tap``: each op's value becomes an extra program output, so it exists even inside the
delegate, and the runtime returns it. The tapped program's final outputs are compared with the shipped
``.pte``'s on the same input, so the report says whether it reproduces the file.

Why not ETRecord + ``Inspector.calculate_numeric_gap``: the Inspector pairs the ETRecord's graph with
intermediate outputs logged in the ETDump per debug handle, and a fully delegated XNNPACK program (slfm's)
logs its delegate as one call, so it can name the delegate but no op inside it. Taps need no backend support.
"""

from __future__ import annotations

import numpy as np
import torch

from slfm.artifact import ArtifactMeta
from slfm.device_tests.compare import snr_db
from slfm.device_tests.divergence import layer_report, torch_module_outputs
from slfm.errors import SlfmError

METHOD = (
    "ExecuTorch XNNPACK program re-lowered from its source with every op tapped "
    "(executorch.devtools.intermediate_output_tap) vs PyTorch module outputs"
)


def source_module(path, meta: ArtifactMeta) -> torch.nn.Module:
    """The module the ``.pte`` was lowered from, rebuilt from its contract (fp32 and fp16)."""
    from pathlib import Path

    from slfm.checkpoint import file_sha256, load_model
    from slfm.convert.api import fp32_module
    from slfm.convert.executorch import Float16

    if meta.precision == "int8":
        raise SlfmError(
            f"{path}: op-by-op comparison of int8 programs is not available: with executorch 1.5.1, lowering a "
            "tapped int8 graph fails in XNNPACK's ChannelsLastTaggedReshapePass (KeyError 'val'); fp32 and fp16 work"
        )
    ckpt = Path(meta.source_checkpoint)
    if not ckpt.is_file():
        raise SlfmError(f"{path}: its source checkpoint {ckpt} (sidecar source_checkpoint) is not here")
    if meta.source_sha256 and file_sha256(ckpt) != meta.source_sha256:
        raise SlfmError(f"{path}: {ckpt} changed since the artifact was made (sha256 differs from its contract)")
    model, _ = load_model(ckpt)
    module = fp32_module(model)
    return Float16(module) if meta.precision == "fp16" else module


def _tapped_run(module: torch.nn.Module, x: torch.Tensor):
    """(op specs in graph order, runtime outputs) of ``module`` lowered to XNNPACK with every op tapped."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.devtools.intermediate_output_tap import (
        FULL_TENSOR,
        select_all_call_function,
        strip_taps_,
        tap_intermediate_outputs_,
    )
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    ep = torch.export.export(module.eval(), (x,))
    ep_t, specs = tap_intermediate_outputs_(ep, rules=[(select_all_call_function(), FULL_TENSOR)])
    edge = to_edge_transform_and_lower(ep_t, partitioner=[XnnpackPartitioner()])
    strip_taps_(edge)
    buf = edge.to_executorch().buffer
    out = Runtime.get().load_program(buf).load_method("forward").execute([x])
    return specs, [o.detach().float().numpy() if isinstance(o, torch.Tensor) else o for o in out]


def _module_of(spec_path: str | None, known: dict) -> str | None:
    """The reference module path for a tap's ``nn_module_stack`` path (a fp16 wrapper's ``inner.`` dropped)."""
    if not spec_path:
        return None
    for p in (spec_path, spec_path.removeprefix("inner.")):
        if p in known:
            return p
    return None


def compare_ops(
    module: torch.nn.Module,
    reference: torch.nn.Module,
    x: np.ndarray,
    snr_threshold_db: float,
    shipped=None,
) -> dict:
    """Per-module SNR of ``module`` lowered to ExecuTorch against ``reference`` (the fp32 InferenceWrapper) on
    one input ``x`` [1, 3, H, W]; ``shipped``: a runner of the artifact, to check the tapped program
    reproduces it."""
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    specs, out = _tapped_run(module, xt)
    ref = torch_module_outputs(reference, x)
    chosen: dict[str, dict] = {}
    for order, spec in enumerate(specs):
        path = _module_of(spec.module_path, ref)
        y = out[spec.output_index] if spec.output_index < len(out) else None
        if path is None or not isinstance(y, np.ndarray) or y.shape != ref[path].shape:
            continue
        chosen[path] = {  # the last op of a module with the module's output shape is its output
            "op_index": order,
            "op": spec.op_target,
            "node": spec.node_name,
            "snr_db": snr_db(ref[path], y),
            "max_abs_error": float(np.max(np.abs(ref[path] - y))),
        }
    res = layer_report(METHOD, chosen, snr_threshold_db)
    if shipped is not None:  # the tapped program's own outputs (loc, scores) against the file's
        loc, scores = shipped(x)
        res["reproduces_artifact_snr_db"] = min(snr_db(loc, out[0][0]), snr_db(scores, out[1][0]))
    return res
