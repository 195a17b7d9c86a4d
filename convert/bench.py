"""``slfm bench artifacts``: every on-device artifact of one checkpoint, measured on this CPU.

Builds (or reuses, when its inputs are unchanged) fp32, int8-PTQ and int8-QAT artifacts for TFLite and
ExecuTorch, plus Core ML fp16 / int8-weights (size only: Core ML runs on Apple systems), then reports per
artifact its size, batch-1 latency at 1 and 2 threads and mAP@0.5 on a labelled split, beside the PyTorch fp32
reference. Latency is timed in interleaved rounds (one call per artifact per round) so that load from other
processes spreads evenly over the artifacts compared. Writes JSON + Markdown + a PNG chart naming the machine
and the exact command.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import click
import numpy as np

from slfm.options import NON_NEGATIVE, POSITIVE, POSITIVE_FLOAT

RUNNABLE = ("tflite", "executorch")


def _key(**kw) -> str:
    return hashlib.sha256(json.dumps(kw, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Cache:
    """``work/manifest.json``: step -> (key of its inputs, outputs); a step reruns when either changed."""

    def __init__(self, work: Path, rebuild: bool) -> None:
        self.path = work / "manifest.json"
        self.rebuild = rebuild
        self.data = json.loads(self.path.read_text()) if self.path.exists() and not rebuild else {}

    def get(self, step: str, key: str) -> list[Path] | None:
        rec = self.data.get(step)
        if rec and rec["key"] == key and all(Path(p).exists() for p in rec["outputs"]):
            return [Path(p) for p in rec["outputs"]]
        return None

    def put(self, step: str, key: str, outputs: list[Path], **info) -> None:
        self.data[step] = {"key": key, "outputs": [str(p) for p in outputs], **info}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=1) + "\n")


def size_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def build(opts: dict, echo=click.echo) -> dict:
    """{label: artifact path} and the quantization budgets, building only what the cache lacks."""
    from slfm.checkpoint import bundled_qat, file_sha256, load_model, read_data
    from slfm.convert.api import convert
    from slfm.convert.forms import FORMS_VERSION
    from slfm.fingerprint import code_fingerprint
    from slfm.quantize.calibrate import calibration_batches, ptq
    from slfm.quantize.qat import QATConfig, qat, trained_recipe
    from slfm.quantize.quantized import save_quantized
    from slfm.voc import load_dataset

    work, ckpt = opts["work"], opts["checkpoint"]
    cache = Cache(work, opts["rebuild"])
    base = {"checkpoint": file_sha256(ckpt), "forms": FORMS_VERSION, "code": code_fingerprint()}
    model, fp32_ckpt = load_model(ckpt)

    def samples():
        return load_dataset(opts["data"], opts["kind"], "train")

    def step(name, key, make):
        got = cache.get(name, key)
        if got is not None:
            echo(f"reuse {name}: {', '.join(p.name for p in got)}")
            return got
        echo(f"build {name} ...")
        t0 = time.perf_counter()
        outs = make()
        cache.put(name, key, outs, seconds=round(time.perf_counter() - t0, 1))
        return outs

    arts: dict[str, Path] = {}
    tfl, pte = step("fp32", _key(**base), lambda: convert(ckpt, list(RUNNABLE), "fp32", work / "fp32"))
    arts["tflite fp32"], arts["executorch fp32"] = tfl, pte
    for precision in ("fp16", "int8"):
        (ml,) = step(f"coreml-{precision}", _key(**base), lambda p=precision: convert(ckpt, ["coreml"], p, work / p))
        arts[f"coreml {precision}" + (" (weights)" if precision == "int8" else "")] = ml

    ptq_key = _key(**base, calib=opts["calib"])

    def make_ptq():
        batches = calibration_batches(samples(), model, opts["calib"])
        pm, source = ptq(model, batches, total=-(-opts["calib"] // 8))
        return [save_quantized(work / "ptq" / "ptq.pt", pm, source, "ptq", ["xnnpack", "litert"], calib=opts["calib"])]

    (ptq_ckpt,) = step("ptq", ptq_key, make_ptq)
    qcfg = None
    bundled = bundled_qat(ckpt) if not opts["qat_epochs"] else None
    if bundled is not None:
        qat_ckpt, qat_key = bundled, _key(**base, qat=file_sha256(bundled))
        echo(f"QAT: the bundled {bundled.name} (--qat-epochs N trains one here)")
    else:
        from slfm.quantize.cli import default_splits

        qcfg = QATConfig(
            epochs=opts["qat_epochs"] or QATConfig.epochs,
            limit=opts["qat_limit"],
            lr=opts["qat_lr"],
            **trained_recipe(fp32_ckpt),  # the weights' own data recipe (whole-image share, class balance)
        )
        fit, holdout = default_splits(opts["kind"], None, None)
        qat_key = _key(**base, qat=asdict(qcfg), splits=[fit, holdout])

        def make_qat():
            train = load_dataset(opts["data"], opts["kind"], fit)
            val = load_dataset(opts["data"], opts["kind"], holdout) if holdout else None
            out = work / "qat" / "qat.pt"
            return [qat(model, train, qcfg, ["xnnpack", "litert"], out, val, source_checkpoint=str(ckpt))]

        (qat_ckpt,) = step("qat", qat_key, make_qat)
    q = read_data(qat_ckpt)
    qat_info = {"checkpoint": str(qat_ckpt), **q.get("qat_config", {}), "best_epoch": q.get("best_epoch")}
    for mode, qck, key in (("ptq", ptq_ckpt, ptq_key), ("qat", qat_ckpt, qat_key)):
        tfl, pte = step(
            f"int8-{mode}",
            _key(parent=key),
            lambda q=qck, m=mode: convert(ckpt, list(RUNNABLE), "int8", work / f"int8-{m}", qat=q),
        )
        arts[f"tflite int8 {mode.upper()}"], arts[f"executorch int8 {mode.upper()}"] = tfl, pte
    return {"artifacts": arts, "qat_config": qat_info, "calib": opts["calib"]}


def _test_input(samples, config) -> np.ndarray:
    from slfm.images import read_image
    from slfm.predictor import prepare

    return prepare(read_image(samples[0].image, quiet=True), config)[0]


def latency(runners: dict, x: np.ndarray, runs: int, warmup: int) -> dict:
    """{label: latency_stats} from interleaved rounds: each round calls every runner once."""
    from slfm.bench import latency_stats

    for fn in runners.values():
        for _ in range(warmup):
            fn(x)
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(runs):
        for k, fn in runners.items():
            t = time.perf_counter()
            fn(x)
            times[k].append(time.perf_counter() - t)
    return {k: latency_stats(v) for k, v in times.items()}


def latency_in_subprocess(spec: dict, x: np.ndarray) -> dict:
    """Run :func:`latency` in a fresh process per thread count: ExecuTorch sizes its threadpool once per
    process (see :func:`slfm.convert.runtimes._et_threads`), and a fresh process starts from the same state."""
    import subprocess
    import tempfile

    from slfm.errors import SlfmError

    with tempfile.TemporaryDirectory(prefix="slfm-bench-") as tmp:
        np.save(Path(tmp) / "x.npy", x)
        (Path(tmp) / "spec.json").write_text(json.dumps({**spec, "input": str(Path(tmp) / "x.npy")}))
        cmd = [sys.executable, "-m", "slfm.convert.bench", str(Path(tmp) / "spec.json"), str(Path(tmp) / "out.json")]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            tail = (r.stderr.strip().splitlines() or ["?"])[-1]
            raise SlfmError(f"latency worker failed ({spec['threads']} threads): {tail}")
        return json.loads((Path(tmp) / "out.json").read_text())


def _latency_worker(spec_path: str, out_path: str) -> None:
    import torch

    from slfm.checkpoint import load_model
    from slfm.convert.runtimes import load_runner

    spec = json.loads(Path(spec_path).read_text())
    torch.set_num_threads(spec["threads"])
    model, _ = load_model(spec["checkpoint"])

    def torch_run(x):
        with torch.no_grad():
            return model(torch.from_numpy(x))

    runners = {
        k: torch_run if path is None else load_runner(path, threads=spec["threads"])
        for k, path in spec["artifacts"].items()
    }
    res = latency(runners, np.load(spec["input"]), spec["runs"], spec["warmup"])
    Path(out_path).write_text(json.dumps(res))


def measure(opts: dict, built: dict, echo=click.echo) -> tuple[list[dict], int]:
    """(one row per model, number of images mAP was computed on)."""
    import torch

    from slfm.artifact import read_sidecar
    from slfm.checkpoint import load_model
    from slfm.convert.runtimes import load_runner
    from slfm.evaluate import evaluate_samples, paired_bootstrap_delta
    from slfm.postprocess import EVAL
    from slfm.predictor import Predictor
    from slfm.voc import load_dataset

    model, _ = load_model(opts["checkpoint"])
    config = model.config
    test = load_dataset(opts["data"], opts["kind"], opts["split"], limit=opts["limit"])
    x = _test_input(test, config)
    rows = {"pytorch fp32": {"model": "pytorch fp32", "format": "pytorch", "precision": "fp32", "quantization": None}}
    rows["pytorch fp32"]["size_bytes"] = Path(opts["checkpoint"]).stat().st_size
    for label, path in built["artifacts"].items():
        meta = read_sidecar(path)
        rows[label] = {
            "model": label,
            "format": meta.format,
            "precision": meta.precision,
            "quantization": meta.quantization,
            "artifact": str(path),
            "size_bytes": size_bytes(path),
            "runs_here": meta.format in RUNNABLE,
        }

    runnable = [k for k, r in rows.items() if r.get("runs_here", True)]
    for threads in opts["threads"]:
        echo(f"latency, {threads} thread(s): {opts['runs']} interleaved rounds over {len(runnable)} models")
        spec = {
            "checkpoint": str(opts["checkpoint"]),
            "artifacts": {k: rows[k].get("artifact") for k in runnable},
            "threads": threads,
            "runs": opts["runs"],
            "warmup": opts["warmup"],
        }
        for k, stats in latency_in_subprocess(spec, x).items():
            rows[k].setdefault("latency_ms", {})[str(threads)] = stats
    torch.set_num_threads(max(opts["threads"]))
    dets, kept = {}, test
    for k in runnable:
        det = model if k.startswith("pytorch") else load_runner(rows[k]["artifact"], threads=max(opts["threads"]))
        r = evaluate_samples(Predictor(det, config, post=EVAL), test, desc=f"mAP {k}", keep_detections=True)
        dets[k], kept = r["detections"], r["samples"]  # every model reads (and skips) the same images
        rows[k].update(map50=r["map50"], ap50=r["ap50"])
        echo(f"{k}: mAP@0.5 {r['map50']:.4f}")
    boxes, labels = [s.boxes for s in kept], [s.labels for s in kept]
    for k in runnable:  # the change against PyTorch fp32 and how far it moves over resampled test sets
        if k != "pytorch fp32" and opts.get("bootstrap"):
            spread = paired_bootstrap_delta(dets["pytorch fp32"], dets[k], boxes, labels, opts["bootstrap"])
            rows[k]["delta_map50_bootstrap"] = spread
    return list(rows.values()), len(test)


def targets(rows: list[dict]) -> list[dict]:
    """The three targets of the int8 work, each with the numbers behind it and pass/fail."""
    by = {r["model"]: r for r in rows}

    def p50(k, t="1"):
        return by[k]["latency_ms"][t]["p50"]

    out = []
    for fmt in RUNNABLE:
        fp32, qat = by[f"{fmt} fp32"]["map50"], by[f"{fmt} int8 QAT"]["map50"]
        ptq = by[f"{fmt} int8 PTQ"]["map50"]
        out.append(
            {
                "target": f"{fmt} int8-QAT mAP within 1 point of {fmt} fp32",
                "value": f"{100 * (qat - fp32):+.2f} points ({100 * qat:.2f} vs {100 * fp32:.2f})",
                "passed": qat >= fp32 - 0.01,
            }
        )
        out.append(
            {
                "target": f"{fmt} int8-QAT ahead of int8-PTQ",
                "value": f"{100 * (qat - ptq):+.2f} points ({100 * qat:.2f} vs {100 * ptq:.2f})",
                "passed": qat > ptq,
            }
        )
    for mode in ("PTQ", "QAT"):
        s = p50("tflite fp32") / p50(f"tflite int8 {mode}")
        out.append(
            {
                "target": f"TFLite int8 ({mode}) >= 1.5x faster than TFLite fp32, 1 thread",
                "value": f"{s:.2f}x ({p50(f'tflite int8 {mode}'):.2f} vs {p50('tflite fp32'):.2f} ms p50)",
                "passed": s >= 1.5,
            }
        )
    for prec in ("fp32", "int8 QAT"):
        for t in by["tflite fp32"]["latency_ms"]:
            r = p50(f"executorch {prec}", t) / p50(f"tflite {prec}", t)
            out.append(
                {
                    "target": f"ExecuTorch {prec} within 1.25x of TFLite {prec}, {t} thread(s)",
                    "value": f"{r:.2f}x ({p50(f'executorch {prec}', t):.2f} vs {p50(f'tflite {prec}', t):.2f} ms p50)",
                    "passed": r <= 1.25,
                }
            )
    return out


def markdown(report: dict) -> str:
    m, o = report["machine"], report["options"]
    threads = [str(t) for t in o["threads"]]
    q = report["qat_config"]
    lines = [
        f"# On-device artifacts of SL-FMDet {report['image_size']}: size, latency, mAP on this CPU",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}  ",
        f"Machine: {m['processor']} ({m['cpu_count']} CPUs), {m['platform']}, Python {m['python']}, "
        f"torch {m['torch']}; 1-min load average at the start {m['load_average_1min']}, at the end "
        f"{report['load_average_end']}  ",
        f"Checkpoint: `{report['checkpoint']}` (sha256 {report['checkpoint_sha256'][:12]})  ",
        f"mAP: VOC AP@0.5 (all-point), {report['eval_images']} images of {o['kind']} {o['split']}, "
        "score threshold 0.02, letterbox input  ",
        f"Latency: batch 1, one real image, {o['runs']} interleaved rounds after {o['warmup']} warm-up calls; "
        "pre/post-processing excluded  ",
        f"Quantization: PTQ calibrated on {report['calib']} train images; QAT checkpoint `{q['checkpoint']}` "
        f"({q.get('epochs')} epoch(s) on {q.get('limit') or 'all'} training images, Adam lr {q.get('lr')} cosine, "
        f"BatchNorm {'frozen' if q.get('freeze_bn') else 'training'}, activation ranges {q.get('act_ranges', 'ema')} "
        f"from {q.get('calib')} images; epoch {q.get('best_epoch')} picked on the holdout split)  ",
        f"vs PyTorch: mAP@0.5 change in points; in brackets its std over {o.get('bootstrap') or 0} paired "
        "resamples of the test images",
        "",
        "| model | format | precision | quantization | size (KB) | "
        + " | ".join(f"p50 ms {t}T" for t in threads)
        + " | mAP@0.5 | vs PyTorch |",
        "| --- | --- | --- | --- | ---: | " + " | ".join("---:" for _ in threads) + " | ---: | ---: |",
    ]
    ref = next(r["map50"] for r in report["rows"] if r["format"] == "pytorch")
    for r in report["rows"]:
        lat = [f"{r['latency_ms'][t]['p50']:.2f}" if "latency_ms" in r else "n/a (macOS)" for t in threads]
        mp = f"{100 * r['map50']:.2f}" if r.get("map50") is not None else "n/a"
        d = f"{100 * (r['map50'] - ref):+.2f}" if r.get("map50") is not None else ""
        if r.get("delta_map50_bootstrap"):
            d += f" (±{100 * r['delta_map50_bootstrap']['std']:.2f})"
        lines.append(
            f"| {r['model']} | {r['format']} | {r['precision']} | {r['quantization'] or ''} | "
            f"{r['size_bytes'] / 1024:.0f} | " + " | ".join(lat) + f" | {mp} | {d} |"
        )
    lines += ["", "## Targets", "", "| target | measured | met |", "| --- | --- | --- |"]
    for t in report["targets"]:
        lines.append(f"| {t['target']} | {t['value']} | {'yes' if t['passed'] else '**no**'} |")
    busy = m["load_average_1min"] >= m["cpu_count"]  # others' load at the start (the end includes this run)
    lines += [
        "",
        (
            f"**This CPU was oversubscribed during the run** (1-min load {m['load_average_1min']} to "
            f"{report['load_average_end']} on {m['cpu_count']} CPUs): the multi-thread columns measure "
            "contention, not scaling; compare artifacts within a column."
            if busy
            else ""
        ),
        "",
        "Notes: mAP in points (x100). The CPU is shared with whatever else runs (see load average): absolute "
        "latencies are upper bounds, ratios between artifacts are fairer (interleaved rounds). Core ML "
        "prediction needs macOS, so its artifacts are listed for size only.",
        "",
        f"![latency and mAP]({report['chart']})",
        "",
    ]
    return "\n".join(lines)


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["rows"] if "latency_ms" in r]
    names = [r["model"] for r in rows]
    threads = [str(t) for t in report["options"]["threads"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), dpi=120)
    w = 0.8 / len(threads)
    for i, t in enumerate(threads):
        a.barh(np.arange(len(rows)) + i * w, [r["latency_ms"][t]["p50"] for r in rows], w, label=f"{t} thread(s)")
    a.set_yticks(np.arange(len(rows)) + w * (len(threads) - 1) / 2, names)
    a.invert_yaxis()
    a.set(xlabel="p50 latency, ms (batch 1)", title="latency on this CPU")
    a.legend()
    maps = [100 * r["map50"] for r in rows]
    b.barh(np.arange(len(rows)), maps, color="tab:green")
    b.set_yticks(np.arange(len(rows)), names)
    b.invert_yaxis()
    b.set(xlabel="mAP@0.5 (points)", xlim=(max(0, min(maps) - 10), min(100, max(maps) + 3)), title="accuracy")
    for i, v in enumerate(maps):
        b.text(v, i, f" {v:.1f}", va="center")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@click.command()
@click.argument("checkpoint", required=False, default=None)
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=Path("../shared/data/moxa3k"),
    show_default=True,
    help="labelled dataset root (calibration, QAT and mAP)",
)
@click.option("--dataset", "kind", type=click.Choice(["aizoo", "moxa3k", "voc"]), default="moxa3k", show_default=True)
@click.option("--split", default="test", show_default=True, help="split for mAP")
@click.option("--limit", type=POSITIVE, default=None, help="mAP on the first N images of the split (default: all)")
@click.option("--calib", type=POSITIVE, default=128, show_default=True, help="PTQ calibration images (train split)")
@click.option(
    "--qat-epochs",
    type=NON_NEGATIVE,
    default=0,
    show_default=True,
    help="train QAT here for N epochs (0: the bundled QAT checkpoint of bundled weights, else QAT's default)",
)
@click.option("--qat-limit", type=NON_NEGATIVE, default=0, show_default=True, help="QAT on N images (0: all)")
@click.option("--qat-lr", type=POSITIVE_FLOAT, default=1e-4, show_default=True, help="QAT lr (Adam, cosine)")
@click.option("--bootstrap", type=NON_NEGATIVE, default=200, show_default=True, help="paired resamples for each ΔmAP")
@click.option("--runs", type=POSITIVE, default=30, show_default=True, help="timed rounds per thread setting")
@click.option("--warmup", type=NON_NEGATIVE, default=3, show_default=True)
@click.option("--threads", default="1,2", show_default=True, help="thread counts to time, comma-separated")
@click.option(
    "--work",
    type=click.Path(path_type=Path),
    default=Path("runs/bench-artifacts"),
    show_default=True,
    help="where artifacts and quantized checkpoints are built (reused while their inputs are unchanged)",
)
@click.option("--rebuild", is_flag=True, help="rebuild every artifact even if the work folder has it")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("reports/artifacts_moxa3k"),
    show_default=True,
    help="report path without suffix (.json, .md and .png are written)",
)
def artifacts(
    checkpoint,
    data,
    kind,
    split,
    limit,
    calib,
    qat_epochs,
    qat_limit,
    qat_lr,
    bootstrap,
    runs,
    warmup,
    threads,
    work,
    rebuild,
    out,
):
    """Size, latency (1 and 2 threads) and mAP of fp32 / int8-PTQ / int8-QAT TFLite and ExecuTorch artifacts
    (+ Core ML sizes) of CHECKPOINT (default: the bundled weights for --dataset), beside PyTorch fp32."""
    from slfm.checkpoint import file_sha256, load_model, resolve_checkpoint
    from slfm.errors import SlfmError
    from slfm.evaluate import machine

    if not Path(data).exists():
        raise SlfmError(f"--data {data}: folder not found (mAP, calibration and QAT need a labelled dataset)")
    ckpt = resolve_checkpoint(checkpoint, kind)
    try:
        thread_list = sorted({int(t) for t in threads.split(",") if t.strip()})
    except ValueError:
        raise SlfmError(f"--threads {threads!r}: expected comma-separated integers such as 1,2") from None
    opts = {
        "checkpoint": ckpt,
        "data": Path(data),
        "kind": kind,
        "split": split,
        "limit": limit,
        "calib": calib,
        "qat_epochs": qat_epochs,
        "qat_limit": qat_limit or None,
        "qat_lr": qat_lr,
        "bootstrap": bootstrap,
        "runs": runs,
        "warmup": warmup,
        "threads": thread_list,
        "work": Path(work),
        "rebuild": rebuild,
    }
    started = time.strftime("%Y-%m-%d %H:%M")
    mach = machine()
    built = build(opts)
    rows, n_eval = measure(opts, built)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "command": "slfm bench artifacts " + shlex.join(sys.argv[3:]),
        "date": started,
        "machine": mach,
        "load_average_end": round(os.getloadavg()[0], 2),
        "checkpoint": str(ckpt),
        "checkpoint_sha256": file_sha256(ckpt),
        "image_size": load_model(ckpt)[0].config.image_size,
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in opts.items()},
        "eval_images": n_eval,
        "calib": built["calib"],
        "qat_config": built["qat_config"],
        "rows": rows,
        "chart": out.with_suffix(".png").name,
    }
    report["targets"] = targets(rows)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    chart(report, out.with_suffix(".png"))
    out.with_suffix(".md").write_text(markdown(report))
    click.echo(out.with_suffix(".md").read_text())


if __name__ == "__main__":  # the latency worker (see latency_in_subprocess)
    _latency_worker(sys.argv[1], sys.argv[2])
