"""``slfm convert``: fp32/fp16/int8 artifacts for TFLite, Core ML and ExecuTorch, each with its contract."""

from __future__ import annotations

from pathlib import Path

import click

from slfm.cli import _class_map


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option(
    "--to", "to", type=click.Choice(["tflite", "coreml", "executorch", "all"]), default="all", show_default=True
)
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True)
@click.option(
    "--qat",
    type=click.Path(path_type=Path),
    default=None,
    help="int8 from this quantized checkpoint (slfm qat / slfm ptq); without it int8 is PTQ here",
)
@click.option("--nhwc", is_flag=True, help="TFLite: channels-last input [1, S, S, 3]")
@click.option("--out", type=click.Path(path_type=Path), default=Path("artifacts"), show_default=True)
@click.option("--data", type=click.Path(path_type=Path), default=None, help="PTQ calibration dataset root")
@click.option("--dataset", "kind", type=click.Choice(["aizoo", "moxa3k", "voc"]), default="moxa3k", show_default=True)
@click.option("--split", default="train", show_default=True)
@click.option("--class-map", default=None)
@click.option("--calib", type=int, default=128, show_default=True, help="PTQ calibration images")
def convert(checkpoint, to, precision, qat, nhwc, out, data, kind, split, class_map, calib):
    """Convert an fp32 CHECKPOINT to on-device artifacts (+ <artifact>.json contracts) in OUT."""
    from slfm.convert.api import TARGETS
    from slfm.convert.api import convert as run

    calibration, total = None, None
    if precision == "int8" and qat is None and to != "coreml":
        if data is None:
            click.echo("warning: int8 without --qat or --data: calibrating on scikit-image's sample photos", err=True)
        else:
            from slfm.checkpoint import load_model
            from slfm.quantize.calibrate import calibration_batches
            from slfm.voc import load_dataset

            model, _ = load_model(checkpoint)
            samples = load_dataset(data, kind, split, _class_map(class_map))
            calibration = calibration_batches(samples, model, calib)
            total = -(-min(calib, len(samples)) // 8)
    targets = list(TARGETS) if to == "all" else [to]
    if nhwc and to == "all":
        targets = ["tflite"]
    for p in run(checkpoint, targets, precision, out, qat, nhwc, calibration, total):
        click.echo(str(p))
