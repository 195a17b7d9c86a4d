"""``slfm pipeline``: the main job, from a checkpoint to verified artifacts and one report.

(optionally train) -> QAT -> convert to every format and precision -> parity on the chosen targets.
Each step is an ordinary ``slfm`` command run as a subprocess, its log in ``OUT/logs/``; every output lands
in one run folder. A rerun skips a step whose outputs exist and whose key is unchanged: the key covers the
step's command line, the content (sha256) of its input files and slfm's own code and version, so an upgrade
that changes a default reruns the steps it touches (``--force`` reruns everything). A failing step stops the
chain with a clear message and keeps what earlier steps produced.

int8 artifacts come from the bundled QAT checkpoint of the bundled weights (no QAT training unless
``--qat-epochs N``); for other weights, from PTQ calibrated on ``--data`` (or scikit-image's photos).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from slfm.errors import SlfmError
from slfm.fingerprint import code_fingerprint
from slfm.formats import FORMATS
from slfm.formats import NAMES as FORMAT_NAMES
from slfm.layouts import KINDS, eval_splits_help
from slfm.options import NON_NEGATIVE, OUT_DIR, POSITIVE, threads_option
from slfm.outputs import write_text

STATE = "steps.json"


@dataclass
class Step:
    name: str
    args: list[str]  # slfm command line, without the program name
    outputs: list[Path]
    inputs: list[Path] = field(default_factory=list)
    check_outputs: bool = True  # parity writes its report even when it fails: the exit status decides

    @property
    def command(self) -> str:
        return "slfm " + shlex.join(self.args)


def _files(p: Path) -> list[Path]:
    return sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def step_key(step: Step, code: str | None = None) -> str:
    """What decides a step's outputs: its command line, its inputs' content, slfm's code and version."""
    inputs = {str(f): _sha(f) for p in step.inputs if p.exists() for f in _files(p)}
    blob = json.dumps({"command": step.command, "inputs": inputs, "code": code or code_fingerprint()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def up_to_date(step: Step, recorded: dict, key: str) -> bool:
    rec = recorded.get(step.name, {})
    return rec.get("key") == key and rec.get("status") == "done" and all(p.exists() for p in step.outputs)


def retire_stale_artifacts(art: Path, checkpoint: Path, stale: Path, echo=click.echo) -> list[Path]:
    """Move artifacts that another checkpoint made out of ``art`` (into ``stale``, nothing is deleted).

    Parity checks every artifact in the folder against this run's checkpoint, so a rerun with new weights
    would otherwise fail on the previous weights' files. The conversion markers go too, so every
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
        for marker in art.glob("*.done"):
            marker.unlink()
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
    """Run (or skip) each step in order; returns the state written to ``out/steps.json``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    state_path = out / STATE
    recorded = json.loads(state_path.read_text()) if state_path.exists() else {}
    code = code_fingerprint()
    status = status or StepStatus(echo)
    t_all = time.perf_counter()
    for i, step in enumerate(steps, 1):
        head = f"[{i}/{len(steps)}] {step.name}"
        key = step_key(step, code)  # after the earlier steps ran: their outputs are this step's inputs
        if not force and up_to_date(step, recorded, key):
            echo(f"{head}: up to date, skipped ({step.command})")
            recorded[step.name]["skipped"] = True
            continue
        echo(f"{head}: {step.command}")
        log = out / "logs" / f"{step.name}.log"
        t0 = time.perf_counter()
        try:
            returncode = run_logged(
                [sys.executable, "-m", "slfm.cli", *step.args],
                log,
                functools.partial(status.update, head),
            )
        finally:
            status.clear()
        seconds = round(time.perf_counter() - t0, 1)
        ok = returncode == 0 and (not step.check_outputs or all(p.exists() for p in step.outputs))
        recorded[step.name] = {
            "command": step.command,
            "key": key,
            "status": "done" if ok else "failed",
            "seconds": seconds,
            "log": str(log),
            "skipped": False,
        }
        write_text(state_path, json.dumps(recorded, indent=1) + "\n")
        if not ok:
            tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:] or ["(no output)"]
            raise SlfmError(
                f"pipeline step '{step.name}' failed (exit {returncode}): {tail[0]} -- full log: "
                f"{log}; outputs of earlier steps are kept in {out}"
            )
        echo(f"{head}: done in {_clock(seconds)} ({seconds} s)")
    echo(f"pipeline: {len(steps)} steps in {_clock(time.perf_counter() - t_all)}")
    write_text(state_path, json.dumps(recorded, indent=1) + "\n")
    return recorded


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
    from slfm.checkpoint import resolve_checkpoint

    steps: list[Step] = []
    if train_epochs > 0:
        if data is None:
            raise SlfmError("--train-epochs needs labelled data: pass --data DIR (and --dataset)")
        train_out = out / "train"
        steps.append(
            Step(
                "train",
                [
                    "train",
                    "--data",
                    str(data),
                    "--dataset",
                    kind,
                    "--out",
                    str(train_out),
                    "--epochs",
                    str(train_epochs),
                    "--init",
                    "retinaface",
                    "--threads",
                    str(threads),
                ],
                [train_out / "best.pt"],
            )
        )
        checkpoint = train_out / "best.pt"
    else:
        checkpoint = resolve_checkpoint(checkpoint, kind)
        if not checkpoint.is_file():
            raise SlfmError(f"checkpoint not found: {checkpoint}")
    art = out / "artifacts"
    to = [arg for fmt in formats for arg in ("--to", fmt)]
    steps.append(
        Step(
            "convert-fp32",
            ["convert", str(checkpoint), *to, "--precision", "fp32", "--out", str(art), "--threads", str(threads)],
            [art / f"fp32-{fmt}.done" for fmt in formats],  # convert writes one marker per format made
            [checkpoint],
        )
    )
    int8_formats = [f for f in formats if FORMATS[f].int8_graph]
    from slfm.checkpoint import bundled_qat

    quantized = None if train_epochs > 0 else bundled_qat(checkpoint)
    if data is not None and qat_epochs > 0:
        qat_out = out / "qat"
        args = ["qat", str(checkpoint), "--data", str(data), "--dataset", kind, "--epochs", str(qat_epochs)]
        args += ["--out", str(qat_out), "--threads", str(threads)]
        if qat_limit:
            args += ["--limit", str(qat_limit)]
        steps.append(Step("qat", args, [qat_out / "qat.pt"], [checkpoint]))
        quantized = qat_out / "qat.pt"
    for fmt in int8_formats:
        args = [
            "convert",
            str(checkpoint),
            "--to",
            fmt,
            "--precision",
            "int8",
            "--out",
            str(art),
            "--threads",
            str(threads),
        ]
        inputs = [checkpoint]
        if quantized is not None:  # QAT: bundled with the weights, or trained above
            args += ["--qat", str(quantized)]
            inputs.append(quantized)
        elif data is not None:  # other weights: PTQ calibrated on the training split
            args += ["--ptq", "--data", str(data), "--dataset", kind]
        else:
            args += ["--ptq"]  # calibrated on scikit-image's real photos
        steps.append(Step(f"convert-int8-{fmt}", args, [art / f"int8-{fmt}.done"], inputs))
    parity = [
        "parity",
        str(art),
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(out / "report"),
        "--threads",
        str(threads),
        "--limit",
        str(parity_limit),
    ]
    if data is not None:
        parity += ["--data", str(data), "--dataset", kind] + (["--split", parity_split] if parity_split else [])
    for t in targets:
        parity += ["--target", t]
    steps.append(Step("parity", parity, [out / "report.json"], [art], check_outputs=True))
    return steps


@click.command()
@click.option(
    "--checkpoint",
    default=None,
    help="fp32 checkpoint, or 'aizoo' / 'moxa3k' (default: the bundled weights for --dataset)",
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
@click.option("--formats", default=",".join(FORMAT_NAMES), show_default=True, help="comma-separated")
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
    formats,
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
    fmts = [f.strip() for f in formats.split(",") if f.strip()]
    unknown = [f for f in fmts if f not in FORMAT_NAMES]
    if unknown:
        raise SlfmError(f"--formats {formats!r}: unknown {unknown[0]!r} (choose from {', '.join(FORMAT_NAMES)})")
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
    retire_stale_artifacts(out / "artifacts", convert.inputs[0], out / "stale" / time.strftime("%Y%m%d-%H%M%S"))
    run_steps(steps, out, force)
    report = out / "report.md"
    click.echo(report.read_text() if report.exists() else f"done: {out}")
