"""One way to load any slfm artifact and run it in this process (or, for tflite-runtime, in its own venv).

Stable API (the parity harness builds on it)::

    runner = load_runner(path, threads=1)          # .tflite, .pte, .mlpackage (macOS), or a torch module
    loc, scores = runner(x)                          # x: float32 [1, 3, S, S] from slfm.core.prepare
    runner.meta                                      # slfm.artifact.ArtifactMeta (from the sidecar)

``runner(x)`` always takes the NCHW float input and returns float32 ``loc`` [A, 4] and ``scores`` [A, C]:
NHWC transposition and int8 (de)quantization with each tensor's own (scale, zero_point) happen inside.
``load_runner(path, runtime="tflite-runtime")`` runs a .tflite in tflite-runtime 2.14 (what a Raspberry Pi
has): its numpy<2 venv is :mod:`slfm.device_tests.tflrt_env`, run through the parity harness's subprocess
runner. For boxes in image pixels, give any runner to :class:`slfm.predictor.Predictor` as its model.
Every runner here is a :class:`slfm.runner.Runner`; a torch module goes behind the same API with
:class:`slfm.runner.TorchRunner` (below the layers that convert and run artifacts, for quantize).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

from slfm.artifact import ArtifactMeta, read_sidecar, sidecar_path
from slfm.core import dequantize, meta_output_order, model_input
from slfm.errors import SlfmError
from slfm.formats import FORMATS, format_of
from slfm.formats import RUNTIME_CHOICES as RUNTIMES
from slfm.runner import Runner


class TFLiteRunner(Runner):
    name = "litert"

    def __init__(self, path: Path, meta: ArtifactMeta, threads: int = 1) -> None:
        super().__init__(meta)
        from slfm.toolchain import require

        require("tflite", "ai_edge_litert")
        from ai_edge_litert.interpreter import Interpreter

        self.path = path
        self.interp = Interpreter(model_path=str(path), num_threads=threads)
        self.interp.allocate_tensors()
        self.input = self.interp.get_input_details()[0]
        s = meta.image_size
        want = [1, s, s, 3] if meta.layout == "NHWC" else [1, 3, s, s]
        if list(self.input["shape"]) != want:
            raise SlfmError(
                f"{path}: the model takes input {list(self.input['shape'])} but its sidecar says {want} "
                f"(image_size {s}, {meta.layout}): the sidecar does not belong to this artifact"
            )
        outs = self.interp.get_output_details()
        try:
            i_loc, i_scores = meta_output_order(meta, [int(o["shape"][-1]) for o in outs])
        except ValueError as e:
            raise SlfmError(f"{path}: {e}") from None
        self.outputs = [outs[i_loc], outs[i_scores]]

    def __call__(self, x):
        x = self._check(x)
        d = self.input
        self.interp.set_tensor(d["index"], model_input(x, False, d["dtype"], d["quantization"]))
        self.interp.invoke()
        res = []
        for o in self.outputs:
            v = self.interp.get_tensor(o["index"])
            if o["dtype"] != np.float32:
                v = dequantize(v, *o["quantization"])
            res.append(v[0].astype(np.float32))
        return res[0], res[1]


_ET_POOL_FIXED = False  # whether an ExecuTorch method (holding the threadpool) was loaded in this process


def _et_threads(threads: int) -> int:
    """Size ExecuTorch's threadpool, which its XNNPACK delegate uses instead of torch's (one thread per core by
    default). Resizing the pool after a method was loaded hangs now and then (executorch 1.5.1, measured: the
    loaded XNNPACK runtime keeps the old pool), so it is resized only before the first load; afterwards the
    process keeps its pool and a warning says so.
    Returns the thread count ExecuTorch will use."""
    from executorch.extension.pybindings import portable_lib as pl

    have = pl._threadpool_get_thread_count()
    if have == threads:
        return threads
    if not _ET_POOL_FIXED:
        pl._unsafe_reset_threadpool(threads)
        return threads
    warnings.warn(f"ExecuTorch already runs on {have} threads in this process; {threads} requested", stacklevel=3)
    return have


def check_pte_identifier(path: Path) -> None:
    """executorch 1.5.1 aborts the whole process (not an exception) logging a non-ASCII program identifier:
    anything handed to its loader is checked here first."""
    with open(path, "rb") as f:
        ident = f.read(8)[4:8]
    if not (ident[:2] == b"ET" and ident[2:].isdigit()):
        raise SlfmError(f"{path}: not an ExecuTorch program (no 'ET..' identifier at byte 4): corrupt or foreign")


class ExecuTorchRunner(Runner):
    name = "executorch"

    def __init__(self, path: Path, meta: ArtifactMeta, threads: int = 1) -> None:
        super().__init__(meta)
        from slfm.toolchain import require

        require("executorch")
        import torch
        from executorch.runtime import Runtime

        global _ET_POOL_FIXED
        self.torch = torch
        check_pte_identifier(path)
        self.path = path
        self.threads = _et_threads(threads)
        self.program = Runtime.get().load_program(path)
        self.method = self.program.load_method("forward")  # the XNNPACK delegate keeps the pool from here on
        _ET_POOL_FIXED = True

    def __call__(self, x):
        x = self._check(x)
        try:
            outs = self.method.execute([self.torch.from_numpy(x)])
        except RuntimeError as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise SlfmError(f"{self.path}: ExecuTorch could not run it: {first}") from e
        try:
            i_loc, i_scores = meta_output_order(self.meta, [int(o.shape[-1]) for o in outs])
        except ValueError as e:
            raise SlfmError(f"{self.path}: {e}") from None
        return outs[i_loc][0].numpy().astype(np.float32), outs[i_scores][0].numpy().astype(np.float32)


class TFLiteRuntimeRunner(Runner):
    """A .tflite in tflite-runtime 2.14 (a Raspberry Pi's interpreter), which needs numpy<2 and so runs in its
    own venv (:mod:`slfm.device_tests.tflrt_env`) through the parity harness's
    :class:`~slfm.device_tests.runners.SubprocessRunner`: one subprocess per call (for checks, not for speed)."""

    name = "tflite-runtime"

    def __init__(self, path: Path, meta: ArtifactMeta, threads: int = 1, venv: Path | None = None) -> None:
        super().__init__(meta)
        from slfm.device_tests import tflrt_env
        from slfm.device_tests.runners import SubprocessRunner

        if not tflrt_env.is_ready(venv):
            raise SlfmError(
                f"tflite-runtime 2.14 venv not ready ({tflrt_env.venv_python(venv)}): "
                "create it with python -m slfm.device_tests.tflrt_env"
            )
        self.sub = SubprocessRunner(Path(path), meta, tflrt_env.venv_python(venv), threads)

    def __call__(self, x):
        res = self.sub.run(self._validate(x), runs=0, warmup=0)  # the shipped runner handles NHWC and int8
        return res.loc[0], res.scores[0]


class CoreMLRunner(Runner):
    name = "coreml"

    def __init__(self, path: Path, meta: ArtifactMeta, threads: int = 1) -> None:
        super().__init__(meta)
        if meta.extra.get("coreml_nms"):
            raise SlfmError(
                f"{path}: a Core ML NMS pipeline outputs detections for Vision, not loc/scores; "
                "parity and eval take the raw model (slfm convert without --coreml-nms)"
            )
        if sys.platform != "darwin":
            raise SlfmError(
                f"{path}: Core ML prediction needs macOS (coremltools cannot run models on {sys.platform}); "
                "check the spec with slfm.convert.coreml.spec_summary"
            )
        from slfm.toolchain import require

        ct = require("coreml")
        self.model = ct.models.MLModel(str(path))
        self.image_input = meta.extra.get("coreml_input", "image") == "image"

    def __call__(self, x):
        x = np.asarray(x, dtype=np.float32)
        if self.image_input:
            from PIL import Image

            # the pixels back from the prepared input (slfm.core.prepare): the model applies mean and scale itself
            mean = np.asarray(self.meta.mean_bgr, dtype=np.float32)
            bgr = x[0].transpose(1, 2, 0) / np.float32(self.meta.pixel_scale) + mean
            rgb = np.clip(np.round(bgr[..., ::-1]), 0, 255).astype(np.uint8)
            out = self.model.predict({"image": Image.fromarray(rgb)})
        else:
            out = self.model.predict({"x": x})
        return np.asarray(out["loc"])[0].astype(np.float32), np.asarray(out["scores"])[0].astype(np.float32)


def read_contract(path: Path) -> ArtifactMeta:
    """The artifact's contract: its sidecar ``<artifact>.json``, else the copy embedded in the file (a user may
    have downloaded the file alone). Reading it runs nothing from the file."""
    if sidecar_path(path).is_file():
        return read_sidecar(path)
    fmt = format_of(path)
    reader = fmt.read_metadata() if fmt is not None and path.suffix.lower() == fmt.suffix else None
    d = None
    if reader is not None:
        if fmt.name == "executorch":
            check_pte_identifier(path)
        try:
            d = reader(path)
        except Exception as e:  # a corrupt or foreign file: its loader's own first line
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise SlfmError(
                f"{path}: no sidecar {sidecar_path(path).name}, and its embedded metadata is unreadable "
                f"(corrupt, truncated or not an slfm artifact): {first[:200]}"
            ) from e
    if d is None:
        raise SlfmError(
            f"{path}: no contract: neither a sidecar {sidecar_path(path).name} nor slfm metadata inside the file "
            "(every slfm artifact carries both)"
        )
    try:
        return ArtifactMeta.from_dict(d)
    except (ValueError, TypeError) as e:
        raise SlfmError(f"{path}: unreadable embedded artifact metadata: {str(e).splitlines()[0][:200]}") from e


def load_runner(path: str | Path, threads: int = 1, runtime: str = "auto") -> Runner:
    """Load an artifact into a :class:`Runner`, with its contract (:func:`read_contract`: the sidecar
    ``<artifact>.json``, else the metadata inside the file)."""
    path = Path(path)
    if not path.exists():
        raise SlfmError(f"artifact not found: {path}")
    if runtime not in RUNTIMES:
        raise SlfmError(f"unknown runtime {runtime!r}: use one of {RUNTIMES}")
    fmt = format_of(path)
    kind = (fmt.runtime if fmt else "") if runtime == "auto" else runtime
    meta = read_contract(path)
    runs_it = FORMATS[meta.format].runtimes if meta.format in FORMATS else ()
    if runtime != "auto" and kind not in runs_it:
        raise SlfmError(
            f"{path}: --runtime {runtime} cannot run a {meta.format} artifact (use one of {', '.join(runs_it)})"
        )
    runners = {
        "litert": TFLiteRunner,
        "tflite-runtime": TFLiteRuntimeRunner,
        "executorch": ExecuTorchRunner,
        "coreml": CoreMLRunner,
    }
    if kind not in runners:
        wanted = ", ".join(f.suffix for f in FORMATS.values())
        raise SlfmError(f"{path}: unknown artifact type {path.suffix!r} (expected one of {wanted})")
    try:
        return runners[kind](path, meta, threads)
    except SlfmError:
        raise
    except Exception as e:  # the runtime's own error on a corrupt, truncated or foreign file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SlfmError(f"{path}: not a loadable {kind} artifact (corrupt, truncated or another file): {first}") from e
