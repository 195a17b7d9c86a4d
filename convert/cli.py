"""``slfm convert``: fp32/fp16/int8 artifacts for TFLite, Core ML and ExecuTorch, each with its contract.

The options are :class:`slfm.convert.job.ConvertJob`'s fields; the work is :func:`slfm.convert.job.convert_job`,
which records each artifact made in ``OUT/manifest.json`` (entry ``<precision>-<fmt>``).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from slfm.config_cli import config_options
from slfm.convert.job import ConvertJob
from slfm.formats import NAMES as FORMAT_NAMES
from slfm.layouts import KINDS
from slfm.options import OUT_DIR, choices_option, class_map_of, threads_option


@click.command()
@click.argument("checkpoint", required=False, default=None)
@choices_option("--to", None, tuple(FORMAT_NAMES), "format(s)", expand=False)
@config_options(ConvertJob, only=("precision", "qat", "ptq", "nhwc", "coreml_nms"))
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
@config_options(ConvertJob, only=("calib",))
@threads_option
def convert(checkpoint, to, out, data, kind, split, class_map, threads, **settings):
    """Convert an fp32 CHECKPOINT (a path, or 'faces' / 'aizoo' / 'moxa3k'; default: the bundled weights for --dataset)
    to on-device artifacts (+ <artifact>.json contracts) in OUT."""
    from slfm.convert.job import convert_job

    job = ConvertJob(
        checkpoint=checkpoint,
        formats=tuple(to),
        out=out,
        data=data,
        kind=kind,
        split=split,
        class_map=class_map_of(class_map),
        command="slfm " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["convert"] else "slfm convert",
        **settings,
    )
    for path in convert_job(job, lambda m: click.echo(m, err=True)).artifacts.values():
        click.echo(str(path))
