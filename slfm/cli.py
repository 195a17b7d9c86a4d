"""The ``slfm`` command line: one click group driving every step."""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import click

from slfm.errors import SlfmError
from slfm.images import DataWarning
from slfm.layouts import eval_splits_help
from slfm.options import (
    FRACTION,
    IMAGE_SIZE,
    IN_FILE,
    OUT_DIR,
    OUT_FILE,
    POSITIVE,
    POSITIVE_FLOAT,
    LazyGroup,
    class_map_of,
    class_map_option,
    dataset_options,
    limit_option,
    repeated_data_option,
    repeated_dataset_options,
    threads_option,
)
from slfm.postprocess import DEMO

# Commands that live in the feature packages, imported only when used (keeps `slfm --help` fast and lets
# the core install without the converter toolchains).
LAZY_COMMANDS = {
    "qat": "slfm.quantize.cli:qat",
    "ptq": "slfm.quantize.cli:ptq",
    "convert": "slfm.convert.cli:convert",
    "parity": "slfm.device_tests.cli:parity",
    "deploy": "slfm.deploy_cli:deploy",
    "pipeline": "slfm.pipeline:pipeline",
    "release": "slfm.release:release",
}
LAZY_BENCH = {
    "artifacts": "slfm.device_tests.bench:artifacts",
    "peer": "slfm.peer:peer",
    "ablation": "slfm.ablation:ablation",
    "layers": "slfm.device_tests.layers:layers",
    "latency": "slfm.device_tests.latency:latency",
    "nofaces": "slfm.nofaces:nofaces",
    "sizes": "slfm.sizes:sizes",
}


def _show_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, DataWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        click.echo(warnings.formatwarning(message, category, filename, lineno, line), err=True, nl=False)


class Group(LazyGroup):
    """The root group: turns :class:`SlfmError` into one clear line on stderr and exit status 1."""

    lazy = LAZY_COMMANDS

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SlfmError as e:
            click.echo(f"Error: {e}", err=True)
            ctx.exit(1)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="slfm")
def main() -> None:
    """slfm: train, quantize, convert and verify SL-FMDet face-mask detectors."""
    warnings.showwarning = _show_warning


def _eval_config_options(f):
    from slfm.config_cli import config_options
    from slfm.eval_job import EvalJob

    return config_options(EvalJob)(f)


def _train_config_options(f):
    from slfm.config_cli import config_options
    from slfm.train import TrainConfig

    return config_options(TrainConfig)(f)


@main.command()
@repeated_data_option("to train on several sources at once (--source-weight, --teacher: also one per --data)")
@repeated_dataset_options(
    "fit (train without the committed holdout list) where the layout has one, else train", "kind", "split"
)
@click.option(
    "--source-weight",
    type=POSITIVE_FLOAT,
    multiple=True,
    help="relative sampling weight of each image of a source, one per --data  [default: 1]",
)
@click.option(
    "--teacher",
    multiple=True,
    help="a checkpoint (path, or a bundled name: faces / aizoo / moxa3k) whose outputs the model also learns on a "
    "source's images, one per --data ('none': labels only; weight: --distill-weight)  [default: none]",
)
@class_map_option
@click.option(
    "--val-split",
    default=None,
    help="validation split of every source ('' for none)  [default: holdout where the layout has a committed "
    "list, else test / val]",
)
@click.option("--out", type=OUT_DIR, default=None, help="[default: runs/train; on --resume: its folder]")
@click.option("--image-size", type=IMAGE_SIZE, default=320, show_default=True, help="training input (paper: 640)")
@click.option("--epochs", type=POSITIVE, default=None, help="[default: 100; on --resume: the run's own]")
@click.option("--no-attention", is_flag=True, help="plain SSH context modules (ablation)")
@click.option("--no-heatmap", is_flag=True, help="train without the auxiliary heatmap task (ablation)")
@_train_config_options  # the run's settings: slfm.train.TrainConfig's fields, with their defaults and help
@threads_option
@limit_option("training images of each source")
@click.option(
    "--resume",
    type=IN_FILE,
    default=None,
    help="continue from a last.pt (its own configs are used; --epochs may extend the run)",
)
def train(
    data,
    kind,
    split,
    source_weight,
    teacher,
    class_map,
    val_split,
    out,
    image_size,
    epochs,
    no_attention,
    no_heatmap,
    threads,
    limit,
    resume,
    **settings,
):
    """Train SL-FMDet on one or several VOC datasets (runs under torchrun for several processes)."""
    from slfm.config import ModelConfig
    from slfm.sources import zip_sources
    from slfm.train import TrainConfig, TrainJob, train_job

    if not data and resume is None:
        raise click.UsageError("Missing option '--data' (needed unless --resume continues a run)")
    out = out or (Path(resume).parent if resume else Path("runs/train"))
    sources = zip_sources(data, kind, split, source_weight, class_map_of(class_map), val_split, teacher) if data else []
    if teacher and resume is not None:
        raise click.UsageError("--teacher is part of the run's settings: a resumed run keeps its own")
    first = sources[0] if sources else None
    cfg = TrainConfig(
        data=first.data if first else "",  # absolute: a resume works from any folder
        dataset=first.dataset if first else "moxa3k",
        split=first.split if first else None,
        val_split=val_split,
        class_map=first.class_map if first else None,
        sources=[s.to_dict() for s in sources] if len(sources) > 1 or any(s.teacher for s in sources) else [],
        out=str(out),
        epochs=epochs if epochs is not None else (0 if resume else 100),
        threads=threads,
        limit=limit,
        **settings,
    )
    mcfg = ModelConfig(image_size=image_size, attention=not no_attention, heatmap=not no_heatmap)
    best = train_job(TrainJob(cfg, mcfg, Path(resume) if resume else None))
    click.echo(f"best checkpoint: {best}")


