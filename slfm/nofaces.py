"""``slfm bench nofaces``: what each model reports where there is no face (blank, gray, noise frames at several
sizes, photos without people: :func:`slfm.negatives.no_face_probes`), at the demo's thresholds.

A covered camera or an empty room should show nothing; a model trained without negatives reported a "mask"
at 0.97 on a black frame. The report lists, per model, every probe with a detection at or above the demo
threshold and its highest score.
"""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from slfm.options import IMAGE_SIZE, OUT_DIR, threads_option
from slfm.postprocess import DEMO, PostprocessConfig


def bundled_names() -> list[str]:
    from slfm.checkpoint import BUNDLED

    return list(BUNDLED)


@dataclass
class NoFaceConfig:
    models: list[str] = field(default_factory=bundled_names)  # checkpoints, bundled names, artifacts
    threshold: float = DEMO.score_threshold
    out: Path = Path("reports/nofaces")
    size: int | None = None  # letterbox input of a checkpoint (None: its own); an artifact keeps its contract's
    threads: int = 1


def run_nofaces(cfg: NoFaceConfig) -> dict:
    """{"models": [{model, input_size, probes: {name: highest score}, hits: [names >= threshold]}], ...}"""
    from slfm.evaluate import machine
    from slfm.negatives import no_face_probes
    from slfm.runnable import RunOptions, load_runnable

    probes = no_face_probes()
    low = PostprocessConfig(score_threshold=0.02, nms_iou=DEMO.nms_iou, cross_class_iou=DEMO.cross_class_iou)
    rows = []
    for name in cfg.models:
        opts = RunOptions(size=cfg.size, threads=cfg.threads)
        r = load_runnable(name, opts)
        pred = r.predictor(opts, low)
        scores = {}
        for probe, image in probes.items():
            d = pred(image)
            scores[probe] = round(float(d.scores.max()), 4) if len(d.scores) else 0.0
        hits = [p for p, s in scores.items() if s >= cfg.threshold]
        rows.append({"model": str(name), "input_size": r.input_size(opts), "probes": scores, "hits": hits})
    return {
        "command": "slfm bench nofaces " + shlex.join(sys.argv[3:]) if len(sys.argv) > 2 else "",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "threshold": cfg.threshold,
        "probes": list(probes),
        "models": rows,
    }


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Detections where there is no face",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}; machine: {m['processor']}, Python {m['python']}, torch {m['torch']}  ",
        f"Probes ({len(report['probes'])}): black, white, gray and uniform-noise frames at 1x1, 64x64, 640x480 and "
        "1280x720, and scikit-image photos without people that no model trains on (slfm.negatives.HELD_OUT_PHOTOS). "
        f"A probe fails when any detection scores >= {report['threshold']:g} (the demo threshold; demo NMS).",
        "",
        "| model | input | probes failed | highest score | failed probes |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for r in report["models"]:
        top = max(r["probes"].values()) if r["probes"] else 0.0
        shown = ", ".join(f"{p} ({r['probes'][p]:.2f})" for p in r["hits"]) or "none"
        lines.append(
            f"| {r['model']} | {r['input_size']} | {len(r['hits'])}/{len(r['probes'])} | {top:.2f} | {shown} |"
        )
    return "\n".join(lines) + "\n"


@click.command("nofaces")
@click.argument("models", nargs=-1)
@click.option("--threshold", type=click.FloatRange(0, 1), default=DEMO.score_threshold, show_default=True)
@click.option(
    "--size",
    type=IMAGE_SIZE,
    default=None,
    help="letterbox input for checkpoints, e.g. the size a candidate ships at  [default: each checkpoint's own; "
    "an artifact keeps its contract's]",
)
@click.option("--out", type=OUT_DIR, default=Path("reports/nofaces"), show_default=True, help="report stem")
@threads_option
def nofaces(models, threshold, size, out, threads):
    """Detections of MODELS (checkpoints, bundled names, artifacts; default: the bundled ones) on inputs with no
    face: blank, gray and noise frames at several sizes, and photos without people -> OUT.json / OUT.md."""
    from slfm.bench import write

    cfg = NoFaceConfig(list(models) or NoFaceConfig().models, threshold, Path(out), size, threads or 1)
    report = run_nofaces(cfg)
    write(report, cfg.out, markdown(report))
    for r in report["models"]:
        click.echo(f"{r['model']}: {len(r['hits'])}/{len(r['probes'])} probes with a detection >= {threshold:g}")
    click.echo(f"report: {cfg.out.with_suffix('.md')}")
