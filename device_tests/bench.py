"""``slfm bench artifacts``: every on-device artifact of one checkpoint, measured on this CPU.

Builds (or reuses, when its inputs are unchanged) fp32, int8-PTQ and int8-QAT artifacts for TFLite and
ExecuTorch, plus Core ML fp16 / int8-weights (size only: Core ML runs on Apple systems), then reports per
artifact its size, batch-1 latency at 1 and 2 threads and mAP@0.5 on a labelled split, beside the PyTorch fp32
reference. Latency is timed in interleaved rounds (one call per artifact per round) so that load from other
processes spreads evenly over the artifacts compared. Writes JSON + Markdown + a PNG chart naming the machine
and the exact command.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np

from slfm.config_cli import config_options, opt
from slfm.device_tests.report import targets_table
from slfm.formats import FORMATS, PRECISIONS, format_of
from slfm.formats import NAMES as FORMAT_NAMES
from slfm.layouts import KINDS
from slfm.manifest import Manifest, step_key
from slfm.options import FRACTION, NON_NEGATIVE, POSITIVE, POSITIVE_FLOAT, choices_option, limit_option, repeated_option
from slfm.outputs import shown_path

RUNNABLE = tuple(n for n, f in FORMATS.items() if not f.platforms)  # formats that run on any CPU (Core ML: macOS)
INT8_SOURCES = ("ptq", "qat")


def _key(**kw) -> str:
    """The cache key of one bench build: its settings (the checkpoint's hash and slfm's code among them)."""
    return step_key("bench", kw, [], code=kw.get("code"))


def size_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


@dataclass(frozen=True)
class Row:
    """One row of the matrix: ``fmt`` x ``precision``, int8 from ``int8`` (ptq | qat), or an existing file."""

    label: str
    fmt: str
    precision: str
    int8: str | None = None
    artifact: Path | None = None  # given with --artifact: not built here


def matrix(formats: list[str], precisions: list[str], int8: list[str]) -> list[Row]:
    """Every (format, precision) that :func:`slfm.convert.api.supports`, in the converters' table order; int8
    once per source (TFLite / ExecuTorch: PTQ and QAT graphs; Core ML: int8 weights)."""
    from slfm.convert.api import supports

    rows = []
    for fmt in FORMAT_NAMES:
        if fmt not in formats:
            continue
        for p in PRECISIONS:
            if p not in precisions or supports(fmt, p) is not None:
                continue
            if p != "int8":
                rows.append(Row(f"{fmt} {p}", fmt, p))
            elif not FORMATS[fmt].int8_graph:
                rows.append(Row(f"{fmt} int8 (weights)", fmt, p))
            else:
                rows += [Row(f"{fmt} int8 {m.upper()}", fmt, p, m) for m in INT8_SOURCES if m in int8]
    return rows


def one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split()) or type(e).__name__
    return msg if len(msg) <= 240 else msg[:237] + "..."


def build(opts: dict, echo=click.echo) -> dict:
    """{label: artifact path} for every row that exported, {label: reason} for those that failed, and the
    quantization budgets; builds only what the cache lacks. One row failing (its converter, its PTQ
    calibration or its QAT checkpoint) fails that row alone."""
    from slfm.checkpoint import file_sha256, load_model
    from slfm.convert.api import convert
    from slfm.fingerprint import code_fingerprint
    from slfm.forms import FORMS_VERSION
    from slfm.quantize.calibrate import PTQJob, ptq_job

    work, ckpt = opts["work"], opts["checkpoint"]
    cache = Manifest(work)  # work/manifest.json: the one cache (slfm.manifest)
    if opts["rebuild"]:
        cache.drop()
    base = {"checkpoint": file_sha256(ckpt), "forms": FORMS_VERSION, "code": code_fingerprint()}
    _, fp32_ckpt = load_model(ckpt)  # validated; its training recipe keys the QAT build
    rows: list[Row] = opts["rows"]

    def step(name, key, make):
        got = cache.up_to_date(name, key)
        if got is not None:
            echo(f"reuse {name}: {', '.join(p.name for p in got)}")
            return got
        echo(f"build {name} ...")
        t0 = time.perf_counter()
        outs = make()
        cache.record(name, key, outs, seconds=round(time.perf_counter() - t0, 1))
        return outs

    sources: dict[str, tuple[Path, str] | BaseException] = {}  # int8 source -> (quantized checkpoint, key)
    qat_info: dict = {}
    if any(r.int8 == "ptq" for r in rows):
        ptq_key = _key(**base, calib=opts["calib"])

        def make_ptq():  # what `slfm ptq` makes, with the same defaults
            job = PTQJob(str(ckpt), Path(opts["data"]), opts["kind"], calib=opts["calib"], out=work / "ptq")
            return [ptq_job(job, echo)]

        try:
            sources["ptq"] = (step("ptq", ptq_key, make_ptq)[0], ptq_key)
        except Exception as e:  # a failed step is a failed row, reported with its reason
            sources["ptq"] = e
    if any(r.int8 == "qat" for r in rows):
        try:
            sources["qat"], qat_info = _qat_source(opts, base, fp32_ckpt, step, echo)
        except Exception as e:
            sources["qat"] = e
    arts: dict[str, Path] = {}
    failed: dict[str, str] = {}
    for r in rows:
        if r.artifact is not None:
            arts[r.label] = r.artifact
            continue
        src = sources.get(r.int8) if r.int8 else None
        if isinstance(src, BaseException):
            failed[r.label] = f"export: {r.int8.upper()} checkpoint: {one_line(src)}"
            echo(f"{r.label}: failed: {failed[r.label]}")
            continue
        qck, parent = src if src else (None, None)
        key = _key(**base, fmt=r.fmt, precision=r.precision, parent=parent)
        folder = work / (f"int8-{r.int8}" if r.int8 else r.precision)  # as before: parity takes int8-qat/
        try:
            (arts[r.label],) = step(
                r.label, key, lambda r=r, q=qck, f=folder: convert(ckpt, [r.fmt], r.precision, f, qat=q)
            )
        except Exception as e:
            failed[r.label] = f"export: {one_line(e)}"
            echo(f"{r.label}: failed: {failed[r.label]}")
    return {"artifacts": arts, "failed": failed, "qat_config": qat_info, "calib": opts["calib"]}


def _qat_source(opts: dict, base: dict, fp32_ckpt: dict, step, echo=click.echo) -> tuple[tuple[Path, str], dict]:
    """(QAT checkpoint, its cache key) and how it was made: --qat, the bundled one, or trained here."""
    from slfm.checkpoint import bundled_qat, file_sha256, read_data
    from slfm.quantize.qat import QATConfig, QATJob, qat_job, trained_recipe

    ckpt = opts["checkpoint"]
    given = opts.get("qat") or (bundled_qat(ckpt) if not opts["qat_epochs"] else None)
    if given is not None:
        from slfm.quantize.quantized import read_quantized

        read_quantized(given)  # a clear error now (naming the file) rather than inside a converter
        qat_ckpt, qat_key = Path(given), _key(**base, qat=file_sha256(given))
        click.echo(f"QAT: {qat_ckpt.name} (--qat-epochs N trains one here)")
    else:  # what `slfm qat` makes (qat_job: the checkpoint's data recipe, fit / holdout splits), with this budget
        from slfm.manifest import config_json

        job = QATJob(
            str(ckpt),
            Path(opts["data"]),
            opts["kind"],
            out=opts["work"] / "qat",
            config=QATConfig(epochs=opts["qat_epochs"] or QATConfig.epochs, limit=opts["qat_limit"], lr=opts["qat_lr"]),
            command="slfm bench artifacts",
        )
        qat_key = _key(**base, qat=config_json(job), recipe=trained_recipe(fp32_ckpt))

        def make_qat():
            return [qat_job(job, echo)]

        (qat_ckpt,) = step("qat", qat_key, make_qat)
    q = read_data(qat_ckpt)
    info = {"checkpoint": shown_path(qat_ckpt), **q.get("qat_config", {}), "best_epoch": q.get("best_epoch")}
    return (qat_ckpt, qat_key), info


def _test_input(samples, config) -> np.ndarray:
    from slfm.core import prepare
    from slfm.images import read_image

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
    process (see :func:`slfm.device_tests.runtimes._et_threads`), and a fresh process starts from the same state."""
    import subprocess
    import tempfile

    from slfm.errors import SlfmError

    with tempfile.TemporaryDirectory(prefix="slfm-bench-") as tmp:
        np.save(Path(tmp) / "x.npy", x)
        (Path(tmp) / "spec.json").write_text(json.dumps({**spec, "input": str(Path(tmp) / "x.npy")}))
        cmd = [
            sys.executable,
            "-m",
            "slfm.device_tests.bench",
            str(Path(tmp) / "spec.json"),
            str(Path(tmp) / "out.json"),
        ]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            tail = (r.stderr.strip().splitlines() or ["?"])[-1]
            raise SlfmError(f"latency worker failed ({spec['threads']} threads): {tail}")
        return json.loads((Path(tmp) / "out.json").read_text())