@main.command()
@dataset_options(split_default="train")
@click.option("--out", type=OUT_DIR, required=True, help="new folder (voc layout)")
@click.option("--max-side", type=IMAGE_SIZE, default=800, show_default=True, help="longest image side kept")
@click.option(
    "--quality", type=click.IntRange(1, 100), default=85, show_default=True, help="JPEG / WebP quality (1-100)"
)
@click.option("--format", "fmt", type=click.Choice(["jpg", "webp"]), default="jpg", show_default=True)
def compact(data, kind, split, class_map, out, max_side, quality, fmt):
    """Copy a split as a small voc dataset (images shrunk, boxes scaled), e.g. to upload to a GPU machine."""
    from slfm.compact import compact as run

    r = run(data, kind, split or "train", out, max_side, quality, fmt, class_map_of(class_map))
    click.echo(
        f"{r.images} images ({r.resized} resized): {r.bytes_in / 1e6:.1f} MB -> {r.bytes_out / 1e6:.1f} MB in {out}; "
        f"train on it with --data {out} --dataset voc --split {split or 'train'}"
    )


def _mode_options(f):
    f = click.option(
        "--size",
        type=IMAGE_SIZE,
        default=None,
        help="letterbox: input side (default: the checkpoint's); reference: short side (840)",
    )(f)
    f = click.option(
        "--mode",
        type=click.Choice(["letterbox", "reference"]),
        default="letterbox",
        show_default=True,
        help="fixed-size letterbox as on a device, or the reference's variable size (short side 840)",
    )(f)
    return f


def _runtime_option(f):
    from slfm.formats import RUNTIME_CHOICES

    return click.option(
        "--runtime",
        type=click.Choice(RUNTIME_CHOICES),
        default="auto",
        show_default=True,
        help="for an artifact: the runtime to run it in (.tflite: litert, or tflite-runtime 2.14 as on a Pi; "
        "auto: the format's default)",
    )(f)


