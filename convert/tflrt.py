"""Run a .tflite in tflite-runtime 2.14 (the Raspberry Pi's interpreter), which needs numpy<2 and so lives in
its own venv. The worker (:mod:`slfm.convert.tflrt_worker`, stdlib + numpy only) runs there as a subprocess;
tensors travel as .npy files.

The venv: ``$SLFM_TFLRT_PYTHON`` or ``<repo>/.venv-tflrt/bin/python``; make it with
``python3 -m venv .venv-tflrt && .venv-tflrt/bin/pip install 'numpy<2' tflite-runtime==2.14.0``.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from slfm.artifact import ArtifactMeta
from slfm.convert.runtimes import Runner, dequantize, quantize
from slfm.errors import SlfmError

WORKER = Path(__file__).with_name("tflrt_worker.py")
SETUP = "python3 -m venv .venv-tflrt && .venv-tflrt/bin/pip install 'numpy<2' tflite-runtime==2.14.0"


def tflrt_python() -> Path | None:
    env = os.environ.get("SLFM_TFLRT_PYTHON")
    cands = [Path(env)] if env else []
    cands.append(Path(__file__).resolve().parents[1] / ".venv-tflrt" / "bin" / "python")
    return next((c for c in cands if c.is_file()), None)


class TFLiteRuntimeRunner(Runner):
    name = "tflite-runtime"

    def __init__(self, path: Path, meta: ArtifactMeta, threads: int = 1) -> None:
        super().__init__(meta)
        py = tflrt_python()
        if py is None:
            raise SlfmError(f"tflite-runtime venv not found (set $SLFM_TFLRT_PYTHON or run: {SETUP})")
        self.tmp = tempfile.TemporaryDirectory(prefix="slfm-tflrt-")
        self.proc = subprocess.Popen(
            [str(py), str(WORKER), str(Path(path).resolve()), str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        first = self.proc.stdout.readline()
        info = json.loads(first) if first.strip() else {"error": "worker exited without output"}
        if "error" in info:
            self.close()
            raise SlfmError(f"{path}: tflite-runtime cannot load the model: {info['error']}")
        self.info = info
        self.calls = 0

    def __call__(self, x):
        x = self._check(x)
        d = self.info["input"]
        if d["dtype"] != "float32":
            x = quantize(x, d["scale"], d["zero_point"], np.dtype(d["dtype"]))
        src = os.path.join(self.tmp.name, f"in{self.calls}.npy")
        prefix = os.path.join(self.tmp.name, f"out{self.calls}")
        self.calls += 1
        np.save(src, x)
        self.proc.stdin.write(f"{src} {prefix}\n")
        self.proc.stdin.flush()
        if self.proc.stdout.readline().strip() != "ok":
            raise SlfmError("tflite-runtime worker failed while running the model")
        res = []
        for i, o in enumerate(self.info["outputs"]):
            v = np.load(f"{prefix}_{i}.npy")
            if o["dtype"] != "float32":
                v = dequantize(v, o["scale"], o["zero_point"])
            res.append(v[0].astype(np.float32))
        return res[0], res[1]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        self.tmp.cleanup()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