def _latency_worker(spec_path: str, out_path: str) -> None:
    import torch

    from slfm.checkpoint import load_model
    from slfm.device_tests.runtimes import load_runner

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


def _runnable_here(fmt: str) -> bool:
    return FORMATS[fmt].runs_here


def measure(opts: dict, built: dict, echo=click.echo) -> tuple[list[dict], int]:
    """(one row per model with its status, number of images mAP was computed on). A row that fails to load or
    run is marked failed with the reason; the others are measured all the same."""
    import torch

    from slfm.checkpoint import load_model
    from slfm.device_tests.runtimes import load_runner, read_contract
    from slfm.device_tests.thresholds import load_thresholds
    from slfm.evaluate import evaluate_samples, paired_bootstrap_delta
    from slfm.postprocess import EVAL
    from slfm.predictor import Predictor
    from slfm.voc import load_dataset

    budgets = load_thresholds()  # the parity harness's mAP budget per precision decides "matches"
    model, _ = load_model(opts["checkpoint"])
    config = model.config
    test = load_dataset(opts["data"], opts["kind"], opts["split"], limit=opts["limit"])
    x = _test_input(test, config)
    rows = {"pytorch fp32": {"model": "pytorch fp32", "format": "pytorch", "precision": "fp32", "quantization": None}}
    rows["pytorch fp32"] |= {"size_bytes": Path(opts["checkpoint"]).stat().st_size, "status": "reference", "reason": ""}
    for r in opts["rows"]:
        rows[r.label] = {"model": r.label, "format": r.fmt, "precision": r.precision, "quantization": None}
        if r.label in built["failed"]:
            rows[r.label] |= {"status": "failed", "reason": built["failed"][r.label]}
            continue
        path = built["artifacts"][r.label]
        rows[r.label] |= {"artifact": str(path), "status": "exported", "reason": ""}
        try:
            meta = read_contract(path)
            rows[r.label] |= {"format": meta.format, "precision": meta.precision, "quantization": meta.quantization}
            rows[r.label]["size_bytes"] = size_bytes(path)
        except Exception as e:  # a broken file is a failed row, not a lost report
            rows[r.label] |= {"status": "failed", "reason": f"load: {one_line(e)}"}
            continue
        if not _runnable_here(meta.format):
            rows[r.label]["reason"] = f"{meta.format} runs on macOS only: exported, size measured"

    torch.set_num_threads(max(opts["threads"]))
    dets, kept, loaded = {}, test, []
    for k, row in rows.items():
        if row["status"] not in ("reference", "exported") or (k != "pytorch fp32" and row["reason"]):
            continue
        try:
            det = model if k == "pytorch fp32" else load_runner(row["artifact"], threads=max(opts["threads"]))
        except Exception as e:
            row |= {"status": "failed", "reason": f"load: {one_line(e)}"}
            echo(f"{k}: failed: {row['reason']}")
            continue
        if k != "pytorch fp32":
            row["status"] = "loads"
        try:
            r = evaluate_samples(Predictor(det, config, post=EVAL), test, desc=f"mAP {k}", keep_detections=True)
        except Exception as e:
            row |= {"status": "failed", "reason": f"run: {one_line(e)}"}
            echo(f"{k}: failed: {row['reason']}")
            continue
        dets[k], kept = r["detections"], r["samples"]  # every model reads (and skips) the same images
        row.update(map50=r["map50"], ap50=r["ap50"])
        loaded.append(k)
        echo(f"{k}: mAP@0.5 {r['map50']:.4f}")
    ref = rows["pytorch fp32"].get("map50")
    for k in loaded:
        row = rows[k]
        if k == "pytorch fp32" or ref is None:
            continue
        budget = budgets.get(row["precision"], budgets["fp32"])["max_map50_drop"]
        drop = ref - row["map50"]
        if drop <= budget:
            row["status"] = "matches"
        else:
            row["reason"] = (
                f"mAP {100 * drop:.2f} points under PyTorch fp32 (budget {100 * budget:.1f} for {row['precision']})"
            )

    for threads in opts["threads"]:
        echo(f"latency, {threads} thread(s): {opts['runs']} interleaved rounds over {len(loaded)} models")
        spec = {
            "checkpoint": str(opts["checkpoint"]),
            "artifacts": {k: rows[k].get("artifact") for k in loaded},
            "threads": threads,
            "runs": opts["runs"],
            "warmup": opts["warmup"],
        }
        try:
            res = latency_in_subprocess(spec, x)
        except Exception as e:  # the mAP and sizes stay; the rows say latency is missing
            for k in loaded:
                rows[k]["reason"] = "; ".join(filter(None, [rows[k]["reason"], f"latency: {one_line(e)}"]))
            continue
        for k, stats in res.items():
            rows[k].setdefault("latency_ms", {})[str(threads)] = stats
    if len(kept) and opts.get("bootstrap") and "pytorch fp32" in dets:
        boxes, labels = [s.boxes for s in kept], [s.labels for s in kept]
        for k in loaded:  # the change against PyTorch fp32 and how far it moves over resampled test sets
            if k != "pytorch fp32":
                spread = paired_bootstrap_delta(dets["pytorch fp32"], dets[k], boxes, labels, opts["bootstrap"])
                rows[k]["delta_map50_bootstrap"] = spread
        for fmt in RUNNABLE:  # "QAT ahead of PTQ" is a difference of two int8 rows: its own paired spread
            qat, ptq = f"{fmt} int8 QAT", f"{fmt} int8 PTQ"
            if qat in loaded and ptq in loaded:
                spread = paired_bootstrap_delta(dets[ptq], dets[qat], boxes, labels, opts["bootstrap"])
                rows[qat]["vs_ptq_bootstrap"] = spread
    return list(rows.values()), len(test)


