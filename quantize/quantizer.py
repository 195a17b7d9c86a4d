"""The PT2E quantizer slfm uses for every int8 artifact: W8A8, per-channel symmetric int8 weights, int8
activations, BatchNorm folded into the convolutions, and *every* tensor of the graph annotated, so that the
converted graphs hold no float islands (no QUANTIZE/DEQUANTIZE pairs in the middle of a TFLite model).

What was measured (torch 2.13, torchao 0.18, executorch 1.5.1, litert-torch 0.10, tflite-runtime 2.14):

- ExecuTorch's ``XNNPACKQuantizer`` annotates conv / conv+bn(+relu) / add / mul / cat only. LeakyReLU,
  sigmoid, softmax, mean, amax, upsampling and the head's permute/reshape stay float, so both the .pte and a
  .tflite made from that graph fall back to float between the int8 convolutions (the DESIGN.md int8 TFLite
  was no faster than fp32 for that reason).
- tflite-runtime 2.14 (a Raspberry Pi) refuses int8 LOGISTIC and SOFTMAX whose output scale is not 1/256 with
  zero point -128 (``LOGISTIC failed to prepare``). XNNPACK's qs8 sigmoid has the same requirement. Giving
  sigmoid and softmax *fixed* qparams (1/256, -128) satisfies both runtimes, so one annotation serves both.
- litert-torch's own ``PT2EQuantizer`` rejects the CBAM channel gate and its QAT path fails in its conv-bn
  annotation; this quantizer reuses the XNNPACK annotators for the conv/add/mul/cat patterns (which handle
  QAT conv-bn folding) and annotates the remaining ops itself, so litert-torch only converts Q/DQ pairs.

Backend flavours (:data:`BACKENDS`): ``xnnpack`` (for .pte) and ``litert`` (for .tflite) currently share the
same annotations; the flavour is kept in the QAT checkpoint so that a backend-specific difference can be
added without breaking old checkpoints.
"""

from __future__ import annotations

import torch
from torch.fx import GraphModule, Node

BACKENDS = ("xnnpack", "litert")
# TFLite LOGISTIC/SOFTMAX int8 and XNNPACK qs8 sigmoid need exactly these output qparams.
FIXED_SCALE = 1.0 / 256.0
FIXED_ZERO_POINT = -128

_aten = torch.ops.aten
# Ops whose int8 output must carry the fixed (1/256, -128) qparams.
FIXED_QPARAM_OPS = {_aten.sigmoid.default, _aten.softmax.int, _aten._softmax.default}
# Ops that only move, select or take the max of values: output shares the input's qparams.
SHARED_OPS = {
    _aten.amax.default,
    _aten.max_pool2d.default,
    _aten.permute.default,
    _aten.view.default,
    _aten.reshape.default,
    _aten.flatten.using_ints,
    _aten.unflatten.int,
    _aten.slice.Tensor,
    _aten.narrow.default,
    _aten.clone.default,
    _aten.contiguous.default,
    _aten.upsample_nearest2d.default,
    _aten.upsample_nearest2d.vec,
    _aten.relu.default,
    _aten.relu_.default,
}
# Ops that get their own observed output qparams (value range changes).
REQUANT_OPS = {
    _aten.leaky_relu.default,
    _aten.leaky_relu_.default,
    _aten.mean.dim,
    _aten.mean.default,
    _aten.add.Tensor,
    _aten.mul.Tensor,
    _aten.cat.default,
    _aten.hardtanh.default,
}


def _is_float_tensor_node(n) -> bool:
    if not isinstance(n, Node):
        return False
    val = n.meta.get("val")
    return isinstance(val, torch.Tensor) and val.is_floating_point()


