"""mAP of a quantized graph as deployed: the converted int8 reference graph (``convert_pt2e``), not the
fake-quantized training graph (the two differ; see :func:`slfm.quantize.qat.qat`)."""

from __future__ import annotations

import torch

from slfm.config import ModelConfig
from slfm.voc import Sample


def int8_map50(
    pm: torch.fx.GraphModule, config: ModelConfig, samples: list[Sample], progress: bool = True, desc: str = "int8"
) -> dict:
    """``{"val_map50", "val_ap50"}`` of ``pm``'s converted int8 graph on ``samples`` (letterbox, mAP protocol)."""
    from slfm.evaluate import evaluate_samples
    from slfm.postprocess import EVAL
    from slfm.predictor import Predictor
    from slfm.quantize.quantized import fake_quant_module
    from slfm.runner import TorchRunner

    pred = Predictor(TorchRunner(fake_quant_module(pm)), config, post=EVAL)
    r = evaluate_samples(pred, samples, progress=progress, desc=desc)
    return {"val_map50": r["map50"], "val_ap50": r["ap50"]}