def gate(rows: list[dict], min_map: float | None) -> list[str]:
    """The rows that fail the gate: every failed row, and with ``min_map`` every measured mAP under it."""
    bad = []
    for r in rows:
        if r.get("status") == "failed":
            bad.append(f"{r['model']} (failed: {r['reason']})")
        elif min_map is not None and r.get("map50") is not None and r["map50"] < min_map:
            bad.append(f"{r['model']} (mAP@0.5 {r['map50']:.4f})")
    return bad


def _spread(b: dict | None) -> str:
    """A paired bootstrap's spread in points, for a target's value: ``; ± std (p5 to p95) over N resamples``."""
    if not b:
        return ""
    return (
        f"; ± {100 * b['std']:.2f} ({100 * b['p5']:+.2f} to {100 * b['p95']:+.2f}, p5-p95) over {b['resamples']} "
        "paired resamples"
    )


def targets(rows: list[dict]) -> list[dict]:
    """The three targets of the int8 work, each with the numbers behind it and pass/fail; a target whose rows
    failed or were not asked for is "not measured" (``passed`` None), never a silent pass."""
    by = {r["model"]: r for r in rows}
    out: list[dict] = []

    def p50(k, t="1"):
        return by[k]["latency_ms"][t]["p50"]

    def m(k):
        return by[k]["map50"]

    def add(target: str, measure) -> None:
        try:
            value, passed = measure()
        except (KeyError, TypeError):
            value, passed = "not measured (a row it needs failed or was not asked for)", None
        out.append({"target": target, "value": value, "passed": passed})

    for fmt in RUNNABLE:
        f32, qat, ptq = f"{fmt} fp32", f"{fmt} int8 QAT", f"{fmt} int8 PTQ"
        add(
            f"{fmt} int8-QAT mAP within 1 point of {fmt} fp32",
            lambda f32=f32, qat=qat: (
                f"{100 * (m(qat) - m(f32)):+.2f} points ({100 * m(qat):.2f} vs {100 * m(f32):.2f})",
                m(qat) >= m(f32) - 0.01,
            ),
        )
        add(
            f"{fmt} int8-QAT ahead of int8-PTQ",
            lambda qat=qat, ptq=ptq: (
                f"{100 * (m(qat) - m(ptq)):+.2f} points ({100 * m(qat):.2f} vs {100 * m(ptq):.2f})"
                + _spread(by[qat].get("vs_ptq_bootstrap")),
                m(qat) > m(ptq),
            ),
        )
    for mode in ("PTQ", "QAT"):
        q = f"tflite int8 {mode}"
        add(
            f"TFLite int8 ({mode}) >= 1.5x faster than TFLite fp32, 1 thread",
            lambda q=q: (
                f"{p50('tflite fp32') / p50(q):.2f}x ({p50(q):.2f} vs {p50('tflite fp32'):.2f} ms p50)",
                p50("tflite fp32") / p50(q) >= 1.5,
            ),
        )
    thread_keys = list(by.get("tflite fp32", {}).get("latency_ms", {})) or ["1"]
    for prec in ("fp32", "int8 QAT"):
        for t in thread_keys:
            et, tf = f"executorch {prec}", f"tflite {prec}"
            add(
                f"ExecuTorch {prec} within 1.25x of TFLite {prec}, {t} thread(s)",
                lambda et=et, tf=tf, t=t: (
                    f"{p50(et, t) / p50(tf, t):.2f}x ({p50(et, t):.2f} vs {p50(tf, t):.2f} ms p50)",
                    p50(et, t) / p50(tf, t) <= 1.25,
                ),
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
        f"Quantization: PTQ calibrated on {report['calib']} train images; "
        + (
            f"QAT checkpoint `{q['checkpoint']}` ({q.get('epochs')} epoch(s) on {q.get('limit') or 'all'} training "
            f"images, Adam lr {q.get('lr')} cosine, BatchNorm {'frozen' if q.get('freeze_bn') else 'training'}, "
            f"activation ranges {q.get('act_ranges', 'ema')} from {q.get('calib')} images; epoch "
            f"{q.get('best_epoch')} picked on the holdout split)  "
            if q.get("checkpoint")
            else "no QAT rows  "
        ),
        "Status: exported (made; runs elsewhere) / loads (runs here, mAP outside its precision's budget, "
        "device_tests/thresholds.py) / matches (within it) / failed (the stage and reason)"
        + (f"; gate: --min-map {o['min_map']}" if o.get("min_map") is not None else "")
        + "  ",
        f"vs PyTorch: mAP@0.5 change in points; in brackets its std over {o.get('bootstrap') or 0} paired "
        "resamples of the test images",
        "",
        "| model | status | format | precision | quantization | size (KB) | "
        + " | ".join(f"p50 ms {t}T" for t in threads)
        + " | mAP@0.5 | vs PyTorch | reason |",
        "| --- | --- | --- | --- | --- | ---: | " + " | ".join("---:" for _ in threads) + " | ---: | ---: | --- |",
    ]
    ref = next((r.get("map50") for r in report["rows"] if r["format"] == "pytorch"), None)
    for r in report["rows"]:
        lat = [f"{r['latency_ms'][t]['p50']:.2f}" if t in r.get("latency_ms", {}) else "n/a" for t in threads]
        mp = f"{100 * r['map50']:.2f}" if r.get("map50") is not None else "n/a"
        d = f"{100 * (r['map50'] - ref):+.2f}" if r.get("map50") is not None and ref is not None else ""
        if r.get("delta_map50_bootstrap"):
            d += f" (±{100 * r['delta_map50_bootstrap']['std']:.2f})"
        size = f"{r['size_bytes'] / 1024:.0f}" if r.get("size_bytes") is not None else "n/a"
        status = f"**{r['status']}**" if r["status"] == "failed" else r["status"]
        reason = str(r.get("reason", "")).replace("|", "/")
        lines.append(
            f"| {r['model']} | {status} | {r['format']} | {r['precision']} | {r['quantization'] or ''} | {size} | "
            + " | ".join(lat)
            + f" | {mp} | {d} | {reason} |"
        )
    lines += targets_table(report["targets"])
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

    threads = [str(t) for t in report["options"]["threads"]]
    rows = [r for r in report["rows"] if r.get("map50") is not None and set(threads) <= set(r.get("latency_ms", {}))]
    if not rows:
        return
    names = [r["model"] for r in rows]
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


