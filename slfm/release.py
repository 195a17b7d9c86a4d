"""``slfm release``: ship a trained checkpoint inside the package with its model card.

Copies the checkpoint without optimizer state to ``slfm/models/<name>_<size>.pt`` (under 2 MB), where ``<size>``
is the default inference input (``--image-size``; the training size unless given), evaluates it on each given test
set (one per source for a model trained on several: repeated ``--data DIR --dataset KIND``) in the device mode
(letterbox at that size, and at each ``--sweep`` size) and the reference mode (short side 840), writes
``slfm/models/<name>_<size>.json`` (the card's data, with the commands that produced each number) and regenerates
``slfm/models/MODEL_CARD.md`` from every such JSON.
"""

from __future__ import annotations

import csv
import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import click

from slfm.checkpoint import BUNDLED, MODELS_DIR, export_for_release, file_sha256, load_model, read_checkpoint
from slfm.errors import SlfmError
from slfm.inputs import DataSpec
from slfm.options import IMAGE_SIZE, MIN_IMAGE_SIZE, limit_option, repeated_dataset_options, repeated_option
from slfm.postprocess import DEMO, EVAL

MAX_BYTES = 2_000_000


def training_summary(checkpoint: Path) -> dict:
    """Epochs, wall time and throughput from the ``log.csv`` beside a training checkpoint (when present)."""
    log = Path(checkpoint).parent / "log.csv"
    if not log.is_file():
        return {}
    with open(log) as f:
        rows = list(csv.DictReader(f))
    seconds = sum(float(r["train_seconds"] or 0) for r in rows)
    return {
        "epochs_logged": len(rows),
        "train_seconds": round(seconds, 1),
        "val_map50_per_epoch": [float(r["map50"]) if r["map50"] else None for r in rows],
    }


def _val_split(train_config: dict) -> str:
    """The validation split a run used: as given, else what slfm.layouts.default_splits chose for its split."""
    from slfm.layouts import default_splits

    v = train_config.get("val_split")
    return default_splits(train_config["dataset"], train_config.get("split"), None)[1] if v is None else (v or "none")


def _data_line(t: dict) -> str:
    """``aizoo `fit``` or, for several sources, ``moxa3k `fit` + aizoo `fit```."""
    from slfm.layouts import default_splits

    sources = t.get("sources") or [{"dataset": t["dataset"], "split": t.get("split")}]

    def one(s: dict) -> str:
        extra = [f"weight {s['weight']:g}"] if s.get("weight", 1.0) != 1.0 else []
        extra += [f"teacher `{Path(s['teacher']).name}`"] if s.get("teacher") else []
        split = s.get("split") or default_splits(s["dataset"])[0]
        return f"{s['dataset']} `{split}`" + (f" ({', '.join(extra)})" if extra else "")

    return " + ".join(one(s) for s in sources)


# Commands on the card are shown as a reader of the repository runs them: datasets under ../shared/data (where
# the README puts them), outputs under runs/, never the absolute paths of the machine that made them.
DATA_HOME = "../shared/data"


def portable_command(command: str) -> str:
    """``command`` with an absolute ``--data`` folder shown under :data:`DATA_HOME` and an absolute ``--out``
    (or released checkpoint) folder under ``runs/``."""
    words = shlex.split(command)
    for i, w in enumerate(words):
        prev = words[i - 1] if i else ""
        if not w.startswith("/"):
            continue
        if prev == "--data":
            words[i] = f"{DATA_HOME}/{Path(w).name}"
        elif prev == "--out" or (i == 2 and words[:2] == ["slfm", "release"]):
            parts = Path(w).parts
            words[i] = str(Path("runs", *parts[parts.index("runs") + 1 :])) if "runs" in parts else Path(w).name
    return shlex.join(words)


def card_of(checkpoint: str | Path, models_dir: Path = MODELS_DIR) -> dict | None:
    """The bundled card (``models_dir/*.json``, written by ``slfm release``) of this very file (by sha256)."""
    sha = file_sha256(checkpoint)
    for p in sorted(Path(models_dir).glob("*.json")):
        card = json.loads(p.read_text())
        if card.get("sha256") == sha:
            return card
    return None


