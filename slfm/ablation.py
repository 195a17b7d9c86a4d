"""``slfm bench ablation``: the paper's ablations at one budget: attention (RCAM vs plain SSH) x heatmap task."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import click

from slfm.layouts import KINDS
from slfm.options import FRACTION, IMAGE_SIZE, POSITIVE, limit_option, threads_option

BUDGET_KEYS = ("data", "dataset", "init", "limit", "class_balance", "full_image_prob", "epochs")


def check_same_budget(ckpt: dict, cfg, mcfg, path: Path) -> None:
    """A run folder left by another budget must not be resumed (or reused) as if it were this one's."""
    from slfm.errors import SlfmError

    saved = ckpt.get("train_config", {})
    wanted = {k: getattr(cfg, k) for k in BUDGET_KEYS}
    diff = {k: (saved.get(k), v) for k, v in wanted.items() if saved.get(k) != v}
    model = ckpt.get("model_config", {})
    for k in ("image_size", "attention", "heatmap"):
        if model.get(k) != getattr(mcfg, k):
            diff[k] = (model.get(k), getattr(mcfg, k))
    if diff:
        detail = ", ".join(f"{k}: {a!r} there, {b!r} asked" for k, (a, b) in diff.items())
        raise SlfmError(f"{path} is another budget's run ({detail}): pass another --runs-dir or remove it")


@click.command()
@click.option("--data", type=click.Path(path_type=Path), default=Path("../shared/data/moxa3k"), show_default=True)
@click.option("--dataset", "kind", type=click.Choice(KINDS), default="moxa3k", show_default=True)
@click.option("--epochs", type=POSITIVE, default=4, show_default=True)
@click.option("--image-size", type=IMAGE_SIZE, default=320, show_default=True)
@click.option("--init", default="imagenet", show_default=True)
@limit_option("training images")
@click.option("--class-balance", is_flag=True, help="class-balanced loss, as the bundled weights were trained")
@click.option("--full-image-prob", type=FRACTION, default=0.0, show_default=True)
@click.option("--runs-dir", type=click.Path(path_type=Path), default=Path("runs/ablation"), show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports/ablation"), show_default=True)
@threads_option
def ablation(data, kind, epochs, image_size, init, limit, class_balance, full_image_prob, runs_dir, out, threads):
    """Train the four attention/heatmap variants with one budget and tabulate mAP on the test split."""
    job = AblationJob(
        Path(data), kind, epochs, image_size, init, limit, class_balance, full_image_prob, Path(runs_dir), Path(out)
    )
    report = ablation_job(job, threads, click.echo)
    click.echo(Path(report).with_suffix(".md").read_text())


@dataclass(frozen=True)
class AblationJob:
    """``slfm bench ablation``'s settings: the four attention/heatmap variants trained with one budget."""

    data: Path = Path("../shared/data/moxa3k")
    kind: str = "moxa3k"
    epochs: int = 4
    image_size: int = 320
    init: str = "imagenet"
    limit: int | None = None
    class_balance: bool = False  # class-balanced loss, as the bundled weights were trained
    full_image_prob: float = 0.0
    runs_dir: Path = Path("runs/ablation")
    out: Path = Path("reports/ablation")  # report path without suffix (.json, .md)


def ablation_job(job: AblationJob, threads: int = 1, log=print) -> Path:
    """Train (or resume) each variant, evaluate it on the test split; returns the report's JSON path."""
    data, kind, epochs, image_size, init, limit = job.data, job.kind, job.epochs, job.image_size, job.init, job.limit
    class_balance, full_image_prob, runs_dir, out = job.class_balance, job.full_image_prob, job.runs_dir, job.out
    from slfm.checkpoint import load_model, read_checkpoint
    from slfm.config import ModelConfig
    from slfm.evaluate import evaluate_samples, machine, summary
    from slfm.layouts import layout
    from slfm.postprocess import EVAL
    from slfm.predictor import Predictor
    from slfm.train import TrainConfig, train
    from slfm.voc import load_dataset

    split = layout(kind).test_split
    test = load_dataset(data, kind, split)
    runs = []
    for attention in (True, False):
        for heatmap in (True, False):
            name = f"att{int(attention)}_hm{int(heatmap)}"
            cfg = TrainConfig(
                data=str(data),
                dataset=kind,
                out=str(runs_dir / name),
                epochs=epochs,
                init=init,
                limit=limit,
                val_split="",
                seed=0,
                class_balance=class_balance,
                full_image_prob=full_image_prob,
                threads=threads,
            )
            mcfg = ModelConfig(image_size=image_size, attention=attention, heatmap=heatmap)
            last = Path(cfg.out) / "last.pt"
            resume = last if last.is_file() else None
            saved = read_checkpoint(last) if resume is not None else None
            if saved is not None:
                check_same_budget(saved, cfg, mcfg, last)
            if saved is None or saved["epoch"] < epochs:
                train(cfg, mcfg, resume=resume)
            model, _ = load_model(last)
            r = summary(
                evaluate_samples(Predictor(model, model.config, "letterbox", image_size, EVAL), test, desc=name)
            )
            runs.append(
                {
                    "attention": attention,
                    "heatmap": heatmap,
                    "checkpoint": str(last),
                    **{k: r[k] for k in ("ap50", "map50", "map50_95")},
                }
            )
            log(f"{name}: mAP@0.5 {r['map50']:.4f}")
    report = {
        "command": f"slfm bench ablation --data {data} --dataset {kind} --epochs {epochs} "
        f"--image-size {image_size} --init {init}"
        + (f" --limit {limit}" if limit else "")
        + (" --class-balance" if class_balance else "")
        + (f" --full-image-prob {full_image_prob:g}" if full_image_prob else "")
        + (f" --runs-dir {runs_dir}" if Path(runs_dir) != Path("runs/ablation") else "")
        + (f" --out {out}" if Path(out) != Path("reports/ablation") else ""),
        "budget": f"{epochs} epochs at {image_size}, init {init}, "
        + (f"first {limit} training images" if limit else "full training split")
        + (", class-balanced loss" if class_balance else "")
        + (f", {full_image_prob:.0%} of samples letterboxed whole" if full_image_prob else "")
        + f"; evaluated on {kind} {split} ({len(test)} images, letterbox {image_size})",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "runs": runs,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    from slfm.release import ablation_markdown

    out.with_suffix(".md").write_text(ablation_markdown(report))
    return out.with_suffix(".json")
