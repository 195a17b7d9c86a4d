"""The convert step as a library function: :class:`ConvertJob` (typed settings) -> :func:`convert_job` ->
:class:`ConvertResult` (the artifacts made), each recorded in ``OUT/manifest.json`` (:mod:`slfm.manifest`).

``slfm convert`` is this function behind click options; ``slfm pipeline`` calls it as a step. The manifest
entry ``<precision>-<fmt>`` (e.g. ``fp32-tflite``, ``int8-executorch``) names the artifact, its sidecar, the
checkpoint and QAT file it came from and the key of the settings that made it; it is written once every
conversion of the call succeeded, so its presence means that artifact is complete.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from slfm.config_cli import opt
from slfm.errors import SlfmError
from slfm.formats import FORMATS, PRECISIONS
from slfm.formats import NAMES as FORMAT_NAMES
from slfm.manifest import Manifest, config_json, step_key
from slfm.options import POSITIVE
from slfm.outputs import folder_lock


@dataclass(frozen=True)
class ConvertJob:
    checkpoint: str | None = None  # a path, a bundled name, or None: the bundled weights for ``kind``
    formats: tuple[str, ...] = ("all",)  # format names, or "all": every format that takes these options
    precision: str = field(default="fp32", metadata=opt("", choices=PRECISIONS))
    qat: Path | None = field(
        default=None,
        metadata=opt(
            "int8 from this quantized checkpoint (slfm qat / slfm ptq)  [default: the bundled QAT checkpoint of "
            "bundled weights; PTQ here for other weights]",
            click.Path(path_type=Path),
            show_default=False,
        ),
    )
    ptq: bool = field(
        default=False,
        metadata=opt("int8 by post-training quantization here, even where a QAT checkpoint exists", flag="--ptq"),
    )
    nhwc: bool = field(default=False, metadata=opt("TFLite: channels-last input [1, S, S, 3]", flag="--nhwc"))
    coreml_nms: bool = field(
        default=False,
        metadata=opt(
            "Core ML: a pipeline with decode and NMS inside, for Vision (VNRecognizedObjectObservation with labels)",
            flag="--coreml-nms",
        ),
    )
    out: Path = Path("artifacts")
    data: Path | None = None  # PTQ calibration data (default: scikit-image's photos)
    kind: str = "moxa3k"
    split: str = "train"
    class_map: dict | None = None
    calib: int = field(default=128, metadata=opt("PTQ calibration images", POSITIVE))
    command: str = "slfm convert"  # recorded in the manifest


@dataclass
class ConvertResult:
    artifacts: dict[str, Path] = field(default_factory=dict)  # format -> artifact
    skipped: list[str] = field(default_factory=list)  # "fmt: why" for formats of "all" that cannot be made


def entry_name(precision: str, fmt: str) -> str:
    return f"{precision}-{fmt}"


def formats_to_make(to: tuple[str, ...], precision: str, nhwc: bool) -> tuple[list[str], list[str]]:
    """(formats to make, notes on formats of ``all`` skipped because they cannot take these options)."""
    from slfm.convert.api import supports

    if "all" in to:
        made = [f for f in FORMAT_NAMES if supports(f, precision, nhwc) is None]
        return made, [f"{f}: {supports(f, precision, nhwc)}" for f in FORMAT_NAMES if f not in made]
    unknown = [f for f in to if f not in FORMAT_NAMES]
    if unknown:
        raise SlfmError(f"unknown format {unknown[0]!r} (choose from {', '.join(FORMAT_NAMES)}, all)")
    return [f for f in FORMAT_NAMES if f in to], []  # each once, in the table's order


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def convert_job(job: ConvertJob, log: Callable[[str], None] = _note) -> ConvertResult:
    """Make the artifacts ``job`` asks for in ``job.out`` (refused before any work if another live convert
    writes there) and record each in its manifest."""
    with folder_lock(job.out, "slfm convert"):
        return _convert(job, log)


def _convert(job: ConvertJob, log: Callable[[str], None]) -> ConvertResult:
    from slfm.checkpoint import bundled_qat, resolve_checkpoint
    from slfm.convert.api import convert as run

    checkpoint = resolve_checkpoint(job.checkpoint, job.kind)
    qat = job.qat
    if qat is not None and job.ptq:
        raise SlfmError("--qat and --ptq exclude each other: int8 comes from one of them")
    formats, skipped = formats_to_make(tuple(job.formats), job.precision, job.nhwc)
    if job.coreml_nms and "coreml" not in formats:
        raise SlfmError("--coreml-nms is a Core ML option: add --to coreml")
    defaulted = False  # the bundled QAT serves TFLite and ExecuTorch; Core ML int8 stays int8 weights unless asked
    graphs = [f for f in formats if FORMATS[f].int8_graph]  # int8 from the QAT / PTQ graph (not Core ML)
    if job.precision == "int8" and qat is None and not job.ptq and graphs:
        qat = bundled_qat(checkpoint)
        defaulted = qat is not None
        if defaulted:
            log(f"int8 from the bundled QAT checkpoint {qat.name} (--ptq for post-training quantization)")
    if not formats:
        raise SlfmError(f"nothing to convert: {'; '.join(skipped)}")
    for note in skipped:
        log(f"note: skipping {note}")
    calibration, total, desc = None, None, None
    if job.precision == "int8" and qat is None and graphs:
        if job.data is None:
            log(
                "note: int8 without --qat or --data: PTQ calibrated on scikit-image's real photos "
                "(quantization 'ptq-photos'); pass --data for a representative calibration set"
            )
        else:
            from slfm.checkpoint import load_model
            from slfm.quantize.calibrate import calibration_batches
            from slfm.voc import load_dataset

            model, _ = load_model(checkpoint)
            samples = load_dataset(job.data, job.kind, job.split, job.class_map)
            calibration = calibration_batches(samples, model, job.calib)
            n = min(job.calib, len(samples))
            total = -(-n // 8)
            desc = f"{job.kind} {job.split} ({job.data}): {n} images spread over {len(samples)}"
    t0 = time.perf_counter()
    weights = [f for f in formats if f not in graphs]
    if defaulted and weights:  # the bundled QAT for the graphs; int8 weights for the others, as without a QAT file
        made = dict(zip(graphs, run(checkpoint, graphs, job.precision, job.out, qat, job.nhwc), strict=True))
        made |= dict(
            zip(weights, run(checkpoint, weights, job.precision, job.out, coreml_nms=job.coreml_nms), strict=True)
        )
        paths = [made[f] for f in formats]
    else:
        paths = run(
            checkpoint, formats, job.precision, job.out, qat, job.nhwc, calibration, total, desc, job.coreml_nms
        )
    seconds = round(time.perf_counter() - t0, 1)
    from slfm.artifact import sidecar_path

    manifest = Manifest(job.out)
    settings = config_json(job)
    for fmt, path in zip(formats, paths, strict=True):
        used_qat = qat if qat and not (defaulted and fmt in weights) else None
        name = entry_name(job.precision, fmt)
        inputs = [checkpoint] + ([used_qat] if used_qat else [])
        manifest.record(
            name,
            step_key(f"convert:{name}", settings, inputs),
            [path, sidecar_path(path)],
            command=job.command,
            checkpoint=checkpoint,
            format=fmt,
            precision=job.precision,
            qat=used_qat,
            artifact=path,
            skipped=skipped,
            seconds=seconds,
        )
    return ConvertResult(dict(zip(formats, paths, strict=True)), skipped)
