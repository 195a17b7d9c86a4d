"""Quantized models as plain-data checkpoints, rebuilt deterministically.

A quantized checkpoint (``slfm qat`` / ``slfm ptq``) holds, loadable with ``weights_only=True``:

- ``model_config`` and ``state_dict``: the fp32-equivalent SL-FMDet weights (QAT-trained values, loadable into
  :class:`slfm.model.SLFMDet`; the heatmap head is kept from the source checkpoint);
- ``quant_state``: the state dict of the prepared PT2E graph (weights, BatchNorm statistics and every
  observer / fake-quantizer's scale, zero point and range), keyed by graph attribute names;
- ``quantizer``: the settings that rebuild that graph: mode (qat/ptq), backends, scheme, export-forms version,
  torch version.

Rebuilding = SLFMDet(config) + state_dict -> :func:`slfm.quantize.graph.capture` -> ``prepare_*_pt2e`` with
:func:`slfm.quantize.quantizer.make_quantizer` -> one forward to size the observers -> ``load_state_dict``.
No pickled code is stored.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from slfm.checkpoint import read_tagged, save_data
from slfm.config import ModelConfig
from slfm.errors import SlfmError
from slfm.forms import FORMS_VERSION
from slfm.model import SLFMDet
from slfm.quantize.graph import DeployOutputs, capture, example_input
from slfm.quantize.quantizer import BACKENDS, make_quantizer

FORMAT = "slfm-quantized-checkpoint"
VERSION = 2  # 2: weights stored once (in quant_state), frozen QAT histograms dropped
SCHEME = (
    "int8 W8A8: weights per-channel symmetric [-127, 127], activations per-tensor affine [-128, 127], "
    "BatchNorm folded, sigmoid/softmax outputs fixed (1/256, -128)"
)


def _pt2e():
    from slfm.toolchain import require

    require("quantize")
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e, prepare_qat_pt2e

    return prepare_pt2e, prepare_qat_pt2e, convert_pt2e


def prepare(model: SLFMDet, qat: bool, backend: str = "xnnpack", act_ranges: str = "histogram") -> torch.fx.GraphModule:
    """The prepared (observed or fake-quantized) graph of ``model`` (``act_ranges``: QAT's activation
    fake-quantizers, :data:`slfm.quantize.quantizer.ACT_RANGES`)."""
    prepare_pt2e, prepare_qat_pt2e, _ = _pt2e()
    gm = capture(model)
    fn = prepare_qat_pt2e if qat else prepare_pt2e
    return fn(gm, make_quantizer(qat, backend, act_ranges))


def set_mode(pm: torch.fx.GraphModule, train: bool) -> torch.fx.GraphModule:
    """Switch BatchNorm (the only mode-dependent op) of an exported graph; afterwards ``.eval()`` /
    ``.train()`` on a wrapper also work (``allow_exported_model_train_eval``)."""
    from torchao.quantization.pt2e import (
        allow_exported_model_train_eval,
        move_exported_model_to_eval,
        move_exported_model_to_train,
    )

    pm = move_exported_model_to_train(pm) if train else move_exported_model_to_eval(pm)
    allow_exported_model_train_eval(pm)
    return pm


def fp32_state(pm: torch.fx.GraphModule, source: SLFMDet) -> dict[str, torch.Tensor]:
    """The fp32-equivalent SLFMDet state dict: graph weights where the graph has them, the rest from source."""
    g = pm.state_dict()
    out = {}
    for k, v in source.state_dict().items():
        out[k] = g.get("model." + k, v).detach().clone()
    return out


def _clone(state: dict) -> dict:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def save_quantized(
    path: str | Path,
    pm: torch.fx.GraphModule,
    source: SLFMDet,
    mode: str,
    backends: list[str],
    act_ranges: str | None = None,
    **extra,
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    quant_state = _clone(pm.state_dict())
    if mode == "qat":
        # the weights live in quant_state once; state_dict keeps only what the graph lacks (the heatmap head)
        weights = {k: v for k, v in fp32_state(pm, source).items() if "model." + k not in quant_state}
        quant_state = {k: v for k, v in quant_state.items() if not _dropped(k, pm)}
    else:  # PTQ leaves the weights alone (its graph has BatchNorm folded into the convolutions)
        weights = _clone(source.state_dict())
    state = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": source.config.to_dict(),
        "state_dict": weights,
        "quant_state": pack(quant_state),
        "quantizer": {
            "mode": mode,
            "backends": list(backends),
            "scheme": SCHEME,
            "forms_version": FORMS_VERSION,
            "torch": str(torch.__version__),
            "act_ranges": act_ranges or extra.get("qat_config", {}).get("act_ranges", "histogram"),
        },
        **extra,
    }
    return save_data(path, state)


def pack(state: dict[str, torch.Tensor]) -> dict:
    """A state dict as one byte buffer plus its index (names, dtypes, shapes): plain data, and without the
    per-tensor overhead of ``torch.save`` (about 200 bytes each; a QAT graph holds ~1,400 small tensors)."""
    names = list(state)
    tensors = [state[n].detach().cpu().contiguous() for n in names]
    blob = [t.reshape(-1).view(torch.uint8) if t.numel() else torch.empty(0, dtype=torch.uint8) for t in tensors]
    return {
        "packed": True,
        "names": names,
        "dtypes": [str(t.dtype).removeprefix("torch.") for t in tensors],
        "shapes": [list(t.shape) for t in tensors],
        "data": torch.cat(blob) if blob else torch.empty(0, dtype=torch.uint8),
    }


def unpack(packed: dict) -> dict[str, torch.Tensor]:
    if not packed.get("packed"):
        return packed  # stored as a plain state dict (quantized checkpoints before packing)
    out, offset, data = {}, 0, packed["data"]
    for name, dtype, shape in zip(packed["names"], packed["dtypes"], packed["shapes"], strict=True):
        dt = getattr(torch, dtype)
        n = int(torch.Size(shape).numel()) * torch.empty(0, dtype=dt).element_size()
        out[name] = data[offset : offset + n].clone().view(dt).reshape(shape)
        offset += n
    return out


def _dropped(key: str, pm: torch.fx.GraphModule) -> bool:
    """A frozen histogram-calibrated fake-quantizer's histogram: its qparams are stored, the histogram is 8 KB
    of nothing (111 of them in SL-FMDet)."""
    if not key.endswith(".activation_post_process.histogram"):
        return False
    mod = pm.get_submodule(key.rsplit(".", 2)[0])
    return type(mod).__name__ == "CalibratedFakeQuantize" and int(mod.observer_enabled[0]) == 0


def read_quantized(path: str | Path) -> dict:
    ckpt = read_tagged(path, FORMAT, VERSION, "slfm quantized checkpoint", "make one with `slfm qat` or `slfm ptq`")
    q = ckpt["quantizer"]
    if q.get("forms_version") != FORMS_VERSION:
        raise SlfmError(f"{path} was made with export forms v{q.get('forms_version')}; this slfm has v{FORMS_VERSION}")
    return ckpt


def load_quantized(path: str | Path) -> tuple[torch.fx.GraphModule, SLFMDet, dict]:
    """(prepared graph in eval mode with the stored qparams, fp32-equivalent model, checkpoint dict)."""
    ckpt = read_quantized(path)
    model = SLFMDet(ModelConfig.from_dict(ckpt["model_config"]))
    qs = ckpt["quant_state"] = unpack(ckpt["quant_state"])
    weights = {**{k: qs["model." + k] for k in model.state_dict() if "model." + k in qs}, **ckpt["state_dict"]}
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        raise SlfmError(f"{path}: weights do not match its model config: {str(e).splitlines()[0]}") from e
    model.eval()
    ckpt["state_dict"] = weights
    q = ckpt["quantizer"]
    backend = next((b for b in q["backends"] if b in BACKENDS), "xnnpack")
    # QAT checkpoints made before the histogram ranges used torchao's moving-average fake-quantizers
    pm = prepare(model, q["mode"] == "qat", backend, q.get("act_ranges", "ema"))
    with torch.no_grad():
        pm(example_input(model.config, 2))  # sizes per-channel observers before loading their values
    try:
        missing, unexpected = pm.load_state_dict(_with_versions(qs, pm), strict=False)
        if unexpected or [k for k in missing if not _dropped(k, pm)]:
            raise RuntimeError(f"missing keys {missing[:3]}, unexpected keys {unexpected[:3]}")
    except RuntimeError as e:
        raise SlfmError(
            f"{path}: stored quantization state does not match the rebuilt graph (made with torch "
            f"{q.get('torch')}): {str(e).splitlines()[0]}"
        ) from e
    set_mode(pm, train=False)
    freeze_ranges(pm)
    return pm, model, ckpt


def _with_versions(state: dict, pm: torch.fx.GraphModule) -> dict:
    """``state`` with the module versions of the rebuilt graph attached as ``_metadata``.

    ``torch.save`` of a plain dict drops the ``_metadata`` that ``state_dict()`` carries; without it every
    observer believes the state is version 1 and replaces its stored ``eps`` (2**-12 in XNNPACK's config) with
    float32's eps, so near-zero weight channels got different scales and a reloaded PTQ graph drifted about
    one quantization step from the one that was saved. The rebuilt graph has the same module classes, so its
    versions are the right ones.
    """
    from collections import OrderedDict

    out = OrderedDict(state)
    out._metadata = pm.state_dict()._metadata  # type: ignore[attr-defined]
    return out


def fake_quantizers(pm: torch.fx.GraphModule, activations: bool | None = None):
    """The graph's fake-quantizers: all, or only those of activations (True) / weights (False)."""
    from torchao.quantization.pt2e.fake_quantize import FakeQuantizeBase

    weights = weight_quantizer_names(pm) if activations is not None else set()
    for name, mod in pm.named_modules():
        if isinstance(mod, FakeQuantizeBase) and (activations is None or (name not in weights) == activations):
            yield mod


def weight_quantizer_names(pm: torch.fx.GraphModule) -> set[str]:
    """Fake-quantizers whose input derives from parameters only (a weight, or a weight scaled by BatchNorm)."""
    const: dict[str, bool] = {}
    names = set()
    for n in pm.graph.nodes:
        if n.op == "get_attr":
            const[n.name] = True
        elif n.op == "placeholder":
            const[n.name] = False
        else:
            ins = [a for a in n.all_input_nodes]
            const[n.name] = bool(ins) and all(const.get(a.name, False) for a in ins)
            if n.op == "call_module" and const[n.name]:
                names.add(str(n.target))
    return names


def freeze_ranges(pm: torch.fx.GraphModule, activations: bool | None = None) -> None:
    """Stop fake-quantizers updating their ranges: all (a loaded model is evaluated, never re-calibrated), or
    only those of activations (True) / weights (False)."""
    for mod in fake_quantizers(pm, activations):
        mod.disable_observer()


def deploy_module(pm: torch.fx.GraphModule, fold_quantize: bool) -> torch.nn.Module:
    """The integer graph with the artifact outputs ``(loc, scores)``, for export.

    ``fold_quantize=True`` (ExecuTorch, Core ML) stores int8 weights; litert-torch needs ``False`` (it
    matches ``quantize -> dequantize`` on float weights; folded int8 constants fail with
    ``'stablehlo.uniform_dequantize' op operand #0 must be ... quantized values``).
    """
    _, _, convert_pt2e = _pt2e()
    qm = convert_pt2e(copy.deepcopy(pm), fold_quantize=fold_quantize)
    qm = set_mode(qm, train=False)
    return DeployOutputs(qm).eval()


def fake_quant_module(pm: torch.fx.GraphModule) -> torch.nn.Module:
    """The quantized model simulated in PyTorch (quantize/dequantize ops around float kernels), outputs
    ``(loc, scores)``: the reference the int8 artifacts are checked against. (A PTQ-prepared graph only
    observes, so the reference is always the converted graph, not the prepared one.)"""
    return deploy_module(pm, fold_quantize=True)
