"""``slfm bench ablation``: the paper's ablations at one budget: attention (RCAM vs plain SSH) x heatmap task."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click


@click.command()
@click.option("--data", type=click.Path(path_type=Path), default=Path("../shared/data/moxa3k"), show_default=True)
@click.option("--dataset", "kind", type=click.Choice(["aizoo", "moxa3k", "voc"]), default="moxa3k", show_default=True)
@click.option("--epochs", type=int, default=4, show_default=True)
@click.option("--image-size", type=int, default=320, show_default=True)
@click.option("--init", default="imagenet", show_default=True)
@click.option("--limit", type=int, default=None, help="train on the first N images")
@click.option("--runs-dir", type=click.Path(path_type=Path), default=Path("runs/ablation"), show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports/ablation"), show_default=True)
def ablation(data, kind, epochs, image_size, init, limit, runs_dir, out):
    """Train the four attention/heatmap variants with one budget and tabulate mAP on the test split."""
    from slfm.checkpoint import load_model
    from slfm.config import ModelConfig
    from slfm.evaluate import evaluate_samples, machine, summary
    from slfm.postprocess import EVAL
    from slfm.predictor import Predictor
    from slfm.train import DEFAULT_VAL_SPLIT, TrainConfig, train
    from slfm.voc import load_dataset

    split = DEFAULT_VAL_SPLIT[kind]
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
            )
            last = Path(cfg.out) / "last.pt"
            resume = last if last.is_file() else None
            if resume is None or load_model(last)[1]["epoch"] < epochs:
                train(cfg, ModelConfig(image_size=image_size, attention=attention, heatmap=heatmap), resume=resume)
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
            click.echo(f"{name}: mAP@0.5 {r['map50']:.4f}")
    report = {
        "command": f"slfm bench ablation --data {data} --dataset {kind} --epochs {epochs} "
        f"--image-size {image_size} --init {init}" + (f" --limit {limit}" if limit else ""),
        "budget": f"{epochs} epochs at {image_size}, init {init}, "
        + (f"first {limit} training images" if limit else "full training split")
        + f"; evaluated on {kind} {split} ({len(test)} images, letterbox {image_size})",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "runs": runs,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    from slfm.release import ablation_markdown

    out.with_suffix(".md").write_text(ablation_markdown(report))
    click.echo(out.with_suffix(".md").read_text())
