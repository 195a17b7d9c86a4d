"""``slfm convert``: fp32/fp16/int8 artifacts for TFLite, Core ML and ExecuTorch, each with its contract.

The options are :class:`slfm.convert.job.ConvertJob`'s fields; the work is :func:`slfm.convert.job.convert_job`,
which records each artifact made in ``OUT/manifest.json`` (entry ``<precision>-<fmt>``).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from slfm.formats import NAMES as FORMAT_NAMES
from slfm.formats import PRECISIONS
from slfm.layouts import KINDS
from slfm.options import OUT_DIR, POSITIVE, class_map_of, threads_option

TO_CHOICES = [*FORMAT_NAMES, "all"]


@click.command()
@click.argument("checkpoint", required=False, default=None)
@click.option(
    "--to",
    "to",
    type=click.Choice(TO_CHOICES),
    multiple=True,
    default=["all"],
    show_default=True,
    help="format(s); repeat for several (--to tflite --to executorch)",
)
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True)
@click.option(
    "--qat",
    type=click.Path(path_type=Path),
    default=None,
    help="int8 from this quantized checkpoint (slfm qat / slfm ptq)  [default: the bundled QAT checkpoint of "
    "bundled weights; PTQ here for other weights]",
)
@click.option("--ptq", is_flag=True, help="int8 by post-training quantization here, even where a QAT checkpoint exists")
@click.option("--nhwc", is_flag=True, help="TFLite: channels-last input [1, S, S, 3]")
@click.option(
    "--coreml-nms",
    is_flag=True,
    help="Core ML: a pipeline with decode and NMS inside, for Vision (VNRecognizedObjectObservation with labels)",
)
@click.option("--out", type=OUT_DIR, default=Path("artifacts"), show_default=True)
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="PTQ calibration dataset root (default: scikit-image's real photos)",
)
@click.option("--dataset", "kind", type=click.Choice(KINDS), default="moxa3k", show_default=True)
@click.option("--split", default="train", show_default=True)
@click.option("--class-map", default=None)
@click.option("--calib", type=POSITIVE, default=128, show_default=True, help="PTQ calibration images")
@threads_option
def convert(checkpoint, to, precision, qat, ptq, nhwc, coreml_nms, out, data, kind, split, class_map, calib, threads):
    """Convert an fp32 CHECKPOINT (a path, or 'aizoo' / 'moxa3k'; default: the bundled weights for --dataset)
    to on-device artifacts (+ <artifact>.json contracts) in OUT."""
    from slfm.convert.job import ConvertJob, convert_job

    job = ConvertJob(
        checkpoint=checkpoint,
        formats=tuple(to),
        precision=precision,
        qat=qat,
        ptq=ptq,
        nhwc=nhwc,
        coreml_nms=coreml_nms,
        out=out,
        data=data,
        kind=kind,
        split=split,
        class_map=class_map_of(class_map),
        calib=calib,
        command="slfm " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["convert"] else "slfm convert",
    )
    for path in convert_job(job, lambda m: click.echo(m, err=True)).artifacts.values():
        click.echo(str(path))
