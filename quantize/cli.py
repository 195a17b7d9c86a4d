"""``slfm qat`` and ``slfm ptq``: quantized checkpoints (plain data) for ``slfm convert --qat``."""

from __future__ import annotations

from pathlib import Path

import click

from slfm.config_cli import config_options
from slfm.options import (
    FRACTION,
    IN_FILE,
    OUT_DIR,
    POSITIVE,
    class_map_of,
    class_map_option,
    dataset_options,
    repeated_data_option,
    repeated_dataset_options,
    threads_option,
)
from slfm.quantize.qat import BACKEND_CHOICES, QATConfig

# cross-layer range equalization (slfm.quantize.equalize): on by default for PTQ and QAT alike
EQUALIZE_OPTION = config_options(QATConfig, only=("equalize",))


@click.command()
@click.argument("checkpoint")
@repeated_data_option("for a model trained on several sources", required=True)
@repeated_dataset_options("fit where the layout has a committed holdout list, else train", "kind", "split")
@class_map_option
@config_options(QATConfig)  # the fine-tuning settings: slfm.quantize.qat.QATConfig's fields
@click.option("--backend", type=click.Choice(BACKEND_CHOICES), default="all", show_default=True)
@click.option("--out", type=OUT_DIR, default=Path("runs/qat"), show_default=True)
@threads_option
@click.option(
    "--val-split",
    default=None,
    help="pick the epoch by int8 mAP on this split ('' for none: the last epoch)  [default: holdout, the "
    "committed validation list carved from train]",
)
@click.option("--val-limit", type=POSITIVE, default=None, help="validate on N images spread over it")
@click.option(
    "--full-image-prob",
    type=FRACTION,
    default=None,
    help="share of samples letterboxed whole instead of cropped  [default: as the checkpoint was trained]",
)
@click.option(
    "--class-balance/--no-class-balance",
    default=None,
    help="inverse-frequency class weights  [default: as the checkpoint was trained]",
)
@click.option(
    "--resume",
    type=IN_FILE,
    default=None,
    help="continue a QAT run from its OUT/last.pt (give the same CHECKPOINT and data; --epochs may extend it)",
)
@click.option(
    "--bundle",
    is_flag=True,
    help="CHECKPOINT is a bundled name: ship the result as its bundled QAT checkpoint (slfm/models/) and "
    "update the model card",
)
def qat(
    checkpoint,
    data,
    kind,
    split,
    class_map,
    backend,
    out,
    threads,
    val_split,
    val_limit,
    full_image_prob,
    class_balance,
    resume,
    bundle,
    **settings,
):
    """Quantization-aware fine-tuning (int8 W8A8, BN folded) of an fp32 CHECKPOINT (a path, or 'faces' /
    'aizoo' / 'moxa3k') -> OUT/qat.pt, the epoch whose int8 graph scores best on the validation split (the mean
    over the sources for several --data).

    The data recipe (whole-image share, class balance, face-free images) follows the checkpoint's training unless
    given: fine-tuning on another input distribution than the weights learnt moves them away from it."""
    import shlex
    import sys

    from slfm.checkpoint import BUNDLED, BUNDLED_QAT, MODELS_DIR, read_data
    from slfm.errors import SlfmError
    from slfm.quantize.qat import QATJob, qat_job
    from slfm.sources import zip_sources

    if bundle and checkpoint not in BUNDLED:
        raise SlfmError(f"--bundle: {checkpoint!r} is not a bundled name ({', '.join(BUNDLED)})")
    first, *more = zip_sources(data, kind, split, (), class_map_of(class_map), val_split)
    job = QATJob(
        checkpoint=checkpoint,
        data=Path(first.data),
        kind=first.dataset,
        split=first.split,
        class_map=first.class_map,
        more_sources=tuple(more),
        val_split=val_split,
        val_limit=val_limit,
        backend=backend,
        out=Path(out),
        resume=Path(resume) if resume else None,
        full_image_prob=full_image_prob,
        class_balance=class_balance,
        config=QATConfig(**settings),
        command="slfm " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["qat"] else "slfm qat",
    )
    path = qat_job(job, click.echo)
    click.echo(f"QAT checkpoint: {path} (epoch {read_data(path).get('best_epoch')})")
    if bundle:
        import shutil

        from slfm.release import write_card

        dst = MODELS_DIR / BUNDLED_QAT[checkpoint]
        shutil.copyfile(path, dst)
        click.echo(f"bundled as {dst}; card: {write_card()}")


@click.command()
@click.argument("checkpoint")
@dataset_options(split_default="train")
@click.option(
    "--calib",
    type=POSITIVE,
    default=128,
    show_default=True,
    help="calibration images (spread over the split)",
)
@EQUALIZE_OPTION
@click.option("--backend", type=click.Choice(BACKEND_CHOICES), default="all", show_default=True)
@click.option("--out", type=OUT_DIR, default=Path("runs/ptq"), show_default=True)
@click.option("--val-split", default="", help="evaluate the int8 simulation on this split ('' for none)")
@click.option("--val-limit", type=POSITIVE, default=None)
@threads_option
def ptq(checkpoint, data, kind, split, class_map, calib, equalize, backend, out, val_split, val_limit, threads):
    """Post-training int8 quantization of CHECKPOINT (a path, or 'faces' / 'aizoo' / 'moxa3k') calibrated on real images
    -> OUT/ptq.pt."""
    from slfm.quantize.calibrate import PTQJob, ptq_job

    job = PTQJob(
        checkpoint=checkpoint,
        data=Path(data),
        kind=kind,
        split=split or "train",
        class_map=class_map_of(class_map),
        calib=calib,
        equalize=equalize,
        backend=backend,
        out=Path(out),
        val_split=val_split,
        val_limit=val_limit,
    )
    path = ptq_job(job, click.echo)
    click.echo(f"PTQ checkpoint: {path}")
