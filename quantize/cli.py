"""``slfm qat`` and ``slfm ptq``: quantized checkpoints (plain data) for ``slfm convert --qat``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from slfm.cli import _class_map, _dataset_options

BACKEND_CHOICES = ["xnnpack", "litert", "all"]


def _backends(choice: str) -> list[str]:
    return ["xnnpack", "litert"] if choice == "all" else [choice]


def _val_fn(data, kind, split, class_map, limit, config):
    """``evaluate(pm) -> {"map50": ...}`` on the validation split with the fake-quantized graph."""
    from slfm.convert.runtimes import TorchRunner
    from slfm.evaluate import evaluate_samples
    from slfm.postprocess import EVAL
    from slfm.predictor import Predictor
    from slfm.quantize.quantized import fake_quant_module
    from slfm.train import DEFAULT_VAL_SPLIT
    from slfm.voc import load_dataset

    samples = load_dataset(data, kind, split or DEFAULT_VAL_SPLIT[kind], _class_map(class_map), limit)

    def run(pm):
        pred = Predictor(TorchRunner(fake_quant_module(pm)), config, post=EVAL)
        r = evaluate_samples(pred, samples, desc="val (int8 sim)")
        return {"val_map50": r["map50"], "val_ap50": r["ap50"]}

    return run


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@_dataset_options
@click.option("--epochs", type=int, default=3, show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True)
# Defaults measured with slfm bench artifacts (2 epochs, a few hundred images): lr 1e-4 with BatchNorm training
# lost 4.5-6.7 mAP points on Moxa3K test; lr 1e-5 with BatchNorm frozen lost 0.6-3.0 (reports/artifacts.md).
@click.option("--lr", type=float, default=1e-5, show_default=True, help="Adam, cosine")
@click.option("--calib", type=int, default=64, show_default=True, help="images observed before training")
@click.option("--backend", type=click.Choice(BACKEND_CHOICES), default="all", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/qat"), show_default=True)
@click.option("--workers", type=int, default=2, show_default=True)
@click.option("--threads", type=int, default=0, help="torch threads (0: default)")
@click.option("--limit", type=int, default=None, help="train on the first N images")
@click.option("--val-split", default=None, help="evaluate the int8 simulation after each epoch ('' for none)")
@click.option("--val-limit", type=int, default=None)
@click.option(
    "--freeze-bn/--train-bn",
    default=True,
    show_default=True,
    help="BatchNorm on the fp32 run's running statistics throughout, or updating them (long QAT runs)",
)
@click.option(
    "--full-image-prob",
    type=click.FloatRange(0, 1),
    default=None,
    help="share of samples letterboxed whole instead of cropped  [default: as the checkpoint was trained]",
)
@click.option(
    "--class-balance/--no-class-balance",
    default=None,
    help="inverse-frequency class weights  [default: as the checkpoint was trained]",
)
def qat(
    checkpoint,
    data,
    kind,
    split,
    class_map,
    epochs,
    batch_size,
    lr,
    calib,
    backend,
    out,
    workers,
    threads,
    limit,
    val_split,
    val_limit,
    freeze_bn,
    full_image_prob,
    class_balance,
):
    """Quantization-aware fine-tuning (int8 W8A8, BN folded) of an fp32 CHECKPOINT -> OUT/qat.pt.

    The data recipe (whole-image share, class balance) follows the checkpoint's training unless given: fine-tuning
    on another input distribution than the weights learnt moves them away from it."""
    import torch

    from slfm.checkpoint import file_sha256, load_model
    from slfm.quantize.qat import QATConfig, trained_recipe
    from slfm.quantize.qat import qat as run
    from slfm.voc import load_dataset

    if threads:
        torch.set_num_threads(threads)
    model, ckpt = load_model(checkpoint)
    trained = trained_recipe(ckpt)
    full_image_prob = trained["full_image_prob"] if full_image_prob is None else full_image_prob
    class_balance = trained["class_balance"] if class_balance is None else class_balance
    samples = load_dataset(data, kind, split or "train", _class_map(class_map))
    evaluate = None
    if val_split != "":
        evaluate = _val_fn(data, kind, val_split, class_map, val_limit, model.config)
    cfg = QATConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        calib=calib,
        workers=workers,
        limit=limit,
        freeze_bn=freeze_bn,
        full_image_prob=full_image_prob,
        class_balance=class_balance,
    )
    click.echo(f"QAT data recipe: {full_image_prob:.0%} whole images, class-balanced loss {class_balance}")
    path = run(
        model,
        samples,
        cfg,
        _backends(backend),
        Path(out) / "qat.pt",
        evaluate,
        source_checkpoint=str(checkpoint),
        source_sha256=file_sha256(checkpoint),
    )
    click.echo(f"QAT checkpoint: {path}")


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@_dataset_options
@click.option("--calib", type=int, default=128, show_default=True, help="calibration images (spread over the split)")
@click.option("--backend", type=click.Choice(BACKEND_CHOICES), default="all", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/ptq"), show_default=True)
@click.option("--val-split", default="", help="evaluate the int8 simulation on this split ('' for none)")
@click.option("--val-limit", type=int, default=None)
def ptq(checkpoint, data, kind, split, class_map, calib, backend, out, val_split, val_limit):
    """Post-training int8 quantization of CHECKPOINT calibrated on real images -> OUT/ptq.pt."""
    from slfm.checkpoint import file_sha256, load_model
    from slfm.quantize.calibrate import calibration_batches
    from slfm.quantize.calibrate import ptq as run
    from slfm.quantize.quantized import save_quantized
    from slfm.voc import load_dataset

    model, _ = load_model(checkpoint)
    samples = load_dataset(data, kind, split or "train", _class_map(class_map))
    backends = _backends(backend)
    pm = run(model, calibration_batches(samples, model, calib), backends[0], total=-(-min(calib, len(samples)) // 8))
    extra = {"source_checkpoint": str(checkpoint), "source_sha256": file_sha256(checkpoint), "calib_images": calib}
    if val_split:
        extra["metrics"] = _val_fn(data, kind, val_split, class_map, val_limit, model.config)(pm)
        click.echo(json.dumps(extra["metrics"], indent=1))
    path = save_quantized(Path(out) / "ptq.pt", pm, model, "ptq", backends, **extra)
    click.echo(f"PTQ checkpoint: {path}")
