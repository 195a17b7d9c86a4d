"""``slfm parity``: each artifact checked against PyTorch on its runtime and device, with mAP and latency."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from slfm.layouts import eval_splits_help
from slfm.options import (
    NON_NEGATIVE,
    OUT_FILE,
    POSITIVE,
    POSITIVE_FLOAT,
    PROGRAMS_REFUSED,
    InFile,
    limit_option,
    repeated_dataset_options,
    threads_option,
)


@click.command()
@click.argument("artifacts", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path),
    default=None,
    help="fp32 reference checkpoint (default: the sidecars' source_checkpoint)",
)
@click.option(
    "--target",
    default="local",
    show_default=True,
    help="local | ssh://user@host[:port] (a Pi) | adb[:serial] (Android) | macos (Core ML) | "
    "browser[:wasm|:webgpu] (headless Chromium, LiteRT.js)",
)
@click.option(
    "--data",
    multiple=True,
    metavar="PATH",
    help="labelled dataset root for mAP, e.g. --data ../shared/data/moxa3k; repeat it (with --dataset, --split in "
    "the same order) for several  [default: scikit-image's bundled photos, no mAP]",
)
@repeated_dataset_options(f"the test split: {eval_splits_help()}")
@limit_option("images of each dataset")
@click.option("--runs", type=NON_NEGATIVE, default=20, show_default=True, help="timed runs (after warm-up)")
@click.option("--warmup", type=NON_NEGATIVE, default=3, show_default=True)
@threads_option
@click.option(
    "--out",
    type=OUT_FILE,
    default=Path("reports/parity"),
    show_default=True,
    help="report path without suffix: .json, .md and .png are written",
)
@click.option(
    "--threshold",
    "threshold_items",
    multiple=True,
    metavar="PRECISION.NAME=VALUE",
    help="override a pass/fail threshold, e.g. int8.min_snr_db=15",
)
@click.option(
    "--thresholds",
    "thresholds_file",
    type=click.Path(path_type=Path),
    default=None,
    help="JSON file of thresholds per precision",
)
@click.option("--ssh-config", type=click.Path(path_type=Path), default=None, help="ssh -F FILE (default ~/.ssh/config)")
@click.option("--identity", type=click.Path(path_type=Path), default=None, help="ssh -i KEY (default: your keys)")
@click.option("--connect-timeout", type=POSITIVE, default=15, show_default=True, help="seconds to reach a device")
@click.option(
    "--timeout", type=POSITIVE_FLOAT, default=900, show_default=True, help="seconds per device step before giving up"
)
@click.option("--remote-python", default="python3", show_default=True, help="Python on the device")
@click.option(
    "--remote-dir",
    default=None,
    help="work folder on the device (default: ~/slfm-parity, or /data/local/tmp/slfm-parity on Android)",
)
@click.option(
    "--layers",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="per-layer comparison to name the first divergent layer (auto: for a failing .tflite or .pte; a .pte "
    "is lowered again from its source checkpoint with every op tapped)",
)
@click.option("--no-tflite-runtime", is_flag=True, help="local: skip the tflite-runtime 2.14 venv run")
@click.option(
    "--tflite-runtime-venv",
    type=click.Path(path_type=Path),
    default=None,
    help="the tflite-runtime 2.14 venv (created if missing)",
)
@click.option(
    "--fake-quant",
    type=InFile(refuse=PROGRAMS_REFUSED),
    default=None,
    help="int8 reference: the quantized checkpoint (slfm qat / ptq) whose fake-quant model is rebuilt from data "
    "(default: the sidecar's extra.fake_quant)",
)
def parity(
    artifacts,
    checkpoint,
    target,
    data,
    kinds,
    splits,
    limit,
    runs,
    warmup,
    threads,
    out,
    threshold_items,
    thresholds_file,
    ssh_config,
    identity,
    connect_timeout,
    timeout,
    remote_python,
    remote_dir,
    layers,
    no_tflite_runtime,
    tflite_runtime_venv,
    fake_quant,
):
    """Check ARTIFACTS (files or folders) against the PyTorch reference on real images: raw-output error and
    SNR, detections matched to the reference's, mAP@0.5, latency, size, peak memory. Exits 1 on a failure."""
    from slfm.device_tests.parity import ParityOptions, check_passed, run_parity
    from slfm.device_tests.report import markdown
    from slfm.device_tests.thresholds import load_thresholds
    from slfm.inputs import data_specs

    opts = ParityOptions(
        artifacts=list(artifacts),
        checkpoint=checkpoint,
        target=target,
        data=data_specs(data, kinds, splits),
        limit=limit,
        runs=runs,
        warmup=warmup,
        threads=threads,
        out=out,
        thresholds=load_thresholds(thresholds_file, threshold_items),
        ssh_config=ssh_config,
        identity=identity,
        connect_timeout=connect_timeout,
        timeout=timeout,
        remote_python=remote_python,
        remote_dir=remote_dir,
        layers=layers,
        tflite_runtime=not no_tflite_runtime,
        tflite_runtime_venv=tflite_runtime_venv,
        fake_quant=fake_quant,
        command="slfm " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["parity"] else "slfm parity",
    )
    rep = run_parity(opts)
    click.echo(markdown(rep))
    click.echo(f"report: {out.with_suffix('.json')}, {out.with_suffix('.md')}, {out.with_suffix('.png')}")
    check_passed(rep)