@dataclass(frozen=True)
class BenchJob:
    """``slfm bench artifacts``'s settings: every format x precision of one checkpoint, measured in one run."""

    checkpoint: str | None = None  # a path, a bundled name, or None: the bundled weights for ``kind``
    data: Path = Path("../shared/data/moxa3k")  # calibration, QAT and mAP
    kind: str = "moxa3k"
    split: str = "test"  # split for mAP
    limit: int | None = None
    calib: int = field(default=128, metadata=opt("PTQ calibration images (train split)", POSITIVE))
    qat_epochs: int = field(
        default=0,
        metadata=opt(
            "train QAT here for N epochs (0: the bundled QAT checkpoint of bundled weights, else QAT's default)",
            NON_NEGATIVE,
        ),
    )
    qat: Path | None = None  # the QAT rows from this quantized checkpoint
    qat_limit: int | None = field(
        default=None,
        metadata=opt("QAT on N images drawn (seeded) from the fit split  [default: all]", POSITIVE, show_default=False),
    )
    qat_lr: float = field(default=1e-4, metadata=opt("QAT lr (Adam, cosine)", POSITIVE_FLOAT))
    bootstrap: int = field(default=200, metadata=opt("paired resamples for each ΔmAP", NON_NEGATIVE))
    runs: int = field(default=30, metadata=opt("timed rounds per thread setting", POSITIVE))
    warmup: int = field(default=3, metadata=opt("untimed calls before the timed rounds", NON_NEGATIVE))
    threads: tuple[int, ...] = (1, 2)
    work: Path = Path("runs/bench-artifacts")  # builds, reused while their keys hold (work/manifest.json)
    rebuild: bool = field(
        default=False, metadata=opt("rebuild every artifact even if the work folder has it", flag="--rebuild")
    )
    formats: tuple[str, ...] = tuple(FORMAT_NAMES)
    precisions: tuple[str, ...] = tuple(PRECISIONS)
    int8: tuple[str, ...] = INT8_SOURCES
    artifacts: tuple[Path, ...] = ()  # existing files measured as rows of their own
    min_map: float | None = field(  # recorded; the caller gates with :func:`gate`
        default=None,
        metadata=opt(
            "gate: exit 1 naming every row whose mAP@0.5 is under this, or that failed (the report is written first)",
            FRACTION,
            show_default=False,
        ),
    )
    out: Path = Path("reports/artifacts_moxa3k")  # report path without suffix (.json, .md, .png)
    command: str = "slfm bench artifacts"


