"""``slfm pipeline``: the main job, from a checkpoint to verified artifacts and one report.

(optionally train) -> QAT -> convert to every format and precision -> parity on the chosen targets.
Each step is a library function with a typed config (:mod:`slfm.steps`); the pipeline plans the configs and
runs each step in a fresh interpreter, its log in ``OUT/logs/``; every output lands in one run folder. The
one cache is ``OUT/manifest.json`` (:mod:`slfm.manifest`): a rerun skips a step whose recorded outputs exist
and whose key is unchanged; the key covers the step's resolved config, the content (sha256) of its input
files and slfm's own code and version, so an upgrade that changes a default reruns the steps it touches
(``--force`` reruns everything). A failing step stops the chain with a clear message and keeps what earlier
steps produced.

int8 artifacts come from the bundled QAT checkpoint of the bundled weights (no QAT training unless
``--qat-epochs N``); for other weights, from PTQ calibrated on ``--data`` (or scikit-image's photos).
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import click

from slfm.errors import SlfmError
from slfm.fingerprint import code_fingerprint
from slfm.formats import FORMATS
from slfm.formats import NAMES as FORMAT_NAMES
from slfm.layouts import KINDS, eval_splits_help
from slfm.manifest import Manifest, step_key
from slfm.options import NON_NEGATIVE, OUT_DIR, POSITIVE, choices_option, threads_option
from slfm.outputs import write_text
from slfm.steps import kind_of, to_json

# Settings that say how a step runs, not what it makes: left out of its cache key. The default thread count
# follows the machine's load (slfm.options.default_threads), so a key holding it would rerun a finished step
# whenever the load moved; a step's record keeps the threads it ran with, and --force remeasures.
EXECUTION_FIELDS = ("threads", "progress")


@dataclass
class Step:
    name: str
    config: Any  # a step config of slfm.steps.KINDS (ConvertJob, QATJob, TrainJob, EvalJob, ParityOptions)
    inputs: list[Path] = field(default_factory=list)  # files whose content decides the outputs
    threads: int | None = None

    @property
    def kind(self) -> str:
        return kind_of(self.config)

    def key(self, code: str | None = None) -> str:
        settings = to_json(self.config)
        settings["config"] = {k: v for k, v in settings["config"].items() if k not in EXECUTION_FIELDS}
        return step_key(self.name, settings, self.inputs, code)

    @property
    def summary(self) -> str:
        """The step's kind and the settings that differ from its config's defaults."""
        return f"{self.kind} " + " ".join(f"{k}={v}" for k, v in changed_fields(self.config).items())


def changed_fields(config: Any) -> dict:
    import dataclasses

    from slfm.config_cli import field_default

    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value != field_default(f, dataclasses.MISSING) and f.name not in ("command", "thresholds"):
            out[f.name] = changed_fields(value) if dataclasses.is_dataclass(value) else _short(value)
    return out


def _short(value: Any) -> Any:
    import dataclasses

    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value):  # e.g. a parity data source: its values, colon-separated
        return ":".join(str(_short(getattr(value, f.name))) for f in dataclasses.fields(value))
    if isinstance(value, list | tuple):
        return ",".join(str(_short(v)) for v in value)
    return value


def retire_stale_artifacts(art: Path, checkpoint: Path, stale: Path, echo=click.echo) -> list[Path]:
    """Move artifacts that another checkpoint made out of ``art`` (into ``stale``, nothing is deleted).

    Parity checks every artifact in the folder against this run's checkpoint, so a rerun with new weights
    would otherwise fail on the previous weights' files. The conversion records go too, so every
    conversion reruns. Returns the moved artifacts."""
    if not art.is_dir() or not checkpoint.is_file():
        return []
    from slfm.artifact import read_sidecar, sidecar_path
    from slfm.checkpoint import file_sha256
    from slfm.formats import format_of

    sha = file_sha256(checkpoint)
    moved = []
    for artifact in sorted(q for q in art.iterdir() if format_of(q) is not None):  # what parity would check
        try:
            source = read_sidecar(artifact).source_sha256
        except SlfmError:
            continue  # parity names an artifact without readable metadata itself
        if not source or source == sha:
            continue
        stale.mkdir(parents=True, exist_ok=True)
        for p in (artifact, sidecar_path(artifact)):
            p.rename(stale / p.name)
        moved.append(stale / artifact.name)
    if moved:
        Manifest(art).drop()  # every conversion reruns
        echo(f"{len(moved)} artifact(s) in {art} were made from another checkpoint than {checkpoint}: moved to {stale}")
    return moved


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


class StepStatus:
    """One line of status for a running step: its elapsed time and the last line it printed (a progress bar's
    count, rate and ETA). On a terminal the line is redrawn in place every second; elsewhere (a CI log,
    ``make main | tee``) it is printed every ``every`` seconds."""

    def __init__(self, echo: Callable[[str], None], every: float = 60.0, live: bool | None = None) -> None:
        self.echo, self.every = echo, every
        self.live = sys.stdout.isatty() if live is None else live
        self.shown = False
        self.last = -1.0

    def update(self, head: str, elapsed: float, line: str) -> None:
        text = f"{head}: {_clock(elapsed)} elapsed" + (f" | {line}" if line else "")
        if self.live:
            width = shutil.get_terminal_size((120, 20)).columns - 1
            click.echo("\r\x1b[K" + text[:width], nl=False)
            self.shown = True
        elif elapsed - self.last >= self.every:
            self.echo(text)
            self.last = elapsed

    def clear(self) -> None:
        if self.shown:
            click.echo("\r\x1b[K", nl=False)
        self.shown, self.last = False, -1.0


def run_logged(argv: list[str], log: Path, on_status: Callable[[float, str], None], tick: float = 1.0) -> int:
    """Run ``argv`` with its output (stdout and stderr) into ``log``; every ``tick`` seconds, ``on_status``
    gets the elapsed seconds and the last non-empty line printed so far. Returns the exit status."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    last = [""]

    def pump() -> None:
        with open(log, "wb") as f:
            for chunk in iter(lambda: proc.stdout.read1(1 << 16), b""):
                f.write(chunk)
                f.flush()
                lines = [p for p in re.split(rb"[\r\n]", chunk) if p.strip()]
                if lines:
                    last[0] = lines[-1].decode(errors="replace").strip()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    t0 = time.perf_counter()
    while reader.is_alive():
        reader.join(tick)
        on_status(time.perf_counter() - t0, last[0])
    return proc.wait()


