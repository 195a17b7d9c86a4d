"""Speed benchmarks of the PyTorch model on this machine: training throughput and inference latency.

Writes JSON + Markdown reports naming the machine. Not a test: numbers depend on the machine and load.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from slfm.config import ModelConfig
from slfm.data import DetectionDataset
from slfm.loss import total_loss
from slfm.model import SLFMDet
from slfm.outputs import write_text


def latency_stats(times_s: list[float]) -> dict:
    ms = sorted(t * 1000 for t in times_s)
    return {
        "p50": statistics.median(ms),
        "p90": float(np.percentile(ms, 90)),
        "mean": statistics.fmean(ms),
        "min": ms[0],
        "runs": len(ms),
    }


def time_calls(fn, runs: int, warmup: int) -> tuple[list[float], list[float]]:
    warm = []
    for _ in range(warmup):
        t = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return warm, times


def inference_latency(size: int, threads: int, runs: int = 30, warmup: int = 3) -> dict:
    torch.set_num_threads(threads)
    model = SLFMDet(ModelConfig(image_size=size)).eval()
    x = torch.randn(1, 3, size, size) * 50
    with torch.no_grad():
        warm, times = time_calls(lambda: model(x), runs, warmup)
    return {"size": size, "threads": threads, "warmup_ms": [w * 1000 for w in warm], **latency_stats(times)}


def training_throughput(samples, size: int, batch: int, iters: int, threads: int, workers: int) -> dict:
    """Images/s of full training steps (augmentation, matching, forward, backward, Adam) on real images."""
    torch.set_num_threads(threads)
    cfg = ModelConfig(image_size=size)
    model = SLFMDet(cfg).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    ds = DetectionDataset(samples, cfg, train=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)
    it = iter(loader)
    n, t0 = 0, None
    for i in range(iters + 1):
        try:
            x, lt, ct, ht = next(it)
        except StopIteration:
            it = iter(loader)
            x, lt, ct, ht = next(it)
        parts = total_loss(model(x, with_heatmap=True), (lt, ct, ht))
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        if i == 0:
            t0 = time.perf_counter()  # the first step includes worker start-up
        else:
            n += x.shape[0]
    sec = time.perf_counter() - t0
    return {
        "size": size,
        "batch": batch,
        "threads": threads,
        "workers": workers,
        "iterations": iters,
        "images_per_second": n / sec,
    }


def write(report: dict, out: Path, markdown: str) -> None:
    """OUT.json and OUT.md, each written atomically."""
    write_text(out.with_suffix(".json"), json.dumps(report, indent=2) + "\n")
    write_text(out.with_suffix(".md"), markdown)


def speed_markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"# PyTorch speed: SL-FMDet on {m['processor']} ({m['cpu_count']} CPUs)",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}  ",
        f"Machine: {m['platform']}, Python {m['python']}, torch {m['torch']}; 1-min load average at the "
        f"start {m.get('load_average_1min', 'n/a')} (other jobs on the 2 CPUs inflate these numbers)",
        "",
        "## Training throughput (real Moxa3K images, full step)",
        "",
        "| input | batch | threads | workers | images/s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for t in report["training"]:
        lines.append(f"| {t['size']} | {t['batch']} | {t['threads']} | {t['workers']} | {t['images_per_second']:.1f} |")
    lines += [
        "",
        "## Inference latency, fp32 eager, batch 1",
        "",
        "| input | threads | p50 ms | p90 ms | first (warm-up) ms |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in report["inference"]:
        lines.append(f"| {r['size']} | {r['threads']} | {r['p50']:.1f} | {r['p90']:.1f} | {r['warmup_ms'][0]:.1f} |")
    return "\n".join(lines) + "\n"