@click.command()
@click.argument("checkpoint", required=False, default=None)
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=Path("../shared/data/moxa3k"),
    show_default=True,
    help="labelled dataset root (calibration, QAT and mAP)",
)
@click.option("--dataset", "kind", type=click.Choice(KINDS), default="moxa3k", show_default=True)
@click.option("--split", default="test", show_default=True, help="split for mAP")
@limit_option("images of the split for mAP")
@config_options(BenchJob)  # calibration, QAT, bootstrap, timing, rebuild and gate settings: BenchJob's fields
@click.option(
    "--qat",
    "qat_file",
    type=click.Path(path_type=Path),
    default=None,
    help="the int8 QAT rows from this quantized checkpoint (slfm qat / slfm ptq) instead of the bundled one",
)
@repeated_option("--threads", None, (1, 2), "a thread count to time", int)
@click.option(
    "--work",
    type=click.Path(path_type=Path),
    default=Path("runs/bench-artifacts"),
    show_default=True,
    help="where artifacts and quantized checkpoints are built (reused while their inputs are unchanged)",
)
@choices_option("--to", "--formats", tuple(FORMAT_NAMES), "formats to build (none: --artifact rows)", ("all", "none"))
@choices_option("--precision", "--precisions", tuple(PRECISIONS), "precisions to build")
@repeated_option("--int8", INT8_SOURCES, INT8_SOURCES, "the int8 rows: ptq (calibrated) or qat")
@click.option(
    "--artifact",
    "extra",
    type=click.Path(path_type=Path),
    multiple=True,
    help="also gate this existing artifact (repeatable): e.g. the files you ship",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("reports/artifacts_moxa3k"),
    show_default=True,
    help="report path without suffix (.json, .md and .png are written)",
)
def artifacts(
    checkpoint, data, kind, split, limit, qat_file, threads, work, to, precision, int8, extra, out, **settings
):
    """One table of every format x precision made from CHECKPOINT (default: the bundled weights for --dataset):
    status (exported / loads / matches / failed, with the reason), size, latency (1 and 2 threads) and mAP,
    beside PyTorch fp32. A row that fails to export, load or run is one failed row; the others are measured.
    With --min-map it is a gate for CI: exit 1 naming the rows under the floor or failed."""
    from slfm.errors import SlfmError

    job = BenchJob(
        checkpoint=checkpoint,
        data=Path(data),
        kind=kind,
        split=split,
        limit=limit,
        qat=Path(qat_file) if qat_file else None,
        threads=threads,
        work=Path(work),
        formats=to,
        precisions=precision,
        int8=int8,
        artifacts=tuple(Path(p) for p in extra),
        out=Path(out),
        command="slfm bench artifacts " + shlex.join(sys.argv[3:]),
        **settings,
    )
    report = bench_artifacts(job)
    click.echo(job.out.with_suffix(".md").read_text())
    bad = gate(report["rows"], job.min_map) if job.min_map is not None else []
    if bad:
        raise SlfmError(f"gate --min-map {job.min_map}: {len(bad)} row(s) failed it: " + "; ".join(bad))


