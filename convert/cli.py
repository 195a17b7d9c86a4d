"""``slfm convert``: fp32/fp16/int8 artifacts for TFLite, Core ML and ExecuTorch, each with its contract.

Besides the artifacts (+ ``<artifact>.json`` sidecars), each run writes one marker per format it made,
``OUT/<precision>-<fmt>.done`` (e.g. ``fp32-tflite.done``, ``int8-executorch.done``): JSON naming the command,
the checkpoint and the artifact, written after every conversion of the run succeeded, so its presence means
that format's artifact at that precision is complete whatever ``--to`` combination made it (``slfm pipeline``
checks these).
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path

import click

from slfm.formats import FORMATS, PRECISIONS
from slfm.formats import NAMES as FORMAT_NAMES
from slfm.layouts import KINDS
from slfm.options import OUT_DIR, POSITIVE, class_map_of, threads_option
from slfm.outputs import folder_lock, write_text

TO_CHOICES = [*FORMAT_NAMES, "all"]


def formats_to_make(to: tuple[str, ...], precision: str, nhwc: bool) -> tuple[list[str], list[str]]:
    """(formats to make, notes on formats of ``all`` skipped because they cannot take these options)."""
    from slfm.convert.api import supports

    if "all" in to:
        made = [f for f in FORMAT_NAMES if supports(f, precision, nhwc) is None]
        return made, [f"{f}: {supports(f, precision, nhwc)}" for f in FORMAT_NAMES if f not in made]
    return [f for f in FORMAT_NAMES if f in to], []  # each once, in the table's order


def marker_path(out: Path, precision: str, fmt: str) -> Path:
    return Path(out) / f"{precision}-{fmt}.done"


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
    with folder_lock(out, "slfm convert"):  # refused before any work if another live convert writes there
        _convert(checkpoint, to, precision, qat, ptq, nhwc, out, data, kind, split, class_map, calib, coreml_nms)


def _convert(checkpoint, to, precision, qat, ptq, nhwc, out, data, kind, split, class_map, calib, coreml_nms=False):
    from slfm.checkpoint import bundled_qat, resolve_checkpoint
    from slfm.convert.api import convert as run
    from slfm.errors import SlfmError

    checkpoint = resolve_checkpoint(checkpoint, kind)
    if qat is not None and ptq:
        raise SlfmError("--qat and --ptq exclude each other: int8 comes from one of them")
    formats, skipped = formats_to_make(to, precision, nhwc)
    if coreml_nms and "coreml" not in formats:
        raise SlfmError("--coreml-nms is a Core ML option: add --to coreml")
    defaulted = False  # the bundled QAT serves TFLite and ExecuTorch; Core ML int8 stays int8 weights unless asked
    graphs = [f for f in formats if FORMATS[f].int8_graph]  # int8 from the QAT / PTQ graph (not Core ML)
    if precision == "int8" and qat is None and not ptq and graphs:
        qat = bundled_qat(checkpoint)
        defaulted = qat is not None
        if defaulted:
            click.echo(
                f"int8 from the bundled QAT checkpoint {qat.name} (--ptq for post-training quantization)", err=True
            )
    if not formats:
        raise SlfmError(f"nothing to convert: {'; '.join(skipped)}")
    for note in skipped:
        click.echo(f"note: skipping {note}", err=True)
    calibration, total, desc = None, None, None
    if precision == "int8" and qat is None and graphs:
        if data is None:
            click.echo(
                "note: int8 without --qat or --data: PTQ calibrated on scikit-image's real photos "
                "(quantization 'ptq-photos'); pass --data for a representative calibration set",
                err=True,
            )
        else:
            from slfm.checkpoint import load_model
            from slfm.quantize.calibrate import calibration_batches
            from slfm.voc import load_dataset

            model, _ = load_model(checkpoint)
            samples = load_dataset(data, kind, split, class_map_of(class_map))
            calibration = calibration_batches(samples, model, calib)
            total = -(-min(calib, len(samples)) // 8)
            desc = f"{kind} {split} ({data}): {min(calib, len(samples))} images spread over {len(samples)}"
    t0 = time.perf_counter()
    weights = [f for f in formats if f not in graphs]
    if defaulted and weights:  # the bundled QAT for the graphs; int8 weights for the others, as without a QAT file
        made = dict(zip(graphs, run(checkpoint, graphs, precision, out, qat, nhwc), strict=True))
        made |= dict(zip(weights, run(checkpoint, weights, precision, out, coreml_nms=coreml_nms), strict=True))
        paths = [made[f] for f in formats]
    else:
        paths = run(checkpoint, formats, precision, out, qat, nhwc, calibration, total, desc, coreml_nms)
    for p in paths:
        click.echo(str(p))
    for fmt, path in zip(formats, paths, strict=True):
        info = {
            "command": "slfm " + shlex.join(sys.argv[1:]),
            "checkpoint": str(checkpoint),
            "format": fmt,
            "precision": precision,
            "qat": str(qat) if qat and not (defaulted and fmt in weights) else None,
            "artifact": str(path),
            "skipped": skipped,
            "seconds": round(time.perf_counter() - t0, 1),
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        write_text(marker_path(out, precision, fmt), json.dumps(info, indent=1) + "\n")
