"""PyTorch -> Core ML .mlpackage (coremltools 9.0, ``torch.export`` path, mlprogram).

- input: ``image`` as a Core ML ImageType (BGR, bias = -mean, scale 1) so Vision / CVPixelBuffer feed it
  directly, or a float tensor ``x`` (``image_input=False``) for parity checks;
- outputs ``loc`` [1, A, 4] and ``scores`` [1, A, C]; class labels and the whole contract in
  ``user_defined_metadata``;
- precisions: fp32, fp16 (compute precision), int8 (fp16 compute, weights linear-quantized to int8 with
  ``linear_quantize_weights``), or W8A8 from a quantized PT2E graph (``quantized=True``), which coremltools
  lowers to quantize/dequantize ops (iOS17 target).
- Prediction needs macOS; on Linux :func:`spec_summary` checks inputs, outputs, metadata and ops.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch

from slfm.artifact import ArtifactMeta
from slfm.convert.failures import conversion_error
from slfm.convert.meta import COREML_KEY
from slfm.toolchain import require

# The compute units the model is saved for (and recorded in the contract as ``extra.compute_units``): Core ML
# picks among CPU, GPU and Neural Engine at load time; an app may restrict this in MLModelConfiguration.
COMPUTE_UNITS = "ALL"


def to_coreml(
    module: torch.nn.Module,
    example: torch.Tensor,
    meta: ArtifactMeta,
    precision: str = "fp16",
    image_input: bool = True,
    quantized: bool = False,
):
    ct = require("coreml")
    try:
        ep = torch.export.export(module.eval(), (example,))
        ep = ep.run_decompositions({})
    except Exception as e:
        raise conversion_error("coreml", "running torch.export", e) from e
    shape = tuple(example.shape)
    if image_input:
        inp = ct.ImageType(
            name="image",
            shape=shape,
            color_layout=ct.colorlayout.BGR,
            bias=[-float(m) for m in meta.mean_bgr],
            scale=float(meta.pixel_scale),
        )
    else:
        inp = ct.TensorType(name="x", shape=shape)
    compute = ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16
    target = ct.target.iOS17 if quantized else ct.target.iOS16
    try:
        ml = ct.convert(
            ep,
            inputs=[inp],
            outputs=[ct.TensorType(name="loc"), ct.TensorType(name="scores")],
            convert_to="mlprogram",
            compute_precision=compute,
            minimum_deployment_target=target,
            compute_units=getattr(ct.ComputeUnit, COMPUTE_UNITS),
            skip_model_load=True,
        )
        if precision == "int8" and not quantized:
            from coremltools.optimize.coreml import (
                OpLinearQuantizerConfig,
                OptimizationConfig,
                linear_quantize_weights,
            )

            cfg = OptimizationConfig(global_config=OpLinearQuantizerConfig(mode="linear_symmetric"))
            ml = linear_quantize_weights(ml, config=cfg)
    except Exception as e:
        raise conversion_error("coreml", "running ct.convert", e) from e
    ml.author = "slfm"
    ml.short_description = "SL-FMDet face/mask detector: loc [1,A,4] SSD offsets, scores [1,A,C] softmax"
    ml.version = meta.model_version
    ml.user_defined_metadata[COREML_KEY] = meta.to_json()
    ml.user_defined_metadata["classes"] = ",".join(meta.classes)
    ml.input_description[inp.name] = "BGR image, letterboxed" if image_input else "float NCHW, mean-subtracted BGR"
    ml.output_description["loc"] = "SSD box offsets per anchor (variances in metadata)"
    ml.output_description["scores"] = "class probabilities per anchor: " + ", ".join(meta.classes)
    return ml


def spec_summary(path: str | Path) -> dict:
    """Inputs, outputs, metadata and op histogram of an .mlpackage (works on Linux)."""
    ct = require("coreml")
    ml = ct.models.MLModel(str(path), skip_model_load=True)
    spec = ml.get_spec()
    ops: Counter = Counter()
    prog = spec.mlProgram
    for fn in prog.functions.values():
        for block in fn.block_specializations.values():
            for op in block.operations:
                ops[op.type] += 1
    desc = spec.description
    return {
        "spec_version": spec.specificationVersion,
        "inputs": {i.name: i.type.WhichOneof("Type") for i in desc.input},
        "input_shapes": {
            i.name: (
                [i.type.imageType.height, i.type.imageType.width]
                if i.type.WhichOneof("Type") == "imageType"
                else list(i.type.multiArrayType.shape)
            )
            for i in desc.input
        },
        "image_color": {
            i.name: i.type.imageType.colorSpace for i in desc.input if i.type.WhichOneof("Type") == "imageType"
        },
        "outputs": {o.name: list(o.type.multiArrayType.shape) for o in desc.output},
        "metadata": dict(desc.metadata.userDefined),
        "ops": dict(ops),
    }