def run_steps(
    steps: list[Step], out: Path, force: bool = False, echo=click.echo, status: StepStatus | None = None
) -> dict:
    """Run (or skip) each step in order; returns the entries of ``out/manifest.json``."""
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("logs", "steps"):
        (out / sub).mkdir(exist_ok=True)
    manifest = Manifest(out)
    code = code_fingerprint()
    status = status or StepStatus(echo)
    t_all = time.perf_counter()
    for i, step in enumerate(steps, 1):
        head = f"[{i}/{len(steps)}] {step.name}"
        key = step.key(code)  # after the earlier steps ran: their outputs are this step's inputs
        if not force and manifest.up_to_date(step.name, key) is not None:
            ran = manifest.entries[step.name].get("threads")
            differ = ran is not None and ran != step.threads  # (entries written before threads were recorded: None)
            note = f"; ran at {ran} threads, --force reruns at {step.threads}" if differ else ""
            echo(f"{head}: up to date, skipped ({step.summary}{note})")
            manifest.entries[step.name]["skipped"] = True
            continue
        echo(f"{head}: {step.summary}")
        log = out / "logs" / f"{step.name}.log"
        config, result = out / "steps" / f"{step.name}.json", out / "steps" / f"{step.name}.result.json"
        write_text(config, json.dumps(to_json(step.config), indent=1) + "\n")
        result.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "slfm.steps", str(config), str(result)]
        t0 = time.perf_counter()
        try:
            returncode = run_logged(
                argv + ([str(step.threads)] if step.threads else []), log, functools.partial(status.update, head)
            )
        finally:
            status.clear()
        seconds = round(time.perf_counter() - t0, 1)
        outputs = [Path(p) for p in json.loads(result.read_text())["outputs"]] if result.exists() else []
        ok = returncode == 0 and result.exists() and all(p.exists() for p in outputs)
        info = {"kind": step.kind, "config": str(config), "seconds": seconds, "log": str(log), "skipped": False}
        info["threads"] = step.threads  # how it ran (not in the key): the skip line compares it
        manifest.record(step.name, key, outputs, "done" if ok else "failed", **info)
        if not ok:
            tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:] or ["(no output)"]
            raise SlfmError(
                f"pipeline step '{step.name}' failed (exit {returncode}): {tail[0]} -- full log: "
                f"{log}; outputs of earlier steps are kept in {out}"
            )
        echo(f"{head}: done in {_clock(seconds)} ({seconds} s)")
    echo(f"pipeline: {len(steps)} steps in {_clock(time.perf_counter() - t_all)}")
    manifest.save()
    return manifest.entries