def _chunks_to_slices(gm: GraphModule) -> GraphModule:
    """``chunk`` + ``getitem`` -> one ``slice`` per piece: tuple-valued nodes cannot carry an observer, slices
    can (and share their input's qparams), so CBAM's ``both.chunk(2, 0)`` stays int8."""
    import operator

    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target is not _aten.chunk.default:
            continue
        x, chunks = node.args[0], node.args[1]
        dim = node.args[2] if len(node.args) > 2 else node.kwargs.get("dim", 0)
        size = x.meta["val"].shape[dim]
        step = -(-size // chunks)
        users = list(node.users)
        if not all(u.target is operator.getitem for u in users):
            continue
        for u in users:
            i = u.args[1]
            with gm.graph.inserting_before(u):
                sl = gm.graph.call_function(_aten.slice.Tensor, (x, dim, i * step, min(size, (i + 1) * step)))
            sl.meta = dict(u.meta)
            u.replace_all_uses_with(sl)
            gm.graph.erase_node(u)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return gm


# How QAT sets activation ranges. "histogram": observed on real images with PTQ's histogram observer (float
# activations, as PTQ sees them), then fixed while the weights train; "ema": torchao's default moving-average
# min/max fake-quantizers, updated on every training batch (measured worse here: the ranges drift to the
# augmented crops' extremes, see quantize/qat.py).
# "learned": calibrated as "histogram", then each scale is trained with the weights (LSQ, Esser et al. 2020).
ACT_RANGES = ("histogram", "learned", "ema")


def _calibrated_fake_quantize():
    """A FakeQuantize whose observer is PTQ's HistogramObserver: while observing it passes activations through
    in float (the PTQ calibration); when observing stops, the scale and zero point are computed once and stay
    (``learn=False``) or the scale becomes a parameter trained by the loss's gradient (``learn=True``)."""
    from torchao.quantization.pt2e.fake_quantize import FakeQuantize
    from torchao.quantization.pt2e.observer import HistogramObserver

    class CalibratedFakeQuantize(FakeQuantize):
        def __init__(self, learn: bool = False, **kw):
            super().__init__(observer=HistogramObserver, **kw)
            self.learn = learn

        def forward(self, X):
            if self.observer_enabled[0] == 1:
                self.activation_post_process(X.detach())
                return X
            if isinstance(self.scale, torch.nn.Parameter) and self.fake_quant_enabled[0] == 1:
                grad = 1.0 / (X.numel() * self.quant_max) ** 0.5  # LSQ's gradient scale
                zp = self.zero_point.to(X.dtype)
                return torch._fake_quantize_learnable_per_tensor_affine(
                    X, self.scale, zp, self.quant_min, self.quant_max, grad
                )
            return super().forward(X)

        @torch.jit.export
        def calculate_qparams(self):
            if self.observer_enabled[0] == 0:  # frozen: the stored qparams (the histogram need not be kept)
                return self.scale.detach().clamp(min=2**-12), self.zero_point
            return self.activation_post_process.calculate_qparams()

        @torch.jit.export
        def enable_observer(self, enabled: bool = True) -> None:
            if not enabled and self.observer_enabled[0] == 1:
                scale, zero_point = self.activation_post_process.calculate_qparams()
                self.zero_point.resize_(zero_point.shape).copy_(zero_point.to(self.zero_point.dtype))
                if self.learn:
                    del self._buffers["scale"]
                    self.scale = torch.nn.Parameter(scale.clone().float())
                else:
                    self.scale.resize_(scale.shape).copy_(scale)
            super().enable_observer(enabled)

    return CalibratedFakeQuantize


def make_quantizer(is_qat: bool, backend: str = "xnnpack", act_ranges: str = "histogram"):
    """A PT2E quantizer for ``prepare_pt2e`` (``is_qat=False``) or ``prepare_qat_pt2e`` (``is_qat=True``;
    ``act_ranges`` picks its activation fake-quantizers, :data:`ACT_RANGES`)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown quantization backend {backend!r}: use one of {BACKENDS}")
    if act_ranges not in ACT_RANGES:
        raise ValueError(f"unknown activation ranges {act_ranges!r}: use one of {ACT_RANGES}")
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.fake_quantize import FixedQParamsFakeQuantize
    from torchao.quantization.pt2e.observer import FixedQParamsObserver
    from torchao.quantization.pt2e.quantizer import (
        FixedQParamsQuantizationSpec,
        QuantizationAnnotation,
        Quantizer,
        SharedQuantizationSpec,
    )

    config = get_symmetric_quantization_config(is_per_channel=True, is_qat=is_qat)
    if is_qat and act_ranges in ("histogram", "learned"):
        import dataclasses

        ctr = _calibrated_fake_quantize().with_args(eps=2**-12, learn=act_ranges == "learned")
        spec = dataclasses.replace(config.input_activation, observer_or_fake_quant_ctr=ctr)
        config = dataclasses.replace(config, input_activation=spec, output_activation=spec)
    act = config.input_activation
    fixed = FixedQParamsQuantizationSpec(
        dtype=torch.int8,
        scale=FIXED_SCALE,
        zero_point=FIXED_ZERO_POINT,
        quant_min=-128,
        quant_max=127,
        qscheme=torch.per_tensor_affine,
    )
    del FixedQParamsFakeQuantize, FixedQParamsObserver  # torchao picks the right one from is_qat

    class _Quantizer(Quantizer):
        def __init__(self) -> None:
            super().__init__()
            self.base = XNNPACKQuantizer().set_global(config)
            self.backend = backend
            self.is_qat = is_qat

        def transform_for_annotation(self, model: GraphModule) -> GraphModule:
            return self.base.transform_for_annotation(_chunks_to_slices(model))

        def annotate(self, model: GraphModule) -> GraphModule:
            self.base.annotate(model)  # conv(+bn)(+relu), add(+relu), mul, cat: handles QAT BN folding
            for node in model.graph.nodes:
                if node.op != "call_function" or not _is_float_tensor_node(node):
                    continue
                ann = node.meta.get("quantization_annotation")
                if ann is not None and ann._annotated:
                    continue
                inputs = [a for a in node.args if _is_float_tensor_node(a)]
                if isinstance(node.args[0], list | tuple):  # cat
                    inputs = [a for a in node.args[0] if _is_float_tensor_node(a)]
                if node.target in FIXED_QPARAM_OPS:
                    node.meta["quantization_annotation"] = QuantizationAnnotation(
                        input_qspec_map={inputs[0]: act}, output_qspec=fixed, _annotated=True
                    )
                elif node.target in SHARED_OPS and inputs:
                    src = inputs[0]
                    node.meta["quantization_annotation"] = QuantizationAnnotation(
                        input_qspec_map={src: act},
                        output_qspec=SharedQuantizationSpec((src, node)),
                        _annotated=True,
                    )
                elif node.target in REQUANT_OPS and inputs:
                    node.meta["quantization_annotation"] = QuantizationAnnotation(
                        input_qspec_map={a: act for a in inputs}, output_qspec=act, _annotated=True
                    )
            return model

        def validate(self, model: GraphModule) -> None:
            pass

    return _Quantizer()
