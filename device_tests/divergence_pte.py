"""Where an ExecuTorch program starts to differ from PyTorch: every op's output, tapped through the XNNPACK
delegate, compared with the output of the PyTorch module it came from (as :mod:`.divergence` does for TFLite).

How: the artifact's source (the checkpoint its contract names, sha256 checked; fp16 through the same
:class:`slfm.convert.executorch.Float16` wrapper) is lowered again with executorch's devtools
``intermediate_output_tap``: each op's value becomes an extra program output, so it exists even inside the
delegate, and the runtime returns it. The tapped program's final outputs are compared with the shipped
``.pte``'s on the same input, so the report says whether it reproduces the file.

int8: the source is the quantized checkpoint the contract names (``extra.quantized_checkpoint``, sha256
checked) through ``convert_pt2e`` as the converter lowers it, and the taps are on every activation
``quantize_per_tensor``: the int8 tensors the program holds, dequantized here with their scale and zero point.
(With executorch 1.5.1, tapping every op or every ``dequantize`` of the int8 graph fails to lower in XNNPACK's
ChannelsLastTaggedReshapePass, KeyError 'val'; tapping the quantize nodes lowers.) Each row is compared with
the fp32 module with the quantized checkpoint's own fp32-equivalent weights (``snr_db``; QAT retrains the
weights, BatchNorm included, so the fp32 checkpoint's layers are not the ones quantized) and with the
``convert_pt2e`` graph run in PyTorch at the same tensor (fake quant: ``fake_quant_snr_db`` against fp32,
``vs_fake_quant_snr_db`` / ``vs_fake_quant_max_steps`` against the program). The re-exported deploy graph has
no module paths; they come from the ``convert_pt2e`` graph by op order, and a conv with its BatchNorm folded
is compared with the fp32 BatchNorm's output.

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
METHOD_INT8 = (
    "ExecuTorch int8 XNNPACK program re-lowered from its quantized checkpoint (convert_pt2e) with every "
    "activation quantize tapped (executorch.devtools.intermediate_output_tap; int8, dequantized here) vs "
    "PyTorch module outputs (fp32, the quantized checkpoint's fp32-equivalent weights), and vs the convert_pt2e "
    "graph run in PyTorch (fake quant)"
)


def source_module(path, meta: ArtifactMeta) -> torch.nn.Module:
    """The module the ``.pte`` was lowered from, rebuilt from its contract: the checkpoint (fp32, fp16), or for
    int8 the quantized checkpoint (``extra.quantized_checkpoint``) through ``convert_pt2e`` as the converter
    lowers it (sha256 checked)."""
    from pathlib import Path

    from slfm.checkpoint import file_sha256, load_model
    from slfm.convert.api import fp32_module
    from slfm.convert.executorch import Float16

    if meta.precision == "int8":
        from slfm.quantize.quantized import deploy_module, load_quantized

        extra = meta.extra or {}
        if not extra.get("quantized_checkpoint"):
            raise SlfmError(
                f"{path}: its contract names no quantized checkpoint (extra.quantized_checkpoint; made with "
                f"{meta.quantization}), so the int8 graph it was lowered from cannot be rebuilt: convert from a "
                "`slfm qat` / `slfm ptq` checkpoint (--qat)"
            )
        q = Path(extra["quantized_checkpoint"])
        if not q.is_file():
            raise SlfmError(f"{path}: its quantized checkpoint {q} (sidecar extra.quantized_checkpoint) is not here")
        if extra.get("quantized_sha256") and file_sha256(q) != extra["quantized_sha256"]:
            raise SlfmError(f"{path}: {q} changed since the artifact was made (sha256 differs from its contract)")
        pm, qmodel, _ = load_quantized(q)
        module = deploy_module(pm, fold_quantize=True)
        # the per-layer fp32 reference of an int8 program: the quantized checkpoint's own fp32-equivalent weights
        # (QAT retrains them, BatchNorm included), so each row measures quantization, not fine-tuning
        object.__setattr__(module, "fp32_reference", fp32_module(qmodel))  # not a submodule: not exported
        return module
    ckpt = Path(meta.source_checkpoint)
    if not ckpt.is_file():
        raise SlfmError(f"{path}: its source checkpoint {ckpt} (sidecar source_checkpoint) is not here")
    if meta.source_sha256 and file_sha256(ckpt) != meta.source_sha256:
        raise SlfmError(f"{path}: {ckpt} changed since the artifact was made (sha256 differs from its contract)")
    model, _ = load_model(ckpt)
    module = fp32_module(model)
    return Float16(module) if meta.precision == "fp16" else module


_Q = "quantized_decomposed.quantize_per_tensor.default"


def _is_quantized(ep) -> bool:
    return any(n.op == "call_function" and str(n.target) == _Q for n in ep.graph.nodes)


def _int8_sources(module: torch.nn.Module, ep) -> dict[str, dict]:
    """For each activation ``quantize`` of an int8 graph: the op whose output it quantizes (target, node name,
    module path) and its (scale, zero point).

    The re-exported deploy graph keeps no ``nn_module_stack`` (it is the export of a GraphModule) and renames
    its nodes; the ``convert_pt2e`` graph it was exported from (``module.net``) has the module paths, with the
    same ops in the same order: the k-th op of a kind in one is the k-th of that kind in the other."""
    net = getattr(module, "net", None)
    by_kind: dict[str, list] = {}
    if isinstance(net, torch.fx.GraphModule):
        for n in net.graph.nodes:
            if n.op == "call_function":
                st = n.meta.get("nn_module_stack")
                by_kind.setdefault(str(n.target), []).append(list(st.values())[-1][0] if st else None)
    seen: dict[str, int] = {}
    paths: dict[str, str | None] = {}
    for n in ep.graph.nodes:
        if n.op == "call_function":
            k = str(n.target)
            i = seen[k] = seen.get(k, -1) + 1
            known = by_kind.get(k, [])
            paths[n.name] = known[i] if i < len(known) else None
    out = {}
    for n in ep.graph.nodes:
        if n.op != "call_function" or str(n.target) != _Q:
            continue
        src = n.args[0]
        if isinstance(src, torch.fx.Node) and src.op == "call_function":
            out[n.name] = {
                "op": str(src.target),
                "node": src.name,
                "module_path": paths.get(src.name),
                "scale": float(n.args[1]),
                "zero_point": int(n.args[2]),
            }
    return out


def _folded_path(path: str | None, kinds: dict[str, type]) -> str | None:
    """A conv's module path, or its BatchNorm's where the next sibling is one: ``convert_pt2e`` folds
    BatchNorm into the conv, so the int8 conv's output is the fp32 BatchNorm's."""
    if not path or "." not in path:
        return path
    head, _, last = path.rpartition(".")
    nxt = f"{head}.{int(last) + 1}" if last.isdigit() else None
    if nxt in kinds and issubclass(kinds[nxt], torch.nn.modules.batchnorm._BatchNorm):
        return nxt
    return path


def _dequantize(y, src: dict) -> np.ndarray:
    return (np.asarray(y, dtype=np.float32) - src["zero_point"]) * np.float32(src["scale"])


def _tapped_run(module: torch.nn.Module, x: torch.Tensor):
    """(op specs in graph order, runtime outputs, the exported graph's own outputs in PyTorch, int8 sources or
    None) of ``module`` lowered to XNNPACK with every op tapped; for an int8 graph every activation
    ``quantize`` is tapped instead (the int8 tensors the program holds), which lowers where tapping every op
    fails (XNNPACK's ChannelsLastTaggedReshapePass, KeyError 'val')."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.devtools.intermediate_output_tap import (
        FULL_TENSOR,
        select_all_call_function,
        select_by_op_type,
        strip_taps_,
        tap_intermediate_outputs_,
    )
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    ep = torch.export.export(module.eval(), (x,))
    sources = _int8_sources(module, ep) if _is_quantized(ep) else None
    sel = select_by_op_type(_Q) if sources is not None else select_all_call_function()
    ep_t, specs = tap_intermediate_outputs_(ep, rules=[(sel, FULL_TENSOR)])
    aot = None
    if sources is not None:  # the convert_pt2e graph's own values at the taps (fake quant), before lowering
        with torch.no_grad():
            aot = [o.detach().numpy() if isinstance(o, torch.Tensor) else o for o in ep_t.module()(x)]
    edge = to_edge_transform_and_lower(ep_t, partitioner=[XnnpackPartitioner()])
    strip_taps_(edge)
    buf = edge.to_executorch().buffer
    out = Runtime.get().load_program(buf).load_method("forward").execute([x])
    cast = (lambda o: o.detach().numpy()) if sources is not None else (lambda o: o.detach().float().numpy())
    return specs, [cast(o) if isinstance(o, torch.Tensor) else o for o in out], aot, sources


