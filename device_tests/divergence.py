"""Where a .tflite artifact starts to differ from PyTorch: every intermediate tensor of the TFLite graph
(``experimental_preserve_all_tensors``, builtin kernels without the XNNPACK delegate so that every op's
output exists) compared with the output of the PyTorch module it came from.

litert-torch names each tensor after the module path it was traced in
(``.../slfm.layers.FPN_fpn/torch.nn.modules.container.Sequential_merge1/...BatchNorm2d_1``), which maps
back to ``model.fpn.merge1.1``. For each module the last op whose output has the module output's shape is
its output; layers are ordered as the TFLite graph runs them, and the first whose SNR falls below the
threshold is the first divergent layer.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from slfm.device_tests.compare import snr_db
from slfm.errors import SlfmError


def module_path(tensor_name: str) -> str | None:
    """``a.b.Root/slfm.model.SLFMDet_model/x.y.Seq_stage1/...Conv2d_0;...`` -> ``model.stage1.0``."""
    first = tensor_name.split(";")[0]
    parts = first.split("/")
    attrs = []
    for comp in parts[1:]:
        leaf = comp.rsplit(".", 1)[-1]
        if "_" not in leaf:
            return None
        attrs.append(leaf.split("_", 1)[1])
    return ".".join(attrs) if attrs else None


def torch_module_outputs(module: torch.nn.Module, x: np.ndarray) -> dict[str, np.ndarray]:
    """Output of every named submodule (tensor outputs only) for input ``x``."""
    outs: dict[str, np.ndarray] = {}
    hooks = []
    for name, sub in module.named_modules():
        if not name:
            continue

        def hook(_m, _inp, out, name=name):
            if isinstance(out, torch.Tensor):
                outs[name] = out.detach().float().numpy().copy()

        hooks.append(sub.register_forward_hook(hook))
    try:
        with torch.no_grad():
            module(torch.from_numpy(x))
    finally:
        for h in hooks:
            h.remove()
    return outs


def _interpreter(path: str, threads: int):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError as e:
        raise SlfmError(f"layer-by-layer comparison of {path} needs ai-edge-litert: {e}") from e
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = Interpreter(
            model_path=path,
            num_threads=threads,
            experimental_preserve_all_tensors=True,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
    it.allocate_tensors()
    return it


def _as_nchw(y: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    if y.shape == shape:
        return y
    if y.ndim == 4 and y.transpose(0, 3, 1, 2).shape == shape:
        return y.transpose(0, 3, 1, 2)
    return None


def compare_layers(
    path: str, module: torch.nn.Module, x: np.ndarray, snr_threshold_db: float, threads: int = 1
) -> dict:
    """Per-layer SNR of a .tflite against ``module`` (the InferenceWrapper) on one input ``x`` [1, 3, H, W]."""
    from slfm.core import dequantize
    from slfm.device_tests.pi_runner.backend import TfliteModel

    it = _interpreter(path, threads)
    # Reuse the runner's input handling (layout, quantization) on this interpreter.
    feeder = TfliteModel.__new__(TfliteModel)
    feeder.interpreter, feeder.path = it, path
    feeder.input = it.get_input_details()[0]
    feeder.input_shape = [int(s) for s in feeder.input["shape"]]
    feeder.nhwc = feeder.input_shape[3] == 3 and feeder.input_shape[1] != 3
    feeder.set_input(x)
    it.invoke()
    ref = torch_module_outputs(module, x)
    details = {t["index"]: t for t in it.get_tensor_details()}
    chosen: dict[str, dict] = {}
    for op in it._get_ops_details():
        if op["op_name"] == "DELEGATE":
            continue
        for t_idx in op["outputs"]:
            t = details.get(int(t_idx))
            path_ = module_path(t["name"]) if t else None
            if path_ is None or path_ not in ref:
                continue
            try:
                y = it.get_tensor(int(t_idx))
            except ValueError:
                continue
            if y.dtype != np.float32:
                scale, zp = t["quantization"]
                if not scale:
                    continue
                y = dequantize(y, scale, zp)
            y = _as_nchw(y, ref[path_].shape)
            if y is None:
                continue
            chosen[path_] = {
                "op_index": int(op["index"]),
                "op": op["op_name"],
                "tensor": t["name"].split(";")[0],
                "snr_db": snr_db(ref[path_], y),
                "max_abs_error": float(np.max(np.abs(ref[path_] - y))),
            }
    method = "TFLite intermediate tensors (builtin kernels, all tensors preserved) vs PyTorch module outputs"
    return layer_report(method, chosen, snr_threshold_db)


def layer_report(method: str, chosen: dict[str, dict], snr_threshold_db: float) -> dict:
    """Per-module rows (``{module: {op_index, snr_db, ...}}``) in op order, the first one under the threshold and
    the one with the largest SNR drop from its predecessor: the report of every runtime's divergence check."""
    layers = sorted(({"module": k, **v} for k, v in chosen.items()), key=lambda r: r["op_index"])
    first = next((r for r in layers if r["snr_db"] < snr_threshold_db), None)
    drops = [(layers[i - 1]["snr_db"] - r["snr_db"], r) for i, r in enumerate(layers) if i > 0]
    largest = max(drops, key=lambda d: d[0])[1] if drops else None
    return {
        "method": method,
        "snr_threshold_db": snr_threshold_db,
        "layers_compared": len(layers),
        "first_divergent_layer": first,
        "largest_snr_drop_layer": largest,
        "layers": layers,
    }
