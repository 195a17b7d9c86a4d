"""``slfm bench sizes``: one checkpoint at several input sizes on each source's validation split, to choose the
input size a model ships at without looking at a test split.

Per size and source: VOC mAP@0.5 (the paper's protocol), COCO AP@[.5:.95] by face size (small / medium / large,
so the small-face weakness shows), and the mean seconds per image on this machine. The chosen size is the one
with the highest mean mAP@0.5 over the sources (the smaller size on a tie: it is the faster one).
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import click

from slfm.errors import SlfmError
from slfm.layouts import HOLDOUT, KINDS, layout
from slfm.options import OUT_DIR, repeated_option, threads_option
from slfm.sources import Source, named, zip_sources

DEFAULT_SIZES = (416, 480, 512, 576, 640)


@dataclass
class SizeSweepConfig:
    checkpoint: str | None  # a path or a bundled name (an artifact's input size is fixed by its contract)
    sources: list[Source]
    sizes: Sequence[int] = DEFAULT_SIZES
    limit: int | None = None  # first N images of each split (None: all)
    threads: int = 1
    out: Path = field(default_factory=lambda: Path("reports/sizes"))


def validation_split(src: Source) -> str:
    """The split a size is chosen on: the source's own validation split (the committed holdout by default);
    a test split is refused."""
    split = src.split or src.splits()[1] or HOLDOUT
    if layout(src.dataset).test_split == split:
        raise SlfmError(
            f"--split {split}: that is {src.dataset}'s test split; choose the input size on a split carved from "
            f"training data (the default: {HOLDOUT})"
        )
    return split


def run_sizes(cfg: SizeSweepConfig) -> dict:
    """{"rows": [{source, split, size, images, map50, ap50, map50_95, ap50_95_by_size, ms_per_image}], "mean_map50":
    {size: mean over sources}, "best_size": size, ...}"""
    from slfm.evaluate import evaluate_samples, machine
    from slfm.postprocess import EVAL
    from slfm.runnable import RunOptions, is_artifact, load_runnable
    from slfm.voc import load_dataset

    if cfg.checkpoint is not None and is_artifact(cfg.checkpoint):
        raise SlfmError(f"{cfg.checkpoint}: an artifact runs at the one input size of its contract; give a checkpoint")
    if not cfg.sources:
        raise SlfmError("no data: give --data DIR --dataset KIND (repeatable)")
    sizes = sorted(set(int(s) for s in cfg.sizes))
    if not sizes:
        raise SlfmError("no sizes: give --sizes N (repeatable), e.g. --sizes 480 --sizes 640")
    loaded = load_runnable(cfg.checkpoint)
    rows = []
    for src in named(cfg.sources):
        split = validation_split(src)
        samples = load_dataset(src.data, src.dataset, split, src.class_map, cfg.limit)
        for size in sizes:
            opts = RunOptions(size=size, threads=cfg.threads)
            r = evaluate_samples(loaded.predictor(opts, EVAL), samples, desc=f"{src.name} {split} @{size}")
            rows.append(
                {
                    "source": src.name,
                    "dataset": src.dataset,
                    "data": str(src.data),
                    "split": split,
                    "size": size,
                    "images": r["images"],
                    "map50": r["map50"],
                    "ap50": r["ap50"],
                    "map50_95": r["map50_95"],
                    "ap50_95_by_size": {b: v["ap50_95"] for b, v in r["ap50_95_by_size"].items()},
                    "ms_per_image": round(1000 * r["seconds_per_image"], 2),
                }
            )
    mean = {s: sum(r["map50"] for r in rows if r["size"] == s) / len(cfg.sources) for s in sizes}
    best = max(sizes, key=lambda s: (round(mean[s], 6), -s))
    return {
        "command": "slfm bench sizes " + shlex.join(sys.argv[3:]) if len(sys.argv) > 2 else "",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "checkpoint": str(loaded.path),
        "trained_at": loaded.config.image_size,
        "sizes": sizes,
        "rows": rows,
        "mean_map50": {str(s): v for s, v in mean.items()},
        "best_size": best,
    }


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def markdown(report: dict) -> str:
    m = report["machine"]
    sources = list(dict.fromkeys(r["source"] for r in report["rows"]))
    by = {(r["source"], r["size"]): r for r in report["rows"]}
    splits = ", ".join(
        f"{s} {by[(s, report['sizes'][0])]['split']} ({by[(s, report['sizes'][0])]['images']})" for s in sources
    )
    lines = [
        f"# Input size sweep: {Path(report['checkpoint']).name} (trained at {report['trained_at']})",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}; machine: {m['processor']} ({m['cpu_count']} CPUs), Python {m['python']}, "
        f"torch {m['torch']}, 1-min load {m.get('load_average_1min', 'n/a')}  ",
        f"Validation splits (images): {splits}. Letterbox at each size, VOC mAP@0.5 (per-class NMS 0.3 above "
        "0.02); COCO AP@[.5:.95] by face area in the original image (small < 32², medium < 96², large).",
        "",
        "| size | "
        + " | ".join(f"{s} mAP@0.5" for s in sources)
        + " | mean | "
        + " | ".join(f"{s} AP S / M / L" for s in sources)
        + " | ms/image |",
        "| ---: | "
        + " | ".join("---:" for _ in sources)
        + " | ---: | "
        + " | ".join("---" for _ in sources)
        + " | ---: |",
    ]
    for size in report["sizes"]:
        cells = [_fmt(by[(s, size)]["map50"]) for s in sources]
        ap = [
            " / ".join(_fmt(by[(s, size)]["ap50_95_by_size"][b]) for b in ("small", "medium", "large")) for s in sources
        ]
        ms = sum(by[(s, size)]["ms_per_image"] for s in sources) / len(sources)
        mean = report["mean_map50"][str(size)]
        mark = "**" if size == report["best_size"] else ""
        lines.append(
            f"| {mark}{size}{mark} | "
            + " | ".join(cells)
            + f" | {mark}{mean:.3f}{mark} | "
            + " | ".join(ap)
            + f" | {ms:.0f} |"
        )
    lines += ["", f"Chosen size: **{report['best_size']}** (highest mean mAP@0.5; the smaller on a tie)."]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from slfm.outputs import atomic_path

    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    sizes = report["sizes"]
    for src in dict.fromkeys(r["source"] for r in report["rows"]):
        ys = [next(r["map50"] for r in report["rows"] if r["source"] == src and r["size"] == s) for s in sizes]
        ax.plot(sizes, ys, marker="o", label=src)
    ax.plot(sizes, [report["mean_map50"][str(s)] for s in sizes], "k--", marker="s", label="mean")
    ax.axvline(report["best_size"], color="gray", alpha=0.4)
    ax.set(
        xlabel="input size (letterbox)",
        ylabel="mAP@0.5 (validation split)",
        xticks=sizes,
        title=f"{Path(report['checkpoint']).name}: input size sweep",
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _size_refused(size: int) -> str | None:
    """Why the network cannot take ``size`` (its strides need a multiple of 32), or None."""
    return None if size >= 64 and size % 32 == 0 else "each size must be a multiple of 32, at least 64"


@click.command("sizes")
@click.argument("checkpoint", required=False)
@click.option(
    "--data",
    "data",
    multiple=True,
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="dataset root (repeatable, paired with --dataset by position)",
)
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    default=("moxa3k",),
    show_default=True,
    type=click.Choice(KINDS),
    help="layout of each --data",
)
@click.option(
    "--split",
    "splits",
    multiple=True,
    help="validation split of each --data (default: its committed holdout; test splits are refused)",
)
@repeated_option("--sizes", None, DEFAULT_SIZES, "input size in pixels", convert=int, check=_size_refused)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="first N images of each split (default: all)")
@click.option("--out", type=OUT_DIR, default=Path("reports/sizes"), show_default=True, help="report stem")
@threads_option
def sizes(checkpoint, data, datasets, splits, sizes, limit, out, threads):
    """mAP@0.5 and COCO AP by face size of CHECKPOINT (a path or bundled name) at each of --sizes on each --data's
    validation split -> OUT.json / OUT.md / OUT.png, and the size to ship at."""
    from slfm.bench import write

    cfg = SizeSweepConfig(checkpoint, zip_sources(data, datasets, splits), sizes, limit, threads or 1, Path(out))
    report = run_sizes(cfg)
    write(report, cfg.out, markdown(report))
    plot(report, cfg.out.with_suffix(".png"))
    click.echo(markdown(report))
