"""``slfm pipeline``: the main job, from a checkpoint to verified artifacts and one report.

(optionally train) -> QAT -> convert to every format and precision -> parity on the chosen targets.
Each step is an ordinary ``slfm`` command run as a subprocess, its log in ``OUT/logs/``; every output lands
in one run folder. A rerun skips a step whose outputs exist, are newer than its inputs and were made by the
same command (``--force`` reruns everything). A failing step stops the chain with a clear message and keeps
what earlier steps produced.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from slfm.errors import SlfmError

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


def _mtime(p: Path) -> float:
    if p.is_dir():
        return max([f.stat().st_mtime for f in p.rglob("*") if f.is_file()], default=p.stat().st_mtime)
    return p.stat().st_mtime


def up_to_date(step: Step, recorded: dict) -> bool:
    if recorded.get(step.name, {}).get("command") != step.command or recorded[step.name].get("status") != "done":
        return False
    if not all(p.exists() for p in step.outputs):
        return False
    newest_input = max((_mtime(p) for p in step.inputs if p.exists()), default=0.0)
    return min(_mtime(p) for p in step.outputs) >= newest_input


def retire_stale_artifacts(art: Path, checkpoint: Path, stale: Path, echo=click.echo) -> list[Path]:
    """Move artifacts that another checkpoint made out of ``art`` (into ``stale``, nothing is deleted).

    Parity checks every artifact in the folder against this run's checkpoint, so a rerun with new weights
    would otherwise fail on the previous weights' files. The conversion markers go too, so every
    conversion reruns. Returns the moved artifacts."""
    if not art.is_dir() or not checkpoint.is_file():
        return []
    from slfm.artifact import read_sidecar, sidecar_path
    from slfm.checkpoint import file_sha256
    from slfm.device_tests.parity import SUFFIXES

    sha = file_sha256(checkpoint)
    moved = []
    for artifact in sorted(q for q in art.iterdir() if q.suffix in SUFFIXES):  # what parity would check
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


def run_steps(steps: list[Step], out: Path, force: bool = False, echo=click.echo) -> dict:
    """Run (or skip) each step in order; returns the state written to ``out/steps.json``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    state_path = out / STATE
    recorded = json.loads(state_path.read_text()) if state_path.exists() else {}
    for i, step in enumerate(steps, 1):
        head = f"[{i}/{len(steps)}] {step.name}"
        if not force and up_to_date(step, recorded):
            echo(f"{head}: up to date, skipped ({step.command})")
            recorded[step.name]["skipped"] = True
            continue
        echo(f"{head}: {step.command}")
        log = out / "logs" / f"{step.name}.log"
        t0 = time.perf_counter()
        with open(log, "w") as f:
            proc = subprocess.run([sys.executable, "-m", "slfm.cli", *step.args], stdout=f, stderr=subprocess.STDOUT)
        seconds = round(time.perf_counter() - t0, 1)
        ok = proc.returncode == 0 and (not step.check_outputs or all(p.exists() for p in step.outputs))
        recorded[step.name] = {
            "command": step.command,
            "status": "done" if ok else "failed",
            "seconds": seconds,
            "log": str(log),
            "skipped": False,
        }
        state_path.write_text(json.dumps(recorded, indent=1) + "\n")
        if not ok:
            tail = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()][-1:] or ["(no output)"]
            raise SlfmError(
                f"pipeline step '{step.name}' failed (exit {proc.returncode}): {tail[0]} -- full log: "
                f"{log}; outputs of earlier steps are kept in {out}"
            )
        echo(f"{head}: done in {seconds} s")
    state_path.write_text(json.dumps(recorded, indent=1) + "\n")
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
            ["convert", str(checkpoint), *to, "--precision", "fp32", "--out", str(art)],
            [art / f"fp32-{fmt}.done" for fmt in formats],  # convert writes one marker per format made
            [checkpoint],
        )
    )
    int8_formats = [f for f in formats if f in ("tflite", "executorch")]
    if data is not None and qat_epochs > 0:
        qat_out = out / "qat"
        args = [
            "qat",
            str(checkpoint),
            "--data",
            str(data),
            "--dataset",
            kind,
            "--epochs",
            str(qat_epochs),
            "--out",
            str(qat_out),
            # the settings measured best here (reports/artifacts.md): a small lr with BatchNorm frozen
            "--lr",
            "1e-5",
            "--freeze-bn",
        ]
        if qat_limit:
            args += ["--limit", str(qat_limit)]
        steps.append(Step("qat", args, [qat_out / "qat.pt"], [checkpoint]))
        for fmt in int8_formats:
            steps.append(
                Step(
                    f"convert-int8-{fmt}",
                    [
                        "convert",
                        str(checkpoint),
                        "--to",
                        fmt,
                        "--precision",
                        "int8",
                        "--qat",
                        str(qat_out / "qat.pt"),
                        "--out",
                        str(art),
                    ],
                    [art / f"int8-{fmt}.done"],
                    [qat_out / "qat.pt"],
                )
            )
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
        parity += ["--data", f"{kind}:{data}"]
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
@click.option("--dataset", "kind", type=click.Choice(["aizoo", "moxa3k", "voc"]), default="moxa3k", show_default=True)
@click.option("--train-epochs", type=int, default=0, show_default=True, help="train first (0: start from weights)")
@click.option("--qat-epochs", type=int, default=2, show_default=True)
@click.option("--qat-limit", type=int, default=None, help="QAT on the first N training images")
@click.option("--formats", default="tflite,coreml,executorch", show_default=True)
@click.option(
    "--target",
    "targets",
    multiple=True,
    default=["local"],
    show_default=True,
    help="parity target(s): local, ssh://user@host[:port], adb[:serial], macos",
)
@click.option("--parity-limit", type=int, default=50, show_default=True, help="images per dataset for parity")
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/pipeline"), show_default=True)
@click.option("--force", is_flag=True, help="rerun every step even when its outputs are up to date")
def pipeline(
    checkpoint, data, kind, train_epochs, qat_epochs, qat_limit, formats, targets, parity_limit, threads, out, force
):
    """The main job: (train) -> QAT -> convert to every format and precision -> parity -> one report."""
    if data is not None and not Path(data).exists():
        raise SlfmError(f"--data: folder not found: {data}")
    fmts = [f.strip() for f in formats.split(",") if f.strip()]
    steps = plan(
        out, checkpoint, data, kind, train_epochs, qat_epochs, qat_limit, fmts, list(targets), parity_limit, threads
    )
    if data is None:
        click.echo("no --data: QAT and mAP need labelled images; running fp32 conversion and parity on real photos")
    convert = next(s for s in steps if s.name == "convert-fp32")
    retire_stale_artifacts(out / "artifacts", convert.inputs[0], out / "stale" / time.strftime("%Y%m%d-%H%M%S"))
    run_steps(steps, out, force)
    report = out / "report.md"
    click.echo(report.read_text() if report.exists() else f"done: {out}")