def plan(
    out: Path,
    checkpoint: Path | None,
    data: Path | None,
    kind: str,
    train_epochs: int,
    qat_epochs: int,
    qat_limit: int | None,
    formats: list[str],
    targets: list[str],
    parity_limit: int,
    threads: int,
    parity_split: str | None = None,
) -> list[Step]:
    """The main job's steps, as configs. Parity runs once per target (``report`` for the first, then
    ``report-<n>``)."""
    from slfm.checkpoint import bundled_qat, resolve_checkpoint
    from slfm.config import ModelConfig
    from slfm.convert.job import ConvertJob
    from slfm.device_tests.parity import ParityOptions
    from slfm.inputs import data_specs
    from slfm.quantize.qat import QATConfig, QATJob
    from slfm.train import TrainConfig, TrainJob

    steps: list[Step] = []
    if train_epochs > 0:
        if data is None:
            raise SlfmError("--train-epochs needs labelled data: pass --data DIR (and --dataset)")
        train_out = out / "train"
        cfg = TrainConfig(
            data=str(Path(data).resolve()),
            dataset=kind,
            out=str(train_out),
            epochs=train_epochs,
            init="retinaface",
            threads=threads,
        )
        steps.append(Step("train", TrainJob(cfg, ModelConfig(image_size=320)), threads=threads))
        checkpoint = train_out / "best.pt"
    else:
        checkpoint = resolve_checkpoint(checkpoint, kind)
        if not checkpoint.is_file():
            raise SlfmError(f"checkpoint not found: {checkpoint}")
    art = out / "artifacts"
    fp32 = ConvertJob(checkpoint=str(checkpoint), formats=tuple(formats), precision="fp32", out=art)
    steps.append(Step("convert-fp32", fp32, [checkpoint], threads))
    int8_formats = [f for f in formats if FORMATS[f].int8_graph]
    quantized = None if train_epochs > 0 else bundled_qat(checkpoint)
    if data is not None and qat_epochs > 0:
        qat_out = out / "qat"
        job = QATJob(
            checkpoint=str(checkpoint),
            data=Path(data),
            kind=kind,
            out=qat_out,
            config=QATConfig(epochs=qat_epochs, limit=qat_limit),
        )
        steps.append(Step("qat", job, [checkpoint], threads))
        quantized = qat_out / "qat.pt"
    for fmt in int8_formats:
        job = ConvertJob(checkpoint=str(checkpoint), formats=(fmt,), precision="int8", out=art)
        inputs = [checkpoint]
        if quantized is not None:  # QAT: bundled with the weights, or trained above
            job = replace(job, qat=quantized)
            inputs.append(quantized)
        elif data is not None:  # other weights: PTQ calibrated on the training split
            job = replace(job, ptq=True, data=Path(data), kind=kind)
        else:
            job = replace(job, ptq=True)  # calibrated on scikit-image's real photos
        steps.append(Step(f"convert-int8-{fmt}", job, inputs, threads))
    specs = data_specs([str(data)], [kind], [parity_split] if parity_split else []) if data is not None else []
    for i, target in enumerate(targets):
        opts = ParityOptions(
            artifacts=[art],
            checkpoint=checkpoint,
            target=target,
            data=specs,
            limit=parity_limit,
            threads=threads,
            out=out / ("report" if i == 0 else f"report-{i + 1}"),
            command="slfm pipeline",
            progress=True,
        )
        steps.append(Step("parity" if i == 0 else f"parity-{i + 1}", opts, [art], threads))
    return steps


