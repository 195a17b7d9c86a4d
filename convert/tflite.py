"""PyTorch -> .tflite with litert-torch (no TensorFlow): fp32, fp16 weights, int8 (from a quantized graph).

- int8: the graph from :func:`slfm.quantize.quantized.deploy_module` (``fold_quantize=False``) converted with a
  *static* PT2E ``QuantConfig``. litert-torch only reads the config's mode (static vs dynamic) and turns
  every Q/DQ pair into int8 kernels; our quantizer annotates every op, so the model is int8 from input to
  outputs (int8 input and outputs, no QUANTIZE/DEQUANTIZE inside) and sigmoid/softmax carry the 1/256 output
  scale that tflite-runtime 2.14 (Raspberry Pi) requires. Without the config litert-torch keeps the Q/DQ
  ops as float islands (measured: 248 QUANTIZE + 248 DEQUANTIZE, 2.5x slower than fp32).
- fp16: the fp32 model with float16 weights (ai-edge-quantizer ``float_casting``; DEQUANTIZE to fp32 at load).
- ``nhwc=True`` wraps the module with ``litert_torch.to_channel_last_io`` (input [1, S, S, 3]).
"""

from __future__ import annotations

import torch

from slfm.convert.failures import conversion_error
from slfm.toolchain import require


def _static_quant_config():
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig

    return QuantConfig(pt2e_quantizer=PT2EQuantizer().set_global(get_symmetric_quantization_config(True)))


def to_tflite(module: torch.nn.Module, example: torch.Tensor, quantized: bool = False, nhwc: bool = False) -> bytes:
    """Convert ``module`` (outputs ``(loc, scores)``) to .tflite bytes."""
    lt = require("tflite")
    module = module.eval()
    if nhwc:
        module = lt.to_channel_last_io(module, args=[0]).eval()
        example = example.permute(0, 2, 3, 1).contiguous()
    try:
        kw = {"quant_config": _static_quant_config()} if quantized else {}
        edge = lt.convert(module, (example,), **kw)
    except Exception as e:
        raise conversion_error("tflite", "converting with litert-torch", e) from e
    return bytes(edge.model_content())


def fp16_weights(model: bytes) -> bytes:
    """float16 weights for an fp32 .tflite (compute stays fp32 on CPU; GPU delegates run fp16)."""
    require("tflite", "ai_edge_quantizer")
    from ai_edge_quantizer import quantizer as aeq

    recipe = [
        {
            "regex": ".*",
            "operation": "*",
            "algorithm_key": "float_casting",
            "op_config": {
                "weight_tensor_config": {"num_bits": 16, "dtype": "FLOAT"},
                "compute_precision": "FLOAT",
                "explicit_dequantize": True,
            },
        }
    ]
    try:
        q = aeq.Quantizer(bytearray(model))
        q.load_quantization_recipe(recipe)
        return bytes(q.quantize().quantized_model)
    except Exception as e:
        raise conversion_error("tflite", "casting weights to float16 with ai-edge-quantizer", e) from e
