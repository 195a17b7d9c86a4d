"""Evaluate a detector on a labelled dataset: AP per class, mAP, COCO AP, PR plot, JSON report."""

from __future__ import annotations

import json
import os
import platform
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from slfm.core.evaluation import CLASS_NAMES
from slfm.errors import SlfmError
from slfm.images import DataWarning, read_image
from slfm.metrics import ImageDetections, evaluate, map50_from_matches, voc_image_matches
from slfm.outputs import atomic_path, write_text
from slfm.voc import Sample


def run_detector(
    detect: Callable[[np.ndarray], ImageDetections], samples: list[Sample], progress: bool = True, desc: str = "eval"
) -> tuple[list[ImageDetections], list[Sample], float]:
    """Detections for every readable sample, the samples they belong to, and the mean seconds per image (model +
    pre/post-processing). An image that cannot be decoded is skipped with a warning naming it."""
    dets, kept = [], []
    t0 = time.perf_counter()
    for smp in tqdm(samples, desc=desc, disable=not progress, leave=False):
        try:
            image = read_image(smp.image, quiet=True)
        except SlfmError as e:
            warnings.warn(f"{e}; skipped", DataWarning, stacklevel=2)
            continue
        dets.append(detect(image))
        kept.append(smp)
    if not kept:
        raise SlfmError(f"none of the {len(samples)} images could be read")
    return dets, kept, (time.perf_counter() - t0) / max(len(kept), 1)


def evaluate_samples(
    detect,
    samples: list[Sample],
    progress: bool = True,
    desc: str = "eval",
    bootstrap: int = 0,
    keep_detections: bool = False,
) -> dict:
    """AP per class, mAP, COCO AP; with ``bootstrap`` N, also how much mAP@0.5 moves over resampled test sets.
    Unreadable images are left out (``skipped``); ``keep_detections`` also returns the detections and the
    samples they belong to."""
    dets, kept, spi = run_detector(detect, samples, progress, desc)
    boxes, labels = [s.boxes for s in kept], [s.labels for s in kept]
    result = evaluate(dets, boxes, labels, CLASS_NAMES)
    result["seconds_per_image"] = spi
    if len(kept) < len(samples):
        result["skipped"] = sorted(set(map(str, (s.image for s in samples))) - set(str(s.image) for s in kept))
    if bootstrap:
        result["map50_bootstrap"] = bootstrap_map50(dets, boxes, labels, bootstrap)
    if keep_detections:
        result["detections"], result["samples"] = dets, kept
    return result


def bootstrap_map50(dets: list[ImageDetections], boxes: list, labels: list, n: int, seed: int = 0) -> dict:
    """mAP@0.5 over ``n`` test sets drawn from the images with replacement (the detections are kept).

    Says how far another test set of the same size could move the figure: a small split (Moxa3K's 200
    images) carries a spread of a few points that a single mAP hides."""
    rng = np.random.default_rng(seed)
    matches = voc_image_matches(dets, boxes, labels, CLASS_NAMES)  # matched once; each draw only re-sorts
    m = np.array([map50_from_matches(matches, rng.integers(0, len(dets), len(dets))) for _ in range(n)])
    p5, p95 = np.percentile(m, [5, 95])
    return {"resamples": n, "seed": seed, "std": float(m.std()), "p5": float(p5), "p95": float(p95)}


def paired_bootstrap_delta(
    dets_a: list[ImageDetections], dets_b: list[ImageDetections], boxes: list, labels: list, n: int, seed: int = 0
) -> dict:
    """How far mAP@0.5(b) - mAP@0.5(a) moves over test sets drawn with replacement, both models scored on the
    same draw (paired): the spread of a difference, which is what a "within 1 point" claim rests on."""
    rng = np.random.default_rng(seed)
    ma = voc_image_matches(dets_a, boxes, labels, CLASS_NAMES)
    mb = voc_image_matches(dets_b, boxes, labels, CLASS_NAMES)
    deltas = []
    for _ in range(n):
        idx = rng.integers(0, len(dets_a), len(dets_a))
        deltas.append(map50_from_matches(mb, idx) - map50_from_matches(ma, idx))
    d = np.array(deltas)
    p5, p95 = np.percentile(d, [5, 95])
    return {"resamples": n, "seed": seed, "std": float(d.std()), "p5": float(p5), "p95": float(p95)}


def summary(result: dict) -> dict:
    """The report without the PR curves and per-image objects (what JSON files and logs keep)."""
    return {k: v for k, v in result.items() if k not in ("pr_curves", "detections", "samples")}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    import torch

    return {
        "platform": platform.platform(),
        "processor": cpu_model(),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "accelerator": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def describe_machine(m: dict) -> str:
    """One line for a card or report: accelerator (if any), processor, CPUs, Python, torch."""
    head = f"{m['accelerator']} with " if m.get("accelerator") else ""
    return f"{head}{m['processor']} ({m['cpu_count']} CPUs), Python {m['python']}, torch {m['torch']}"


def write_report(result: dict, json_path: str | Path, meta: dict, plot: bool = True) -> Path | None:
    json_path = Path(json_path)
    write_text(json_path, json.dumps({**meta, **summary(result), "machine": machine()}, indent=2) + "\n")
    if plot and result.get("pr_curves"):
        png = json_path.with_suffix(".png")
        with atomic_path(png) as tmp:
            plot_pr(result, tmp, title=meta.get("title", ""))
        return png
    return None


def plot_pr(result: dict, path: str | Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    for name, curve in result["pr_curves"].items():
        ax.plot(curve["recall"], curve["precision"], label=f"{name} AP50={result['ap50'][name]:.3f}")
    ax.set(
        xlabel="recall",
        ylabel="precision",
        xlim=(0, 1),
        ylim=(0, 1.02),
        title=title or f"mAP@0.5 = {result['map50']:.3f}",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
