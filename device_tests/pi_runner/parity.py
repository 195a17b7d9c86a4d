"""Parity mode of the on-device runner: run a model on prepared inputs, time it, post-process on the device.

    python3 -m pi_runner.parity MODEL INPUTS.npy OUTDIR [--threads N] [--runs N] [--warmup N] [--runtime NAME]

INPUTS.npy holds float32 [N, 3, H, W] inputs prepared on the host (so the raw outputs compare exactly).
Writes to OUTDIR: loc.npy [N, A, 4], scores.npy [N, A, C], detections.json (the shipped ``slfm.core.decode``
at the evaluation and demo settings, boxes normalised to the input) and result.json
(timings, peak memory, runtime, machine). Needs numpy and a TFLite interpreter only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

import numpy as np

from slfm.config import ModelConfig
from slfm.core import DEMO, EVAL, decode

from .backend import RunnerError, TfliteModel


def _dets(raw, meta, config) -> dict:
    d = decode(raw, meta, config)  # boxes normalised to the input: the host maps them to image pixels
    return {"boxes": d.boxes.round(6).tolist(), "scores": d.scores.round(6).tolist(), "labels": d.labels.tolist()}


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return kb / (1 << 20) if sys.platform == "darwin" else kb / 1024


def run(args) -> dict:
    x = np.load(args.inputs)
    if x.ndim != 4 or x.dtype != np.float32:
        raise RunnerError(f"{args.inputs}: expected float32 [N, 3, H, W], got {x.dtype} {list(x.shape)}")
    model = TfliteModel(args.model, args.threads, args.runtime, False, args.num_classes, args.output_indices)
    h, w = model.image_size
    if h != w:
        raise RunnerError(f"{args.model}: input {h}x{w} is not square (slfm letterboxes to a square)")
    meta = ModelConfig(
        image_size=h,
        min_sizes=tuple(map(tuple, json.loads(args.min_sizes))),
        steps=tuple(args.steps),
        variances=tuple(args.variances),
    )
    locs, scores, dets = [], [], []
    for i in range(x.shape[0]):
        raw = model(x[i : i + 1])
        locs.append(raw[0])
        scores.append(raw[1])
        dets.append({"eval": _dets(raw, meta, EVAL), "demo": _dets(raw, meta, DEMO)})
    model.set_input(x[:1])
    warm, times = [], []
    for n, bucket in ((args.warmup, warm), (args.runs, times)):
        for _ in range(n):
            t = time.perf_counter()
            model.invoke()
            bucket.append(time.perf_counter() - t)
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "loc.npy"), np.stack(locs))
    np.save(os.path.join(args.out, "scores.npy"), np.stack(scores))
    with open(os.path.join(args.out, "detections.json"), "w") as f:
        json.dump(dets, f)
    result = {
        "runtime": model.runtime,
        "runtime_version": model.version,
        "threads": args.threads,
        "load_s": model.load_s,
        "warmup_s": warm,
        "times_s": times,
        "peak_memory_mb": peak_rss_mb(),
        "images": int(x.shape[0]),
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpu_count": os.cpu_count(),
        },
    }
    with open(os.path.join(args.out, "result.json"), "w") as f:
        json.dump(result, f, indent=1)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pi_runner.parity", description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("inputs")
    p.add_argument("out")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument(
        "--runtime", default=None, help="tflite_runtime | ai_edge_litert | tensorflow (default: first found)"
    )
    p.add_argument("--min-sizes", default="[[16, 32], [64, 128], [256, 512]]", help="JSON, from the sidecar")
    p.add_argument("--steps", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--variances", type=float, nargs=2, default=[0.1, 0.2])
    p.add_argument("--num-classes", type=int, default=3, help="from the sidecar (background included)")
    p.add_argument("--output-indices", type=int, nargs=2, default=None, help="the sidecar's output_indices")
    args = p.parse_args(argv)
    try:
        r = run(args)
    except (RunnerError, OSError, ValueError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    print(json.dumps({k: r[k] for k in ("runtime", "runtime_version", "images", "peak_memory_mb")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