def bench_artifacts(job: BenchJob, echo=click.echo) -> dict:
    """Build (or reuse) every row's artifact, measure each, write the report (JSON, Markdown, chart); returns it.
    A row that fails to export, load or run is one failed row; the others are measured."""
    from slfm.checkpoint import file_sha256, load_model, resolve_checkpoint
    from slfm.errors import SlfmError
    from slfm.evaluate import machine

    if not Path(job.data).exists():
        raise SlfmError(f"--data {job.data}: folder not found (mAP, calibration and QAT need a labelled dataset)")
    ckpt = resolve_checkpoint(job.checkpoint, job.kind)
    rows = matrix(list(job.formats), list(job.precisions), list(job.int8))
    for p in job.artifacts:
        if not Path(p).exists():
            raise SlfmError(f"--artifact {p}: not found")
        rows.append(Row(f"file {Path(p).name}", _format_of(Path(p)), "?", artifact=Path(p)))
    if len({r.label for r in rows}) < len(rows):
        raise SlfmError("--artifact: two files share a name; give each row a distinct file name")
    opts = {
        "checkpoint": ckpt,
        "qat": job.qat,
        "rows": rows,
        "min_map": job.min_map,
        "data": Path(job.data),
        "kind": job.kind,
        "split": job.split,
        "limit": job.limit,
        "calib": job.calib,
        "qat_epochs": job.qat_epochs,
        "qat_limit": job.qat_limit,
        "qat_lr": job.qat_lr,
        "bootstrap": job.bootstrap,
        "runs": job.runs,
        "warmup": job.warmup,
        "threads": list(job.threads),
        "work": Path(job.work),
        "rebuild": job.rebuild,
    }
    started = time.strftime("%Y-%m-%d %H:%M")
    mach = machine()
    built = build(opts, echo)
    rows, n_eval = measure(opts, built, echo)
    opts["threads_used"] = list(job.threads)
    out = Path(job.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "command": job.command,
        "date": started,
        "machine": mach,
        "load_average_end": round(os.getloadavg()[0], 2),
        "checkpoint": shown_path(ckpt),
        "checkpoint_sha256": file_sha256(ckpt),
        "image_size": load_model(ckpt)[0].config.image_size,
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in opts.items() if k != "rows"},
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
    return report


def _format_of(path: Path) -> str:
    return getattr(format_of(path), "name", "unknown")


if __name__ == "__main__":  # the latency worker (see latency_in_subprocess)
    _latency_worker(sys.argv[1], sys.argv[2])