@main.command("eval")
@click.argument("model", metavar="[CHECKPOINT|ARTIFACT]", required=False)
@dataset_options(split_default=f"the test split: {eval_splits_help()}")
@_mode_options
@_runtime_option
@click.option(
    "--json",
    "json_out",
    type=OUT_FILE,
    default=None,
    help="write the report here (and a PR plot beside it, .png)",
)
@limit_option("images of the split")
@_eval_config_options  # slfm.eval_job.EvalJob's postprocessing and bootstrap fields
@threads_option
def eval_cmd(model, data, kind, split, class_map, mode, size, runtime, json_out, limit, threads, **settings):
    """VOC AP@0.5 per class, mAP@0.5 and COCO AP@[.5:.95] of a checkpoint or an artifact on a dataset split.

    CHECKPOINT: a path, or 'faces' / 'aizoo' / 'moxa3k' for the bundled weights (default: those of --dataset).
    ARTIFACT: a .tflite or .pte (.mlpackage on macOS) from slfm convert: its input size and pre/post-processing
    come from its contract (sidecar, or the metadata inside it), so this scores the file you ship.
    """
    from slfm.eval_job import EvalJob, eval_job

    job = EvalJob(
        model=model,
        data=Path(data),
        kind=kind,
        split=split,
        class_map=class_map_of(class_map),
        mode=mode,
        size=size,
        runtime=runtime,
        json_out=Path(json_out) if json_out else None,
        limit=limit,
        threads=threads,
        **settings,
    )
    s = eval_job(job, click.echo)
    keys = ("images", "ap50", "map50", "map50_95", "map50_bootstrap")
    shown = {k: s[k] for k in keys if k in s}
    shown["ap50_95_by_face_size"] = {b: v["ap50_95"] for b, v in s["ap50_95_by_size"].items()}
    click.echo(json.dumps(shown, indent=1))


@main.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, required=True, metavar="[CHECKPOINT|ARTIFACT] SOURCE")
@click.option("--out", type=OUT_DIR, default=Path("runs/detect"), show_default=True)
@_mode_options
@_runtime_option
@click.option(
    "--score-threshold",
    "score",
    type=FRACTION,
    default=None,
    help=f"keep scores above this  [default: the artifact's contract, else {DEMO.score_threshold}]",
)
@click.option(
    "--nms-iou",
    "nms",
    type=FRACTION,
    default=None,
    help=f"NMS IoU within each class  [default: the artifact's contract, else {DEMO.nms_iou}]",
)
@click.option("--score", "score_alias", type=FRACTION, default=None, hidden=True)  # the former spellings
@click.option("--nms", "nms_alias", type=FRACTION, default=None, hidden=True)
@threads_option
def detect(paths, out, mode, size, runtime, score, nms, score_alias, nms_alias, threads):
    """Detect faces with and without a mask ("mask" / "no mask") in SOURCE: an image, a folder of images, or a
    video.

    CHECKPOINT (optional): a path, or a bundled name; without it the bundled 'faces' weights are used.
    ARTIFACT: a .tflite or .pte (.mlpackage on macOS) from slfm convert, run with its own contract.

    \b
    Which bundled weights (numbers: slfm info NAME, slfm/models/MODEL_CARD.md):
      faces   faces_640.pt, the default: one detector trained on both data sets
              (AIZOO + Moxa3K) and on face-free images; photos of any kind;
              AIZOO val mAP@0.5 0.91, Moxa3K test 0.69 at 640
      aizoo   aizoo_480.pt: AIZOO's everyday photos (WIDER Face + MAFA) only;
              AIZOO val mAP@0.5 0.91 at 480, Moxa3K test 0.38
      moxa3k  moxa3k_512.pt: crowded scenes with many small faces (Moxa3K) only;
              Moxa3K test mAP@0.5 0.68 at 512
    """
    from slfm.detect import detect_path
    from slfm.draw import DISPLAY
    from slfm.runnable import RunOptions, load_runnable

    if len(paths) > 2:
        raise click.UsageError(f"expected [CHECKPOINT|ARTIFACT] SOURCE, got {len(paths)} arguments")
    model, source = (None, paths[0]) if len(paths) == 1 else paths
    score = score_alias if score is None else score
    nms = nms_alias if nms is None else nms
    opts = RunOptions(mode=mode, size=size, runtime=runtime, threads=threads)
    loaded = load_runnable(model, opts)
    report = detect_path(loaded.predictor(opts, loaded.demo_post(score, nms)), Path(source), out)
    from collections import Counter

    shown = Counter(
        d["display"]
        for v in report.values()
        for d in [*v.get("detections", []), *(d for f in v.get("frames", []) for d in f["detections"])]
    )
    counts = ", ".join(f"{shown[k]} {k}" for k in DISPLAY.values())
    click.echo(
        f"{shown.total()} detections ({counts}) in {len(report)} input(s); annotated outputs and detections.json "
        f"in {out}"
    )
    failed = [p for p, v in report.items() if "error" in v]
    if failed:
        raise SlfmError(
            f"{len(failed)} of {len(report)} input(s) failed (each named above; kept in detections.json): "
            + ", ".join(Path(p).name for p in failed[:5])
            + (" ..." if len(failed) > 5 else "")
        )