def card_metrics(card: dict) -> list[dict]:
    """A card's evaluation rows, short: test set, mode and size, images, mAP@0.5, AP50 per class."""
    return [
        {
            "test": f"{r['dataset']} {r['split']}",
            "mode": f"{r['mode']} {r['input_size']}"
            + (f", face/mask suppression {r['cross_class_iou']:g}" if r.get("cross_class_iou") else ""),
            "images": r["images"],
            "map50": round(r["map50"], 4),
            "ap50": {k: round(v, 4) for k, v in r["ap50"].items()},
        }
        for r in card.get("metrics", [])
    ]


def card_markdown(cards: list[dict]) -> str:
    lines = [
        "# Bundled SL-FMDet weights",
        "",
        "Made by `slfm release`; every number below comes from the command shown beside it. "
        "Regenerate with the same commands.",
        "",
        f"mAP protocol, as the paper's reference test: scores above {EVAL.score_threshold}, NMS at IoU "
        f"{EVAL.nms_iou} within each class, VOC all-point AP at IoU 0.5. The last row of each table adds the demo's "
        "face/mask suppression (one label per person), which the apps apply.",
        "",
    ]
    for c in cards:
        t = c["train_config"]
        tr = c.get("training", {})
        m = c["machine"]
        lines += [
            f"## `{c['file']}` ({c['size_bytes'] / 1e6:.2f} MB)",
            "",
            f"- Data: {_data_line(t)} split"
            + (f" (first {t['limit']} images)" if t.get("limit") else "")
            + (
                "; last epoch shipped (no validation during training)"
                if c["epoch"] == t["epochs"] and _val_split(t) == "none"
                else f"; last epoch shipped (validated on `{_val_split(t)}` during training)"
                if c["epoch"] == t["epochs"]
                else f"; best epoch chosen on `{_val_split(t)}`"
                + (" (the test split: Moxa3K has no separate validation split)" if _val_split(t) == "test" else "")
            ),
            f"- Input {_input_line(c)}; attention "
            f"{c['model_config']['attention']}, heatmap task {c['model_config']['heatmap']}",
            f"- Training: {c['epoch']} epochs of {t['epochs']} planned, init `{t['init']}`, {t['optimizer']} "
            f"lr {t['lr']} ({t['schedule']}), batch {t['batch_size']}, augmentation {t['augment']}, "
            f"class-balanced loss {t.get('class_balance', False)}"
            + (
                f", {t['full_image_prob']:.0%} of samples letterboxed whole instead of cropped"
                if t.get("full_image_prob")
                else ""
            )
            + (f", {t['negative_prob']:.0%} face-free samples" if t.get("negative_prob") else "")
            + (
                f", distillation from each source's teacher x{t.get('distill_weight', 1.0):g} beside the labels"
                if any(s.get("teacher") for s in t.get("sources") or [])
                else ""
            ),
            f"- Training time: {tr.get('train_seconds', 'n/a')} s of training steps on "
            + (
                c["trained_on"]
                if c.get("trained_on")
                # cards made before checkpoints recorded their machine: trained where they were released
                else f"{m['processor']} ({m['cpu_count']} CPUs, shared with other work), Python {m['python']}, "
                f"torch {m['torch']}"
            ),
            f"- Source checkpoint sha256 `{c['source_sha256'][:16]}...`",
            *([f"- Note: {c['note']}"] if c.get("note") else []),
            "",
            "| test set | mode | images | AP50 face | AP50 mask | mAP@0.5 | mAP@[.5:.95] | command |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in c["metrics"]:
            cross = f", demo's face/mask suppression {r['cross_class_iou']:g}" if r.get("cross_class_iou") else ""
            lines.append(
                f"| {r['dataset']} {r['split']} | {r['mode']} {r['input_size']}{cross} | {r['images']} | "
                f"{r['ap50'].get('face', 0):.3f} | {r['ap50'].get('mask', 0):.3f} | {r['map50']:.3f} | "
                f"{r['map50_95']:.3f} | `{portable_command(r['command'])}` |"
            )
        lines.append("")
    return "\n".join(lines)


def _input_line(card: dict) -> str:
    size = card["model_config"]["image_size"]
    trained = card.get("train_image_size", size)
    line = f"{size}x{size} letterbox"
    if trained != size:
        line += f" (trained at {trained}x{trained}; the network is fully convolutional)"
    return line


ABLATION_REPORT = Path(__file__).resolve().parents[1] / "reports" / "ablation.json"


def ablation_markdown(report: dict) -> str:
    lines = [
        "## Ablations (Moxa3K, one budget)",
        "",
        f"Command: `{report['command']}`  ",
        f"Budget: {report['budget']}",
        "",
        "| attention (RCAM) | heatmap task | AP50 face | AP50 mask | mAP@0.5 | mAP@[.5:.95] |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["runs"]:
        lines.append(
            f"| {r['attention']} | {r['heatmap']} | {r['ap50'].get('face', 0):.3f} | "
            f"{r['ap50'].get('mask', 0):.3f} | {r['map50']:.3f} | {r['map50_95']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def qat_markdown(
    models_dir: Path = MODELS_DIR, reports: Path = MODELS_DIR.parents[1] / "reports", qat_files: dict | None = None
) -> str:
    """The bundled int8 QAT checkpoints (``qat_files``: name -> file, default ``BUNDLED_QAT``): how each was made,
    its epoch choice on the holdout split, and the per-artifact mAP of ``slfm bench artifacts``
    (``reports/artifacts_<name>.json``) where that report exists."""
    from slfm.checkpoint import BUNDLED, BUNDLED_QAT, read_data

    lines = []
    for name, qfile in (BUNDLED_QAT if qat_files is None else qat_files).items():
        path = models_dir / qfile
        if not path.is_file():
            continue
        q = read_data(path)
        c = q.get("qat_config", {})
        d = q.get("data", {})
        m = q.get("train_machine", {})
        parts = d.get("sources") or [d]  # one source, or each of several (slfm qat's repeated --data)
        trained_on = " + ".join(f"{p.get('dataset')} `{p.get('train_split')}`" for p in parts)
        val_on = " + ".join(
            f"`{p.get('val_split')}` of {p.get('dataset')} ({p.get('val_images')} images)" for p in parts
        )
        negatives = f" with {c['negative_prob']:.0%} face-free images" if c.get("negative_prob") else ""
        val_on += " carved from train" + ("; the mean of the sources picks" if len(parts) > 1 else "")
        lines += [
            f"## `{qfile}` ({path.stat().st_size / 1e6:.2f} MB): int8 QAT of `{BUNDLED[name]}`",
            "",
            f"- Made by: `{portable_command(q.get('command', 'slfm qat'))}`",
            f"- Recipe: {'backbone channel ranges equalized (same fp32 function), then ' if c.get('equalize') else ''}"
            f"{c.get('epochs')} epoch(s) on {q.get('train_images')} images of {trained_on}"
            f"{negatives}, Adam lr {c.get('lr')} cosine, batch {c.get('batch_size')}; loss: "
            f"distillation from the fp32 weights x{c.get('distill_weight')}, labels x{c.get('label_weight')}; "
            f"activation ranges `{c.get('act_ranges')}` from {c.get('calib')} letterboxed images; BatchNorm "
            f"{'frozen' if c.get('freeze_bn') else 'training'}",
            f"- Epoch {q.get('best_epoch')} shipped: the best int8 mAP@0.5 (converted graph) on {val_on} (epoch 0 is "
            "the PTQ-calibrated start)",
            f"- Trained on {m.get('processor', '?')} ({m.get('cpu_count', '?')} CPUs), torch {m.get('torch', '?')}",
            "",
            "| epoch | distillation loss | holdout int8 mAP@0.5 |",
            "| --- | --- | --- |",
        ]
        for h in q.get("history", []):
            loss = f"{h['loss']:.4f}" if h.get("loss") is not None else ""
            val = f"{h['val_map50']:.4f}" if h.get("val_map50") is not None else ""
            if h.get("val_by_source"):
                val += f" ({h['val_by_source'].replace('=', ' ')})"
            lines.append(f"| {h['epoch']} | {loss} | {val} |")
        # its test set's report, and one per further test set of a model of several sources (artifacts_<name>_<set>)
        for report in [reports / f"artifacts_{name}.json", *sorted(reports.glob(f"artifacts_{name}_*.json"))]:
            if not report.is_file():
                continue
            r = json.loads(report.read_text())
            lines += [
                "",
                f"On {r['options']['kind']} `{r['options']['split']}` ({r['eval_images']} images), "
                f"`{portable_command(r['command'])}` ([report](../../reports/{report.stem}.md)):",
                "",
                "| artifact | mAP@0.5 | vs PyTorch fp32 (± paired bootstrap std) |",
                "| --- | --- | --- |",
            ]
            ref = next(x["map50"] for x in r["rows"] if x["format"] == "pytorch")
            for x in r["rows"]:
                if x.get("map50") is None:
                    continue
                spread = x.get("delta_map50_bootstrap", {}).get("std")
                delta = "" if x["format"] == "pytorch" else f"{100 * (x['map50'] - ref):+.2f}"
                if spread is not None:
                    delta += f" (± {100 * spread:.2f})"
                lines.append(f"| {x['model']} | {x['map50']:.4f} | {delta} |")
        lines.append("")
    return "\n".join(lines)


def write_card(models_dir: Path = MODELS_DIR, ablation: Path = ABLATION_REPORT) -> Path:
    cards = [json.loads(p.read_text()) for p in sorted(models_dir.glob("*.json"))]
    text = card_markdown(cards)
    qat = qat_markdown(models_dir)
    if qat:
        text += "\n" + qat
    if ablation.is_file():
        text += "\n" + ablation_markdown(json.loads(ablation.read_text()))
    out = models_dir / "MODEL_CARD.md"
    out.write_text(text)
    return out


def _sweep_refused(size: int) -> str | None:
    """Why the network cannot take ``size`` as a swept input, or None (the rule ``--image-size`` applies)."""
    return None if size >= MIN_IMAGE_SIZE else f"below {MIN_IMAGE_SIZE}, the network's largest stride"


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="bundle name, e.g. aizoo or moxa3k")
@click.option(
    "--data",
    "data",
    type=click.Path(path_type=Path),
    multiple=True,
    required=True,
    help="test dataset root; repeat it (with --dataset, --split by position) for a model of several sources",
)
@repeated_dataset_options("each layout's test split (moxa3k: test; aizoo: val)")
@limit_option("images of each split")
@click.option("--models-dir", type=click.Path(path_type=Path), default=MODELS_DIR, show_default=True)
@click.option(
    "--image-size", type=IMAGE_SIZE, default=None, help="default inference input  [default: the training size]"
)
@repeated_option(
    "--sweep",
    None,
    (),
    "input size in pixels",
    convert=int,
    check=_sweep_refused,
    help="another letterbox size to evaluate for the card (--sweep 320 --sweep 480)",
)
@click.option("--note", default="", help="free text for the card, e.g. how the init checkpoint was trained")
@click.option(
    "--trained-on",
    default="",
    help="the training machine, for a checkpoint that does not record it  [default: the checkpoint's record]",
)
def release(checkpoint, name, data, kinds, splits, limit, models_dir, image_size, sweep, note, trained_on):
    """Bundle CHECKPOINT as slfm/models/<name>_<size>.pt, evaluate it on each test set, and update MODEL_CARD.md."""
    from slfm.inputs import data_specs

    tests = tuple(data_specs([str(d) for d in data], kinds, splits))
    job = ReleaseJob(Path(checkpoint), name, tests, limit, Path(models_dir), image_size, tuple(sweep), note, trained_on)
    dst = release_job(job, click.echo)
    click.echo(f"bundled {dst} ({dst.stat().st_size / 1e6:.2f} MB); card: {write_card(Path(models_dir))}")


@dataclass(frozen=True)
class ReleaseJob:
    """``slfm release``'s settings: a training checkpoint -> a bundled model with its card's evaluations."""

    checkpoint: Path
    name: str  # bundle name, e.g. aizoo or moxa3k
    tests: tuple[DataSpec, ...]  # the test sets the card reports, each in every mode (one per source)
    limit: int | None = None  # first N images of each
    models_dir: Path = MODELS_DIR
    image_size: int | None = None  # default inference input (None: the training size)
    sweep: tuple[int, ...] = ()  # more letterbox sizes to evaluate for the card
    note: str = ""
    trained_on: str = ""  # the training machine, for a checkpoint that does not record it


def release_job(job: ReleaseJob, log=print) -> Path:
    """Bundle ``job.checkpoint``, evaluate it as the card shows, write its card JSON; returns the bundled file
    (the card's Markdown is :func:`write_card`)."""
    from dataclasses import replace

    from slfm.evaluate import describe_machine, evaluate_samples, machine, summary
    from slfm.predictor import Predictor
    from slfm.voc import load_dataset

    checkpoint, name, limit = job.checkpoint, job.name, job.limit
    models_dir, image_size, note, trained_on = job.models_dir, job.image_size, job.note, job.trained_on
    if not job.tests:
        raise SlfmError("no test set: give --data DIR --dataset KIND (repeatable)")
    src = read_checkpoint(checkpoint)
    if not trained_on and "train_machine" not in src:
        raise SlfmError(
            f"{checkpoint} does not record the machine it was trained on (made before slfm recorded it): "
            "name it with --trained-on, e.g. --trained-on 'NVIDIA H200, 16 CPUs'"
        )
    trained_on = trained_on or describe_machine(src["train_machine"])
    size = image_size or src["model_config"]["image_size"]
    extra = list(job.sweep)
    dst = Path(models_dir) / f"{name}_{size}.pt"
    export_for_release(checkpoint, dst, size)
    if dst.stat().st_size > MAX_BYTES:
        raise SlfmError(f"{dst} is {dst.stat().st_size} bytes: over the {MAX_BYTES}-byte budget for bundled weights")
    model, ckpt = load_model(dst)
    metrics = []
    runs = [("letterbox", size, 0.0)] + [("letterbox", v, 0.0) for v in dict.fromkeys(extra) if v != size]
    # the reference mode, and the shipped size with the demo's face/mask suppression (what an app shows)
    runs += [("reference", 840, 0.0), ("letterbox", size, DEMO.cross_class_iou)]
    ref = name if BUNDLED.get(name) == dst.name and Path(models_dir) == MODELS_DIR else str(dst)
    for test in job.tests:
        data, kind, split = test.root, test.kind, test.split
        samples = load_dataset(data, kind, split, limit=limit)
        for mode, insize, cross in runs:
            post = replace(EVAL, cross_class_iou=cross)
            predictor = Predictor(model, model.config, mode, insize, post)
            result = summary(evaluate_samples(predictor, samples, desc=f"{kind} {mode}"))
            cmd = f"slfm eval {ref} --data {data} --dataset {kind} --split {split}"
            cmd += f" --mode {mode}" + (f" --size {insize}" if mode == "reference" or insize != size else "")
            cmd += f" --limit {limit}" if limit else ""
            cmd += f" --cross-class-iou {cross:g}" if cross else ""
            metrics.append(
                {
                    "dataset": kind,
                    "split": split,
                    "mode": mode,
                    "input_size": insize,
                    "cross_class_iou": cross,
                    "command": portable_command(cmd),
                    **{k: result[k] for k in ("images", "ap50", "map50", "map50_95")},
                }
            )
            log(f"{kind} {split} {mode} {insize} cross-class {cross:g}: mAP@0.5 {result['map50']:.4f} {result['ap50']}")
    card = {
        "file": dst.name,
        "size_bytes": dst.stat().st_size,
        "sha256": file_sha256(dst),
        "source_sha256": ckpt["source_sha256"],
        "epoch": ckpt.get("epoch"),
        "model_config": ckpt["model_config"],
        "train_image_size": ckpt["train_image_size"],
        "train_config": ckpt["train_config"],
        "training": training_summary(checkpoint),
        "machine": machine(),
        "trained_on": trained_on,
        "released": time.strftime("%Y-%m-%d %H:%M"),
        "release_command": f"slfm release {checkpoint} --name {name} "
        + " ".join(f"--data {s.root} --dataset {s.kind} --split {s.split}" for s in job.tests)
        + (f" --limit {limit}" if limit else "")
        + (f" --image-size {image_size}" if image_size else "")
        + "".join(f" --sweep {v}" for v in job.sweep)
        + (f" --trained-on {shlex.quote(trained_on)}" if "train_machine" not in src else ""),
        "metrics": metrics,
        "note": note,
    }
    dst.with_suffix(".json").write_text(json.dumps(card, indent=1) + "\n")
    return dst
