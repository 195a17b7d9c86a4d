"""The PyTorch reference (the fp32 checkpoint, or an int8 artifact's fake-quant model), detections from raw
outputs and mAP, both through :mod:`slfm.core`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from slfm.bench import time_calls
from slfm.checkpoint import file_sha256, load_model
from slfm.core import DEMO, EVAL, Frame, ImageDetections, decode, to_image_pixels
from slfm.core import map50 as core_map50
from slfm.device_tests.memory import PeakMemory
from slfm.device_tests.runners import RunResult
from slfm.errors import SlfmError
from slfm.inputs import Image
from slfm.model import InferenceWrapper
from slfm.options import PROGRAMS_REFUSED


class TorchRunner:
    """Runs a torch module taking NCHW float32 and returning (loc, class probabilities)."""

    def __init__(self, module: torch.nn.Module, label: str, threads: int = 1) -> None:
        self.module, self.label, self.threads = module, label, threads

    @torch.no_grad()
    def run(self, inputs: np.ndarray, runs: int, warmup: int) -> RunResult:
        torch.set_num_threads(self.threads)
        with PeakMemory() as mem:
            outs = [self.module(torch.from_numpy(inputs[i : i + 1])) for i in range(inputs.shape[0])]
            x0 = torch.from_numpy(inputs[:1])
            warm, times = time_calls(lambda: self.module(x0), runs, warmup)
        return RunResult(
            loc=np.stack([o[0][0].numpy() for o in outs]),
            scores=np.stack([o[1][0].numpy() for o in outs]),
            times_s=times,
            warmup_s=warm,
            threads=self.threads,
            runtime=f"{self.label} (torch {torch.__version__})",
            peak_memory_mb=mem.delta_mb,
            memory_note="RSS added while running in the harness process",
        )


def load_reference(checkpoint: Path, threads: int = 1) -> tuple[TorchRunner, dict]:
    model, _ = load_model(checkpoint)
    info = {"checkpoint": str(checkpoint), "sha256": file_sha256(checkpoint), "image_size": model.config.image_size}
    return TorchRunner(InferenceWrapper(model).eval(), "PyTorch eager fp32", threads), info


def refuse_program(path: Path) -> str | None:
    """Why ``path`` is never loaded as a fake-quant model (a torch.export program, which can hold code), or None."""
    why = PROGRAMS_REFUSED.get(Path(path).suffix.lower())
    return f"{path}: {why}" if why else None


def load_fake_quant(path: Path, threads: int = 1) -> TorchRunner:
    """An int8 artifact's fake-quant model, rebuilt from an slfm QAT/PTQ checkpoint (plain data, ``slfm qat``)."""
    reason = refuse_program(path)
    if reason:
        raise SlfmError(reason)
    if not path.is_file():
        raise SlfmError(f"fake-quant model not found: {path}")
    from slfm.quantize.quantized import fake_quant_module, load_quantized

    try:
        module = fake_quant_module(load_quantized(path)[0])
    except SlfmError:
        raise
    except Exception as e:  # any rebuild failure is reported as one line naming the file
        raise SlfmError(f"{path}: cannot rebuild the fake-quant model: {str(e).splitlines()[0]}") from e
    return TorchRunner(module, "PyTorch fake-quant", threads)


def all_detections(res: RunResult, frames: list[Frame], meta) -> dict:
    """{"eval": [...], "demo": [...]}: per image detections in image pixels at the evaluation and demo settings,
    from the device's own post-processing when it did it (boxes normalised to its input), else decoded here."""
    out: dict[str, list[ImageDetections]] = {"eval": [], "demo": []}
    for i, frame in enumerate(frames):
        for key, post in (("eval", EVAL), ("demo", DEMO)):
            if res.dets is not None:
                d = res.dets[i][key]
                boxes = to_image_pixels(np.asarray(d["boxes"], dtype=np.float32).reshape(-1, 4), frame)
                scores, labels = np.asarray(d["scores"], dtype=np.float32), np.asarray(d["labels"], dtype=np.int64)
                out[key].append(ImageDetections(boxes, scores, labels))
            else:
                out[key].append(decode((res.loc[i], res.scores[i]), meta, post, frame))
    return out


def map50(dets: list[ImageDetections], images: list[Image]) -> dict | None:
    """mAP@0.5 and AP per class over all labelled images, and per dataset (:func:`slfm.core.map50`). None
    without labels."""
    idx = [i for i, im in enumerate(images) if im.gt_boxes is not None]
    if not idx:
        return None
    return core_map50(
        [dets[i] for i in idx],
        [images[i].gt_boxes for i in idx],
        [images[i].gt_labels for i in idx],
        [images[i].dataset for i in idx],
    )