def _module_of(spec_path: str | None, known: dict) -> str | None:
    """The reference module path for a tap's ``nn_module_stack`` path (a fp16 wrapper's ``inner.`` or an int8
    deploy wrapper's ``net.`` dropped)."""
    if not spec_path:
        return None
    for p in (spec_path, spec_path.removeprefix("inner."), spec_path.removeprefix("net.")):
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
    specs, out, aot, sources = _tapped_run(module, xt)
    if sources is not None:
        reference = getattr(module, "fp32_reference", reference)
    ref = torch_module_outputs(reference, x)
    kinds = {name: type(m) for name, m in reference.named_modules()}
    chosen: dict[str, dict] = {}
    for order, spec in enumerate(specs):
        op, node, spec_path = spec.op_target, spec.node_name, spec.module_path
        y = out[spec.output_index] if spec.output_index < len(out) else None
        src = None
        if sources is not None:  # int8: the tap is a quantize; name the op whose output it holds
            src = sources.get(spec.node_name)
            if src is None or not isinstance(y, np.ndarray):
                continue
            op, node, spec_path = src["op"], src["node"], _folded_path(src["module_path"], kinds)
            y = _dequantize(y, src)
        path = _module_of(spec_path, ref)
        if path is None or not isinstance(y, np.ndarray) or y.shape != ref[path].shape:
            continue
        row = {  # the last op of a module with the module's output shape is its output
            "op_index": order,
            "op": op,
            "node": node,
            "snr_db": snr_db(ref[path], y),
            "max_abs_error": float(np.max(np.abs(ref[path] - y))),
        }
        if src is not None:  # the convert_pt2e graph run in PyTorch (fake quant) at the same tensor
            fq = _dequantize(aot[spec.output_index], src)
            row["fake_quant_snr_db"] = snr_db(ref[path], fq)
            row["vs_fake_quant_snr_db"] = snr_db(fq, y)
            row["vs_fake_quant_max_steps"] = float(np.max(np.abs(fq - y)) / src["scale"])
        chosen[path] = row
    res = layer_report(METHOD_INT8 if sources is not None else METHOD, chosen, snr_threshold_db)
    if shipped is not None:  # the tapped program's own outputs (loc, scores) against the file's
        loc, scores = shipped(x)
        res["reproduces_artifact_snr_db"] = min(snr_db(loc, out[0][0]), snr_db(scores, out[1][0]))
        res["reproduces_artifact_max_abs_diff"] = float(
            max(np.max(np.abs(loc - out[0][0])), np.max(np.abs(scores - out[1][0])))
        )
    return res
