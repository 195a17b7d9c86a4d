"""Load a .tflite model with whichever TFLite interpreter the machine has and run it on NCHW float32 input.

Handles what differs between artifacts: NCHW or NHWC input, float or quantized (int8/uint8) input and
outputs (quantized with each tensor's scale and zero point, TFLite's rounding: :mod:`slfm.core.quant`), and
output order (:func:`slfm.core.output_order`: the sidecar's ``output_indices``, else the shapes).
"""

from __future__ import annotations

import importlib
import sys
import time

import numpy as np

from slfm.core import dequantize, model_input, output_order

# Interpreter modules in order of preference for float models: what a Pi runs first.
RUNTIMES = {
    "tflite_runtime": "tflite_runtime.interpreter",
    "ai_edge_litert": "ai_edge_litert.interpreter",
    "tensorflow": "tensorflow.lite",
}


# For int8 models ai-edge-litert comes first: tflite-runtime 2.14's default XNNPACK delegate takes no int8 op
# (measured with `slfm bench latency`: no DELEGATE node in the plan of any int8 op, every fp32 op delegated),
# so its int8 graphs run on the builtin kernels, 3-7x slower than its own fp32 on x86; ai-edge-litert's
# default delegate takes them (and has aarch64 wheels for a Pi). tflite-runtime stays the fallback.
INT8_ORDER = ("ai_edge_litert", "tflite_runtime", "tensorflow")


def runtime_order(quantized: bool) -> list[str]:
    """The interpreters to try, in order, for a float (False) or an int8 (True) model."""
    return list(INT8_ORDER) if quantized else list(RUNTIMES)


def is_quantized(path: str) -> bool:
    """Whether a .tflite graph takes int8/uint8 input or holds int8 weights, read with the first interpreter
    found (the model's own input details: nothing but a TFLite runtime needed)."""
    cls, _, _ = import_interpreter()
    it = cls(model_path=str(path))
    return any(d["dtype"] in (np.int8, np.uint8) for d in it.get_input_details()) or any(
        d["dtype"] == np.int8 for d in it.get_tensor_details()
    )


class RunnerError(Exception):
    """A one-line, user-facing failure of the on-device runner."""


def import_interpreter(prefer: str | None = None, order: list[str] | None = None):
    """(Interpreter class, runtime name, version) of the first TFLite runtime found in ``order`` (default
    :data:`RUNTIMES`), or ``prefer``."""
    names = [prefer] if prefer else list(order or RUNTIMES)
    errors = []
    for name in names:
        if name not in RUNTIMES:
            raise RunnerError(f"unknown TFLite runtime {name!r}: use one of {', '.join(RUNTIMES)}")
        try:
            mod = importlib.import_module(RUNTIMES[name])
        except ImportError as e:
            errors.append(f"{name}: {e}")
            continue
        top = importlib.import_module(name)
        return mod.Interpreter, name, getattr(top, "__version__", "?")
    raise RunnerError(
        "no TFLite interpreter found (pip install tflite-runtime or ai-edge-litert): " + "; ".join(errors)
    )


def _quantized_or_false(path: str) -> bool:
    try:
        return is_quantized(path)
    except (ValueError, RuntimeError, RunnerError):
        return False  # the load below reports the problem with the runtime it picks


class TfliteModel:
    """``model(x)`` with x float32 [1, 3, H, W] (normalised as the artifact's metadata says) ->
    (loc [A, 4], scores [A, C]) as float32."""

    def __init__(
        self,
        path: str,
        threads: int = 1,
        runtime: str | None = None,
        preserve_all_tensors: bool = False,
        num_classes: int = 3,
        output_indices: list[int] | None = None,
    ):
        quantized = False if runtime else _quantized_or_false(path)
        interpreter_cls, self.runtime, self.version = import_interpreter(runtime, runtime_order(quantized))
        if quantized and self.runtime == "tflite_runtime":
            print(
                f"note: {path} is int8 and runs on tflite-runtime {self.version}, whose default XNNPACK delegate "
                "takes no int8 op (several times slower than fp32): pip install ai-edge-litert for the fast path",
                file=sys.stderr,
            )
        kw = {"model_path": str(path), "num_threads": int(threads)}
        if preserve_all_tensors:
            kw["experimental_preserve_all_tensors"] = True
        t0 = time.perf_counter()
        try:
            self.interpreter = interpreter_cls(**kw)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RunnerError(f"{path}: {self.runtime} {self.version} cannot load it: {first}") from e
        self.load_s = time.perf_counter() - t0
        self.threads = threads
        self.path = str(path)
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise RunnerError(f"{path}: expected one input tensor, found {len(inputs)}")
        self.input = inputs[0]
        shape = [int(s) for s in self.input["shape"]]
        if len(shape) != 4 or 3 not in (shape[1], shape[3]):
            raise RunnerError(f"{path}: input shape {shape} is not [1, 3, H, W] or [1, H, W, 3]")
        self.nhwc = shape[3] == 3 and shape[1] != 3
        self.input_shape = shape
        outs = self.interpreter.get_output_details()
        try:
            i_loc, i_scores = output_order([int(o["shape"][-1]) for o in outs], num_classes, output_indices)
        except ValueError as e:
            shapes = [list(map(int, o["shape"])) for o in outs]
            raise RunnerError(f"{path}: outputs {shapes}: {e}") from None
        self.loc_out, self.scores_out = outs[i_loc], outs[i_scores]

    @property
    def image_size(self) -> tuple[int, int]:
        s = self.input_shape
        return (s[1], s[2]) if self.nhwc else (s[2], s[3])

    def set_input(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        want = list(x.shape[:1]) + list(x.shape[2:]) + [x.shape[1]] if self.nhwc else list(x.shape)
        if want != self.input_shape:
            raise RunnerError(f"{self.path}: input shape {want} does not match the model's {self.input_shape}")
        try:
            x = model_input(x, self.nhwc, self.input["dtype"], self.input["quantization"])
        except ValueError as e:
            raise RunnerError(f"{self.path}: {e}") from None
        self.interpreter.set_tensor(self.input["index"], x)

    def invoke(self) -> None:
        self.interpreter.invoke()

    def _output(self, detail) -> np.ndarray:
        y = self.interpreter.get_tensor(detail["index"])
        if y.dtype != np.float32:
            scale, zp = detail["quantization"]
            y = dequantize(y, scale, zp)
        return y.reshape(-1, y.shape[-1]).astype(np.float32)

    def outputs(self) -> tuple[np.ndarray, np.ndarray]:
        return self._output(self.loc_out), self._output(self.scores_out)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.set_input(x)
        self.invoke()
        return self.outputs()