@click.command()
@click.option(
    "--checkpoint",
    default=None,
    help="fp32 checkpoint, or 'faces' / 'aizoo' / 'moxa3k' (default: the bundled weights for --dataset)",
)
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="labelled dataset root: enables QAT and mAP (without it: PTQ-free fp32 artifacts, parity on "
    "scikit-image's real photos)",
)
@click.option("--dataset", "kind", type=click.Choice(KINDS), default="moxa3k", show_default=True)
@click.option(
    "--train-epochs", type=NON_NEGATIVE, default=0, show_default=True, help="train first (0: start from weights)"
)
@click.option(
    "--qat-epochs",
    type=NON_NEGATIVE,
    default=0,
    show_default=True,
    help="train QAT for N epochs on --data (0: int8 from the bundled QAT checkpoint of bundled weights, else PTQ)",
)
@click.option("--qat-limit", type=POSITIVE, default=None, help="QAT on N training images")
@choices_option("--to", "--formats", tuple(FORMAT_NAMES), "formats to convert to")
@click.option(
    "--target",
    "targets",
    multiple=True,
    default=["local"],
    show_default=True,
    help="parity target(s): local, ssh://user@host[:port], adb[:serial], macos",
)
@click.option("--parity-limit", type=POSITIVE, default=200, show_default=True, help="images per dataset for parity")
@click.option(
    "--parity-split", default=None, help=f"split of --data for parity  [default: the test split: {eval_splits_help()}]"
)
@threads_option
@click.option("--out", type=OUT_DIR, default=Path("runs/pipeline"), show_default=True)
@click.option("--force", is_flag=True, help="rerun every step even when its outputs are up to date")
def pipeline(
    checkpoint,
    data,
    kind,
    train_epochs,
    qat_epochs,
    qat_limit,
    to,
    targets,
    parity_limit,
    parity_split,
    threads,
    out,
    force,
):
    """The main job: (train) -> (QAT) -> convert to every format and precision -> parity -> one report.

    int8 artifacts come from the bundled QAT checkpoint when the weights are bundled ones."""
    if data is not None and not Path(data).exists():
        raise SlfmError(f"--data: folder not found: {data}")
    fmts = list(to)
    steps = plan(
        out,
        checkpoint,
        data,
        kind,
        train_epochs,
        qat_epochs,
        qat_limit,
        fmts,
        list(targets),
        parity_limit,
        threads,
        parity_split,
    )
    if data is None:
        click.echo("no --data: mAP needs labelled images; converting and checking parity on real photos")
    convert = next(s for s in steps if s.name == "convert-fp32")
    retire_stale_artifacts(
        out / "artifacts", Path(convert.config.checkpoint), out / "stale" / time.strftime("%Y%m%d-%H%M%S")
    )
    run_steps(steps, out, force)
    report = out / "report.md"
    click.echo(report.read_text() if report.exists() else f"done: {out}")