@main.command()
@click.argument("checkpoint", required=False)
@click.option(
    "--image-size",
    type=IMAGE_SIZE,
    default=None,
    help="input side  [default: the checkpoint's own; 640 for a fresh model]",
)
@click.option("--no-attention", is_flag=True, help="fresh model: plain SSH context modules")
@click.option("--no-heatmap", is_flag=True, help="fresh model: no heatmap head")
def info(checkpoint, image_size, no_attention, no_heatmap):
    """Parameters, MACs and anchors of SL-FMDet at its input size, and the card's mAP for bundled weights.

    CHECKPOINT: a path, or 'faces' / 'aizoo' / 'moxa3k' for the bundled weights; without it, a fresh model.
    """
    from slfm.anchors import anchors
    from slfm.config import ModelConfig
    from slfm.model import SLFMDet
    from slfm.profile import count_macs, count_parameters

    rows: dict = {}
    if checkpoint:
        from slfm.checkpoint import load_model, resolve_checkpoint
        from slfm.release import card_metrics, card_of

        path = resolve_checkpoint(checkpoint)
        model, ckpt = load_model(path)
        rows["checkpoint"] = str(path)
        card = card_of(path)
        metrics = card_metrics(card) if card else [m for m in [ckpt.get("metrics")] if m and m.get("map50")]
    else:
        model = SLFMDet(ModelConfig(image_size=image_size or 640, attention=not no_attention, heatmap=not no_heatmap))
        ckpt, card, metrics = {}, None, []
    c = model.config
    size = image_size or c.image_size
    rows |= {
        "parameters": count_parameters(model),
        "parameters_without_heatmap_head": count_parameters(model, include_heatmap=False),
        "input": size,
        "gmacs": round(count_macs(model, size) / 1e9, 4),
        "anchors": int(anchors(size, size, c.min_sizes, c.steps).shape[0]),
        "attention": c.attention,
        "heatmap": c.heatmap,
    }
    if ckpt.get("train_image_size") and ckpt["train_image_size"] != size:
        rows["trained_at"] = ckpt["train_image_size"]
    if metrics:
        rows["metrics"] = metrics
        if card:
            rows["metrics_source"] = f"slfm/models/{card['file'].removesuffix('.pt')}.json (MODEL_CARD.md)"
    click.echo(json.dumps(rows, indent=1))


class BenchGroup(LazyGroup):
    lazy = LAZY_BENCH


@main.group(cls=BenchGroup)
def bench():
    """Benchmarks that write JSON + Markdown reports naming the machine."""


@bench.command("speed")
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=Path("../shared/data/moxa3k"),
    show_default=True,
    help="Moxa3K root (training throughput uses real images)",
)
@click.option(
    "--out",
    type=OUT_FILE,
    default=Path("reports/speed_pytorch"),
    show_default=True,
    help="report path without suffix (.json and .md are written)",
)
@click.option("--iters", type=POSITIVE, default=6, show_default=True, help="training steps per setting")
@click.option("--runs", type=POSITIVE, default=30, show_default=True, help="timed inference runs per setting")
def bench_speed(data, out, iters, runs):
    """Training images/s at 320 and 640 and fp32 inference latency at 320/640 with 1 and 2 threads."""
    import torch

    from slfm import bench as b
    from slfm.evaluate import machine
    from slfm.voc import load_dataset

    samples = load_dataset(data, "moxa3k", "train", limit=256)
    threads = torch.get_num_threads()
    training = [
        b.training_throughput(samples, 320, 16, iters, threads, 2),
        b.training_throughput(samples, 640, 8, iters, threads, 2),
    ]
    inference = [b.inference_latency(s, t, runs) for s in (320, 640) for t in (1, 2)]
    report = {
        "command": "slfm bench speed " + " ".join(sys.argv[3:]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "training": training,
        "inference": inference,
    }
    b.write(report, out, b.speed_markdown(report))
    click.echo(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
