"""One way to load any slfm artifact and run it in this process (or, for tflite-runtime, in its own venv).

Stable API (the parity harness builds on it)::

    runner = load_runner(path, threads=1)          # .tflite, .pte, .mlpackage (macOS), or a torch module
    loc, scores = runner(x)                          # x: float32 [1, 3, S, S] from slfm.preprocess.normalize
    runner.meta                                      # slfm.artifact.ArtifactMeta (from the sidecar)

``runner(x)`` always takes the NCHW float input and returns float32 ``loc`` [A, 4] and ``scores`` [A, C]:
NHWC transposition and int8 (de)quantization with each tensor's own (scale, zero_point) happen inside.
``load_runner(path, runtime="tflite-runtime")`` runs a .tflite in tflite-runtime 2.14 (what a Raspberry Pi
has) through :mod:`slfm.convert.tflrt`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from slfm.artifact import ArtifactMeta, read_sidecar
from slfm.errors import SlfmError
from slfm.predictor import Predictor

RUNTIMES = ("auto", "litert", "tflite-runtime", "executorch", "coreml")


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((q.astype(np.float32) - zero_point) * scale).astype(np.float32)


class Runner:
    """Base: ``__call__(x NCHW float32) -> (loc [A, 4], scores [A, C])``."""

    name = "runner"

    def __init__(self, meta: ArtifactMeta | None) -> None:
        self.meta = meta

    def _check(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self.meta is not None:
            s = self.meta.image_size
            if x.shape != (1, 3, s, s):
                raise SlfmError(f"{self.name}: expected input [1, 3, {s}, {s}] (NCHW float32), got {list(x.shape)}")
        if self.meta is not None and self.meta.layout == "NHWC":
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        return x

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class TFLiteRunner(Runner):
    name = "litert"

    def __init__(self, path: Path, meta: ArtifactMeta, threads: int = 1) -> None:
        super().__init__(meta)
        from slfm.convert.toolchain import require

        require("tflite", "ai_edge_litert")
        from ai_edge_litert.interpreter import Interpreter

        self.path = path
        self.interp = Interpreter(model_path=str(path), num_threads=threads)
        self.interp.allocate_tensors()
        self.input = self.interp.get_input_details()[0]
        # litert-torch names outputs ..._output_0, ..._output_1 in the module's return order (loc, scores)
        outs = sorted(self.interp.get_output_details(), key=lambda d: d["name"])
        self.outputs = outs

    def __call__(self, x):
        x = self._check(x)
        d = self.input
        if d["dtype"] != np.float32:
            s, z = d["quantization"]
            x = quantize(x, s, z, d["dtype"])
        self.interp.set_tensor(d["index"], x)
        self.interp.invoke()
        res = []
        for o in self.outputs:
            v = self.interp.get_tensor(o["index"])
            if o["dtype"] != np.float32:
                v = dequantize(v, *o["quantization"])
            res.append(v[0].astype(np.float32))
        return res[0], res[1]


class ExecuTorchRunner(Runner):
    name = "executorch"

    def __init__(self, path: Path, meta: ArtifactMeta, threads: int = 1) -> None:
        super().__init__(meta)
        from slfm.convert.toolchain import require

        require("executorch")
        import torch
        from executorch.runtime import Runtime

        self.torch = torch
        self.threads = threads
        self.program = Runtime.get().load_program(path)
        self.method = self.program.load_method("forward")

    def __call__(self, x):
        x = self._check(x)
        torch = self.torch
        prev = torch.get_num_threads()
        torch.set_num_threads(self.threads)  # XNNPACK's threadpool follows the process-wide setting
        try:
            loc, scores = self.method.execute([torch.from_numpy(x)])
        finally:
            torch.set_num_threads(prev)
        return loc[0].numpy().astype(np.float32), scores[0].numpy().astype(np.float32)


class CoreMLRunner(Runner):
    name = "coreml"

    def __init__(self, path: Path, meta: ArtifactMeta, threads: int = 1) -> None:
        super().__init__(meta)
        if sys.platform != "darwin":
            raise SlfmError(
                f"{path}: Core ML prediction needs macOS (coremltools cannot run models on {sys.platform}); "
                "check the spec with slfm.convert.coreml.spec_summary"
            )
        from slfm.convert.toolchain import require

        ct = require("coreml")
        self.model = ct.models.MLModel(str(path))
        self.image_input = meta.extra.get("coreml_input", "image") == "image"

    def __call__(self, x):
        x = np.asarray(x, dtype=np.float32)
        if self.image_input:
            from PIL import Image

            bgr = x[0].transpose(1, 2, 0) + np.asarray(self.meta.mean_bgr, dtype=np.float32)
            rgb = np.clip(np.round(bgr[..., ::-1]), 0, 255).astype(np.uint8)
            out = self.model.predict({"image": Image.fromarray(rgb)})
        else:
            out = self.model.predict({"x": x})
        return np.asarray(out["loc"])[0].astype(np.float32), np.asarray(out["scores"])[0].astype(np.float32)


class TorchRunner(Runner):
    """A PyTorch module with outputs ``(loc, scores)`` (e.g. a fake-quantized graph) behind the same API."""

    name = "torch"

    def __init__(self, module, meta: ArtifactMeta | None = None) -> None:
        super().__init__(meta)
        self.module = module

    def __call__(self, x):
        import torch

        with torch.no_grad():
            loc, scores = self.module(torch.from_numpy(np.asarray(x, dtype=np.float32)))
        return loc[0].numpy(), scores[0].numpy()


def runtime_for(path: Path) -> str:
    suffix = path.suffix.lower()
    return {".tflite": "litert", ".pte": "executorch", ".mlpackage": "coreml", ".mlmodel": "coreml"}.get(suffix, "")


def load_runner(path: str | Path, threads: int = 1, runtime: str = "auto") -> Runner:
    """Load an artifact (its sidecar ``<artifact>.json`` must be beside it) into a :class:`Runner`."""
    path = Path(path)
    if not path.exists():
        raise SlfmError(f"artifact not found: {path}")
    if runtime not in RUNTIMES:
        raise SlfmError(f"unknown runtime {runtime!r}: use one of {RUNTIMES}")
    kind = runtime_for(path) if runtime == "auto" else runtime
    meta = read_sidecar(path)
    if kind == "litert":
        return TFLiteRunner(path, meta, threads)
    if kind == "tflite-runtime":
        from slfm.convert.tflrt import TFLiteRuntimeRunner

        return TFLiteRuntimeRunner(path, meta, threads)
    if kind == "executorch":
        return ExecuTorchRunner(path, meta, threads)
    if kind == "coreml":
        return CoreMLRunner(path, meta, threads)
    raise SlfmError(f"{path}: unknown artifact type {path.suffix!r} (expected .tflite, .pte or .mlpackage)")


class RunnerPredictor(Predictor):
    """:class:`slfm.predictor.Predictor` (letterbox, postprocess, boxes in image pixels) over any runner."""

    def __init__(self, runner: Runner, config, post=None, **kw) -> None:
        from slfm.postprocess import DEMO

        self.runner = runner
        super().__init__(_NoModel(), config, post=post or DEMO, **kw)

    def raw(self, x: np.ndarray):
        return self.runner(x)


class _NoModel:
    def eval(self):
        return self
