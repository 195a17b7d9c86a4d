"""Ways to run an artifact on prepared inputs and get back raw outputs, timings and memory:

- :class:`InProcessRunner`: this process, through ``slfm.device_tests.runtimes.load_runner`` (the artifact
  runtime API); for .tflite, until that exists, the shipped runner's ai-edge-litert backend.
- :class:`SubprocessRunner`: the tflite-runtime 2.14 venv (numpy<2) as a subprocess, exchanging .npy files.
- :class:`DeviceRunner`: a remote device (ssh Pi, adb phone): push bundle + model + inputs, run, pull back.

The two out-of-process runners execute the same code, ``pi_runner.parity``, from the same bundle.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from slfm.artifact import ArtifactMeta
from slfm.bench import time_calls
from slfm.device_tests.bundle import build_bundle
from slfm.device_tests.memory import PeakMemory
from slfm.device_tests.remote import AdbRemote, SshRemote, run_dir
from slfm.errors import SlfmError


@dataclass
class RunResult:
    loc: np.ndarray  # [N, A, 4]
    scores: np.ndarray  # [N, A, C]
    times_s: list[float]
    warmup_s: list[float]
    threads: int
    runtime: str
    load_s: float | None = None
    peak_memory_mb: float | None = None
    memory_note: str = ""
    dets: list[dict] | None = None  # post-processed on the device: per image {"eval": {...}, "demo": {...}}
    device: dict = field(default_factory=dict)


def _as_outputs(out) -> tuple[np.ndarray, np.ndarray]:
    loc, scores = (np.asarray(o, dtype=np.float32) for o in out)
    return loc.reshape(-1, 4), scores.reshape(-1, scores.shape[-1])


def _runtime_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    dist = {"litert": "ai-edge-litert", "executorch": "executorch", "coreml": "coremltools"}.get(name)
    try:
        return f"{dist} {version(dist)}" if dist else name
    except PackageNotFoundError:
        return name


def load_in_process(path: Path, threads: int):
    """(runner x -> (loc, scores), runtime label) in this process: :func:`slfm.device_tests.runtimes.load_runner`."""
    from slfm.device_tests.runtimes import load_runner

    runner = load_runner(path, threads=threads)
    return runner, f"{_runtime_version(runner.name)} (slfm.device_tests.runtimes)"


class InProcessRunner:
    target = "local"

    def __init__(self, path: Path, meta: ArtifactMeta, threads: int = 1) -> None:
        self.path, self.meta, self.threads = path, meta, threads

    def run(self, inputs: np.ndarray, runs: int, warmup: int) -> RunResult:
        import time

        import torch

        torch.set_num_threads(self.threads)
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            fn, runtime = load_in_process(self.path, self.threads)
            load_s = time.perf_counter() - t0
            outs = [_as_outputs(fn(inputs[i : i + 1])) for i in range(inputs.shape[0])]
            x0 = inputs[:1]
            warm, times = time_calls(lambda: fn(x0), runs, warmup)
        return RunResult(
            loc=np.stack([o[0] for o in outs]),
            scores=np.stack([o[1] for o in outs]),
            times_s=times,
            warmup_s=warm,
            threads=self.threads,
            runtime=runtime,
            load_s=load_s,
            peak_memory_mb=mem.delta_mb,
            memory_note="RSS added by loading and running it in the harness process (VmHWM delta)",
        )


def _runner_args(meta: ArtifactMeta, threads: int, runs: int, warmup: int, runtime: str | None) -> list[str]:
    args = ["--threads", str(threads), "--runs", str(runs), "--warmup", str(warmup)]
    args += ["--min-sizes", json.dumps(meta.min_sizes), "--steps", *map(str, meta.steps)]
    args += ["--variances", *map(str, meta.variances), "--num-classes", str(len(meta.classes))]
    if meta.output_indices:
        args += ["--output-indices", *map(str, meta.output_indices)]
    if runtime:
        args += ["--runtime", runtime]
    return args


def _read_out(out: Path, threads: int, runtime_label: str) -> RunResult:
    try:
        res = json.loads((out / "result.json").read_text())
        loc, scores = np.load(out / "loc.npy"), np.load(out / "scores.npy")
        dets = json.loads((out / "detections.json").read_text())
    except (OSError, ValueError) as e:
        raise SlfmError(f"runner output in {out} incomplete: {e}") from e
    return RunResult(
        loc=loc,
        scores=scores,
        times_s=res["times_s"],
        warmup_s=res["warmup_s"],
        threads=threads,
        runtime=f"{runtime_label} ({res['runtime']} {res['runtime_version']})",
        load_s=res["load_s"],
        peak_memory_mb=res["peak_memory_mb"],
        memory_note="peak RSS of the runner process: Python, numpy, interpreter, model and all N inputs/outputs held",
        dets=dets,
        device=res["machine"],
    )


class SubprocessRunner:
    """The shipped runner under another Python (the local tflite-runtime 2.14 venv)."""

    target = "local"

    def __init__(
        self,
        path: Path,
        meta: ArtifactMeta,
        python: Path,
        threads: int = 1,
        timeout: float = 600,
        runtime: str = "tflite_runtime",
        label: str = "tflite-runtime venv",
    ) -> None:
        self.path, self.meta, self.python, self.threads = path, meta, python, threads
        self.timeout, self.runtime, self.label = timeout, runtime, label

    def run(self, inputs: np.ndarray, runs: int, warmup: int) -> RunResult:
        with tempfile.TemporaryDirectory(prefix="slfm-parity-") as tmp:
            tmp = Path(tmp)
            bundle = build_bundle(tmp / "bundle")
            np.save(tmp / "inputs.npy", inputs.astype(np.float32))
            cmd = [
                str(self.python),
                "-m",
                "pi_runner.parity",
                str(self.path.resolve()),
                str(tmp / "inputs.npy"),
                str(tmp / "out"),
                *_runner_args(self.meta, self.threads, runs, warmup, self.runtime),
            ]
            try:
                r = subprocess.run(cmd, cwd=bundle, capture_output=True, text=True, timeout=self.timeout)
            except subprocess.TimeoutExpired:
                raise SlfmError(f"{self.python}: runner did not finish within {self.timeout:.0f} s") from None
            if r.returncode != 0:
                tail = (r.stderr.strip().splitlines() or ["?"])[-1]
                raise SlfmError(f"{self.label} ({self.python}) failed on {self.path}: {tail}")
            return _read_out(tmp / "out", self.threads, self.label)


class DeviceRunner:
    """The shipped runner on a remote device: bundle, model and inputs pushed, outputs pulled back."""

    def __init__(
        self,
        remote: SshRemote | AdbRemote,
        path: Path,
        meta: ArtifactMeta,
        threads: int = 1,
        python: str = "python3",
        base_dir: str = "slfm-parity",
        timeout: float = 900,
        runtime: str | None = None,
        keep: bool = False,
    ) -> None:
        self.remote, self.path, self.meta, self.threads = remote, path, meta, threads
        self.python, self.base_dir, self.timeout, self.runtime, self.keep = python, base_dir, timeout, runtime, keep
        self.target = remote.name

    def remote_command(self, rdir: str, runs: int, warmup: int) -> str:
        """The one shell line run on the device (every piece quoted)."""
        args = [
            "../model.tflite",
            "../inputs.npy",
            "../out",
            *_runner_args(self.meta, self.threads, runs, warmup, self.runtime),
        ]
        return (
            f"cd {shlex.quote(rdir + '/bundle')} && {shlex.quote(self.python)} -m pi_runner.parity {shlex.join(args)}"
        )

    def run(self, inputs: np.ndarray, runs: int, warmup: int) -> RunResult:
        if self.meta.format != "tflite":
            raise SlfmError(f"{self.path}: the device runner runs .tflite artifacts only ({self.meta.format} given)")
        rdir = run_dir(self.base_dir)
        with tempfile.TemporaryDirectory(prefix="slfm-parity-") as tmp:
            tmp = Path(tmp)
            bundle = build_bundle(tmp / "bundle")
            np.save(tmp / "inputs.npy", inputs.astype(np.float32))
            files = {"bundle": bundle, "model.tflite": self.path, "inputs.npy": tmp / "inputs.npy"}
            try:
                self.remote.push(files, rdir, self.timeout)
                self.remote.run(self.remote_command(rdir, runs, warmup), self.timeout, "parity runner")
                self.remote.pull(rdir, ["out"], tmp, self.timeout)
            finally:
                if not self.keep:
                    try:
                        self.remote.remove(rdir, timeout=60)
                    except SlfmError:
                        pass
            return _read_out(tmp / "out", self.threads, "pi_runner")
