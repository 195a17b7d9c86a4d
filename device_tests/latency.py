"""``slfm bench latency``: each artifact on each CPU runtime in one run, where its time goes, and how far it is
from what this CPU can do.

Runtimes: ai-edge-litert (this environment), tflite-runtime 2.14 (a Raspberry Pi's interpreter, in its own
venv: :mod:`slfm.device_tests.tflrt_env`) -- both through the shipped runner's timing mode
(:mod:`slfm.device_tests.pi_runner.timing`) -- and ExecuTorch's XNNPACK delegate (:mod:`slfm.convert.et_profile`).
Each runtime runs in a process of its own, its models timed in interleaved rounds after a warm-up, so the
ratios between rows of one runtime hold under load from other jobs.

Per-op profile: TFLite's Python APIs expose no per-op profiler, so every operator is cut out of the graph
(:func:`slfm.convert.tflite_graph.cut_ops`) and timed alone; the report gives each op type's share of the
summed time, and whether the default XNNPACK delegate took it. ExecuTorch: ETDump events read by devtools'
Inspector (XNNPACK's own operator events).

Compute bound: a one-convolution model (1x1, a dense GEMM: :func:`slfm.convert.tflite_graph.synthetic_conv`)
in fp32 and int8, timed with the artifacts: its MACs/s is this CPU's throughput through that runtime, and
each row's bound is the graph's MACs at that rate.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
import numpy as np

from slfm.checkpoint import BUNDLED
from slfm.device_tests.report import targets_table
from slfm.errors import SlfmError
from slfm.formats import FORMATS, format_of
from slfm.options import POSITIVE

TFLITE_RUNTIMES = {"litert": "ai_edge_litert", "tflite-runtime": "tflite_runtime"}
TIMED = ("tflite", "executorch")  # the formats timed here (slfm.formats)
ALL_RUNTIMES = tuple(r for f in TIMED for r in FORMATS[f].runtimes)


@dataclass
class LatencyConfig:
    artifacts: list[Path]  # .tflite / .pte files (made by slfm convert)
    out: Path = Path("reports/latency")
    work: Path = Path("runs/bench-latency")
    runtimes: tuple[str, ...] = ALL_RUNTIMES
    threads: int = 1
    runs: int = 30
    warmup: int = 5
    op_runs: int = 5  # invokes per single-op model (the minimum is kept); 0: no per-op profile
    peer: Path | None = None  # AIZOO's .tflite, timed beside ours on the TFLite runtimes
    tflrt_venv: Path | None = None
    bound_hw: int = 56
    bound_channels: int = 256
    labels: dict[str, str] = field(default_factory=dict)  # artifact path -> row label


def _label(path: Path) -> str:
    from slfm.artifact import read_sidecar

    try:
        meta = read_sidecar(path)
    except (SlfmError, OSError, ValueError):
        return path.stem
    q = f" {meta.quantization}" if meta.quantization else ""
    return f"slfm {meta.image_size} {meta.precision}{q}"


def _precision(path: Path) -> str:
    from slfm.convert import tflite_graph as tg

    if format_of(path) is FORMATS["tflite"]:
        return "int8" if any(o.dtype == "int8" and o.name in tg.MAC_OPS for o in tg.ops(path)) else "fp32"
    try:
        from slfm.artifact import read_sidecar

        return "int8" if read_sidecar(path).precision == "int8" else "fp32"
    except (SlfmError, OSError, ValueError):
        return "int8" if "int8" in path.name else "fp32"


def _stats(ms: list[float]) -> dict:
    s = sorted(ms)
    return {"p50": statistics.median(s), "p90": float(np.percentile(s, 90)), "min": s[0], "runs": len(s)}


def _run_timing(python: Path, spec: dict, label: str) -> dict:
    """The shipped runner's timing mode under ``python`` (cwd: a fresh bundle)."""
    from slfm.device_tests.bundle import build_bundle

    with tempfile.TemporaryDirectory(prefix="slfm-latency-") as tmp:
        bundle = build_bundle(Path(tmp) / "bundle")
        (Path(tmp) / "spec.json").write_text(json.dumps(spec))
        cmd = [str(python), "-m", "pi_runner.timing", str(Path(tmp) / "spec.json"), str(Path(tmp) / "out.json")]
        env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"])}
        r = subprocess.run(cmd, cwd=bundle, capture_output=True, text=True, timeout=3600, env=env)
        if r.returncode != 0:
            tail = (r.stderr.strip().splitlines() or ["?"])[-1]
            raise SlfmError(f"{label} timing ({python}) failed: {tail}")
        return json.loads((Path(tmp) / "out.json").read_text())


def _run_executorch(spec: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="slfm-latency-et-") as tmp:
        (Path(tmp) / "spec.json").write_text(json.dumps(spec))
        cmd = [sys.executable, "-m", "slfm.convert.et_profile", str(Path(tmp) / "spec.json"), str(Path(tmp) / "o.json")]
        env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"])}
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, env=env)
        if r.returncode != 0:
            tail = (r.stderr.strip().splitlines() or ["?"])[-1]
            raise SlfmError(f"ExecuTorch timing failed: {tail}")
        return json.loads((Path(tmp) / "o.json").read_text())


def _op_profile(cut: list, timed: dict) -> list[dict]:
    """Per op type: time summed over its single-op models, share of the graph's sum, how many XNNPACK took."""
    by: dict[tuple[str, str], dict] = defaultdict(lambda: {"ms": 0.0, "ops": 0, "delegated": 0, "macs": 0})
    for op, path in cut:
        t = timed[str(path)]
        r = by[(op.name, op.dtype)]
        r["ms"] += t["ms"]
        r["ops"] += 1
        r["delegated"] += int(t["delegated"])
        r["macs"] += op.macs
    total = sum(r["ms"] for r in by.values()) or 1.0
    rows = [
        {
            "op": k[0],
            "dtype": k[1],
            **v,
            "share": v["ms"] / total,
            "kernel": "XNNPACK" if v["delegated"] == v["ops"] else "builtin" if not v["delegated"] else "mixed",
        }
        for k, v in by.items()
    ]
    return sorted(rows, key=lambda r: -r["ms"])


def _et_op_profile(events: list[dict]) -> list[dict]:
    by: dict[str, dict] = defaultdict(lambda: {"ms": 0.0, "ops": 0, "delegated": 0})
    for e in events:
        r = by[e["kernel"]]
        r["ms"] += e["p50_ms"]
        r["ops"] += 1
        r["delegated"] += int(e["delegated"])
    total = sum(r["ms"] for r in by.values()) or 1.0
    rows = [
        {"op": k, "dtype": "", **v, "share": v["ms"] / total, "kernel": "XNNPACK" if v["delegated"] else "portable"}
        for k, v in by.items()
    ]
    return sorted(rows, key=lambda r: -r["ms"])


def run_latency(cfg: LatencyConfig, echo=click.echo) -> dict:
    """Time every artifact on every runtime; returns the report (rows, per-op profiles, bound, targets)."""
    from slfm.convert import tflite_graph as tg
    from slfm.device_tests import tflrt_env

    for p in cfg.artifacts:
        if not Path(p).exists():
            raise SlfmError(f"artifact not found: {p}")
        if getattr(format_of(p), "name", None) not in TIMED:
            raise SlfmError(f"{p}: not a {' or '.join(FORMATS[f].suffix for f in TIMED)} artifact")
    unknown = set(cfg.runtimes) - set(ALL_RUNTIMES)
    if unknown:
        raise SlfmError(f"unknown runtime(s) {sorted(unknown)}: use {', '.join(ALL_RUNTIMES)}")
    work = Path(cfg.work).resolve()  # the runners run in a bundle folder of their own: absolute paths
    work.mkdir(parents=True, exist_ok=True)
    arts = [Path(p).resolve() for p in cfg.artifacts]
    tflites = [p for p in arts if format_of(p) is FORMATS["tflite"]]
    ptes = [p for p in arts if format_of(p) is FORMATS["executorch"]]
    label = {str(Path(p).resolve()): cfg.labels.get(str(p)) or _label(Path(p)) for p in cfg.artifacts}
    macs = {}
    for p in tflites:
        macs[str(p)] = tg.graph_macs(p)
    for p in ptes:  # the same graph as its .tflite sibling when there is one; else from the checkpoint config
        twin = next((t for t in tflites if t.stem == p.stem), None) or next(
            (t for t in tflites if label[str(t)].split(" ")[:2] == label[str(p)].split(" ")[:2]), None
        )
        if twin is not None:
            macs[str(p)] = macs[str(twin)]
    bound = {}
    for dtype, prec in (("float32", "fp32"), ("int8", "int8")):
        path, n = tg.synthetic_conv(work / f"bound_conv_{prec}.tflite", dtype, cfg.bound_hw, cfg.bound_channels)
        bound[prec] = {"path": str(path), "macs": n}
    peer = Path(cfg.peer).resolve() if cfg.peer and Path(cfg.peer).is_file() else None
    if peer is not None:
        macs[str(peer)] = tg.graph_macs(peer)
    cuts = {}
    if cfg.op_runs:
        for p in tflites:
            cuts[str(p)] = tg.cut_ops(p, work / "ops" / p.stem)

    rows, profiles, runtimes = [], [], {}
    for rt in cfg.runtimes:
        if rt == "executorch":
            if not ptes:
                continue
            echo(f"ExecuTorch: {len(ptes)} program(s), {cfg.runs} interleaved rounds, ETDump profile")
            res = _run_executorch(
                {
                    "threads": cfg.threads,
                    "runs": cfg.runs,
                    "warmup": cfg.warmup,
                    "models": {str(p): str(p) for p in ptes},
                    "profile_runs": cfg.op_runs,
                }
            )
            runtimes[rt] = res["runtime_version"]
            for p in ptes:
                m = res["models"][str(p)]
                rows.append(
                    _row(
                        label[str(p)],
                        str(p),
                        _precision(p),
                        rt,
                        res["runtime_version"],
                        "XNNPACK",
                        m,
                        macs.get(str(p)),
                        cfg.threads,
                    )
                )
                if m.get("profile"):
                    profiles.append(
                        {
                            "model": label[str(p)],
                            "runtime": rt,
                            "method": "ETDump (devtools Inspector)",
                            "ops": _et_op_profile(m["profile"]),
                        }
                    )
            continue
        if rt == "tflite-runtime":
            if not tflrt_env.is_ready(cfg.tflrt_venv):
                raise SlfmError(
                    f"tflite-runtime 2.14 venv not ready ({tflrt_env.venv_python(cfg.tflrt_venv)}): create it with "
                    "python -m slfm.device_tests.tflrt_env, or leave tflite-runtime out (--runtime)"
                )
            python = tflrt_env.venv_python(cfg.tflrt_venv)
        else:
            python = Path(sys.executable)
        models = [{"key": f"{p}|AUTO", "path": str(p), "resolver": "AUTO"} for p in tflites]
        # the same graphs without the default XNNPACK delegate: what the builtin kernels alone do
        models += [
            {
                "key": f"{p}|BUILTIN_WITHOUT_DEFAULT_DELEGATES",
                "path": str(p),
                "resolver": "BUILTIN_WITHOUT_DEFAULT_DELEGATES",
            }
            for p in tflites
        ]
        models += [{"key": f"bound-{k}|AUTO", "path": b["path"], "resolver": "AUTO"} for k, b in bound.items()]
        if peer is not None:
            models.append({"key": f"{peer}|AUTO", "path": str(peer), "resolver": "AUTO"})
        spec = {
            "runtime": TFLITE_RUNTIMES[rt],
            "threads": cfg.threads,
            "runs": cfg.runs,
            "warmup": cfg.warmup,
            "models": models,
        }
        if cuts:
            spec["op_models"] = {
                "paths": [str(c[1]) for cs in cuts.values() for c in cs],
                "resolvers": ["AUTO"],
                "runs": cfg.op_runs,
            }
        echo(
            f"{rt}: {len(models)} model(s), {cfg.runs} interleaved rounds"
            + (f", {len(spec['op_models']['paths'])} single-op models" if cuts else "")
        )
        res = _run_timing(python, spec, rt)
        runtimes[rt] = res["runtime_version"]
        for key, m in res["models"].items():
            path, resolver = key.rsplit("|", 1)
            kernels = "default (XNNPACK delegate + builtin)" if resolver == "AUTO" else "builtin only"
            if path.startswith("bound-"):
                prec = path.split("-", 1)[1]
                rows.append(
                    _row(
                        f"bound: 1x1 conv {prec}",
                        bound[prec]["path"],
                        prec,
                        rt,
                        res["runtime_version"],
                        kernels,
                        m,
                        bound[prec]["macs"],
                        cfg.threads,
                        kind="bound",
                    )
                )
                continue
            name = "aizoo peer 260 fp32" if peer is not None and path == str(peer) else label[path]
            kind = "peer" if name.startswith("aizoo peer") else "artifact"
            prec = "fp32" if kind == "peer" else _precision(Path(path))
            rows.append(
                _row(
                    name,
                    path,
                    prec,
                    rt,
                    res["runtime_version"],
                    kernels,
                    m,
                    macs.get(path),
                    cfg.threads,
                    kind=kind,
                    resolver=resolver,
                )
            )
        for p, cut in cuts.items():
            timed = res["op_models"]["AUTO"]
            profiles.append(
                {
                    "model": label[p],
                    "runtime": rt,
                    "method": "single-op models, default resolver",
                    "ops": _op_profile(cut, timed),
                }
            )
    _attach_bounds(rows)
    return {"rows": rows, "profiles": profiles, "runtimes": runtimes, "bound_models": bound, "targets": targets(rows)}


def _row(model, path, precision, runtime, version, kernels, m, macs, threads, kind="artifact", resolver="AUTO"):
    st = _stats(m["times_ms"])
    r = {
        "model": model,
        "kind": kind,
        "artifact": path,
        "precision": precision,
        "runtime": runtime,
        "runtime_version": version,
        "resolver": resolver,
        "kernels": kernels,
        "threads": threads,
        "delegate_nodes": m.get("delegate_nodes"),
        "warmup_ms": m["warmup_ms"],
        **{f"{k}_ms": v for k, v in st.items() if k != "runs"},
        "runs": st["runs"],
    }
    if macs:
        r["macs"] = macs
        r["gmacs_per_s"] = macs / st["p50"] / 1e6
    return r


def _attach_bounds(rows: list[dict]) -> None:
    """Each row's compute bound: its MACs at the bound model's rate, same runtime and precision (ExecuTorch rows:
    ai-edge-litert's rate, XNNPACK both, no ExecuTorch GEMM model measured)."""
    rate = {(r["runtime"], r["precision"]): r["gmacs_per_s"] for r in rows if r["kind"] == "bound"}
    for r in rows:
        key = (r["runtime"] if r["runtime"] != "executorch" else "litert", r["precision"])
        if r["kind"] != "bound" and r.get("macs") and key in rate:
            r["bound_ms"] = r["macs"] / rate[key] / 1e6
            r["x_bound"] = r["p50_ms"] / r["bound_ms"]
            r["bound_from"] = f"{key[0]} {key[1]} 1x1 conv"


def targets(rows: list[dict]) -> list[dict]:
    """The issue's targets, each with the numbers behind it."""
    out = []
    arts = [r for r in rows if r["kind"] == "artifact" and r["resolver"] == "AUTO"]
    sizes = sorted({r["model"].split(" ")[1] for r in arts if r["model"].startswith("slfm ")})
    for rt in sorted({r["runtime"] for r in arts}):
        for size in sizes:
            f = [r for r in arts if r["runtime"] == rt and r["precision"] == "fp32" and f" {size} " in r["model"]]
            i = [r for r in arts if r["runtime"] == rt and r["precision"] == "int8" and f" {size} " in r["model"]]
            if f and i:
                s = f[0]["p50_ms"] / i[0]["p50_ms"]
                out.append(
                    {
                        "target": f"{rt}: int8 >= 1.5x faster than fp32 ({size})",
                        "value": f"{s:.2f}x ({i[0]['p50_ms']:.2f} vs {f[0]['p50_ms']:.2f} ms p50)",
                        "passed": s >= 1.5,
                    }
                )
    int8 = [r for r in arts if r["precision"] == "int8" and "x_bound" in r]
    if int8:
        best = min(int8, key=lambda r: r["x_bound"])
        out.append(
            {
                "target": "fastest int8 within 2x of the measured int8 compute bound",
                "value": f"{best['x_bound']:.2f}x ({best['model']}, {best['runtime']}: {best['p50_ms']:.2f} ms vs "
                f"{best['bound_ms']:.2f} ms bound)",
                "passed": best["x_bound"] <= 2.0,
            }
        )
    for rt in sorted({r["runtime"] for r in rows if r["kind"] == "peer"}):
        p = next(r for r in rows if r["kind"] == "peer" and r["runtime"] == rt)
        for r in arts:
            if r["runtime"] == rt and r["precision"] == "int8":
                s = p["p50_ms"] / r["p50_ms"]
                out.append(
                    {
                        "target": f"{rt}: {r['model']} >= 2x faster than AIZOO's peer",
                        "value": f"{s:.2f}x ({r['p50_ms']:.2f} vs {p['p50_ms']:.2f} ms p50)",
                        "passed": s >= 2.0,
                    }
                )
    return out


def markdown(report: dict) -> str:
    m, c = report["machine"], report["config"]
    lines = [
        "# Latency per runtime, where the time goes, and this CPU's compute bound",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}  ",
        f"Machine: {m['processor']} ({m['cpu_count']} CPUs), {m['platform']}, Python {m['python']}; 1-min load "
        f"average {m['load_average_1min']} at the start, {report['load_average_end']} at the end (other jobs share "
        "these CPUs: compare rows of one runtime, timed in interleaved rounds)  ",
        "Runtimes: " + ", ".join(f"{k} {v}" for k, v in report["runtimes"].items()) + "  ",
        f"Protocol: batch 1, zero input, {c['threads']} thread(s), {c['warmup']} warm-up invokes apart, "
        f"{c['runs']} interleaved rounds; model invoke only (no pre/post-processing)  ",
        "Bound: a 1x1 convolution "
        f"[1, {c['bound_hw']}, {c['bound_hw']}, {c['bound_channels']}] -> {c['bound_channels']} (a dense GEMM) timed "
        "in the same process; `x bound` = p50 / (graph MACs at that GEMM's MACs/s)",
        "",
        "| model | precision | runtime | kernels | p50 ms | p90 ms | first ms | GMAC | GMAC/s | bound ms | x bound |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["rows"]:
        g = f"{r['macs'] / 1e9:.3f}" if r.get("macs") else ""
        gs = f"{r['gmacs_per_s']:.1f}" if r.get("gmacs_per_s") else ""
        b = f"{r['bound_ms']:.2f}" if r.get("bound_ms") else ""
        x = f"{r['x_bound']:.2f}" if r.get("x_bound") else ""
        first = f"{r['warmup_ms'][0]:.1f}" if r["warmup_ms"] else ""
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['runtime']} {r['runtime_version']} | {r['kernels']} | "
            f"{r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {first} | {g} | {gs} | {b} | {x} |"
        )
    lines += targets_table(report["targets"])
    lines += [
        "",
        "## Where the time goes (per op type)",
        "",
        "TFLite: every operator cut out of the graph and timed alone (minimum of "
        f"{c['op_runs']} invokes; no per-op profiler is exposed to Python). The sum overstates the whole graph (one "
        "invoke per op, no cross-op fusion such as PAD into the next convolution): read the shares. `kernel` says "
        "whether the default XNNPACK delegate took the op (a DELEGATE node in the plan) or the builtin kernels ran "
        "it. ExecuTorch: ETDump events (XNNPACK's operators), medians.",
        "",
    ]
    for p in report["profiles"]:
        total = sum(o["ms"] for o in p["ops"])
        lines += [
            f"### {p['model']} on {p['runtime']} ({p['method']}; sum {total:.1f} ms)",
            "",
            "| op | dtype | ops | kernel | ms | share |",
            "| --- | --- | ---: | --- | ---: | ---: |",
        ]
        for o in p["ops"]:
            if o["share"] < 0.005:
                continue
            lines.append(
                f"| {o['op']} | {o['dtype']} | {o['ops']} | {o['kernel']} | {o['ms']:.2f} | {100 * o['share']:.1f}% |"
            )
        lines.append("")
    if report.get("chart"):
        lines += [f"![latency per runtime]({report['chart']})", ""]
    return "\n".join(lines)


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["rows"] if r["kind"] != "bound"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(15, 0.9 + 0.32 * max(len(rows), 8)), dpi=110)
    names = [f"{r['model']} | {r['runtime']}" + (" | no XNNPACK" if r["resolver"] != "AUTO" else "") for r in rows]
    y = np.arange(len(rows))
    colors = ["tab:orange" if r["precision"] == "int8" else "tab:blue" for r in rows]
    a.barh(y, [r["p50_ms"] for r in rows], color=colors)
    for i, r in enumerate(rows):
        if r.get("bound_ms"):
            a.plot([r["bound_ms"]] * 2, [i - 0.4, i + 0.4], color="k", lw=2)
    a.set_yticks(y, names, fontsize=7)
    a.invert_yaxis()
    a.set(xlabel="p50 ms (orange int8, blue fp32; black tick: compute bound)", title="latency on this CPU")
    profs = report["profiles"]
    ops = sorted({o["op"] for p in profs for o in p["ops"] if o["share"] >= 0.03})
    left = np.zeros(len(profs))
    cmap = plt.get_cmap("tab20")
    for k, op in enumerate(ops):
        share = np.array([sum(o["share"] for o in p["ops"] if o["op"] == op) for p in profs])
        b.barh(np.arange(len(profs)), 100 * share, left=100 * left, color=cmap(k % 20), label=op[:28])
        left += share
    b.set_yticks(np.arange(len(profs)), [f"{p['model']} | {p['runtime']}" for p in profs], fontsize=7)
    b.invert_yaxis()
    b.set(xlabel="share of time, % (op types >= 3%)", title="where the time goes", xlim=(0, 100))
    b.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(cfg: LatencyConfig, report: dict, command: str) -> Path:
    from slfm.bench import write

    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    full = {
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": report.pop("machine"),
        "load_average_end": round(os.getloadavg()[0], 2),
        "config": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in asdict(cfg).items()
            if k not in ("artifacts", "labels")
        }
        | {"artifacts": [str(p) for p in cfg.artifacts]},
        **report,
        "chart": png.name,
    }
    full["config"]["peer"] = str(cfg.peer) if cfg.peer else None
    chart(full, png)
    write(full, out, markdown(full))
    return out.with_suffix(".md")


def build_artifacts(model: str, work: Path, echo=click.echo) -> list[Path]:
    """fp32 and int8 (the bundled QAT checkpoint) .tflite and .pte of a bundled model, made by ``slfm convert``
    into ``work/<model>`` (skipped when there)."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    paths = []
    for precision in ("fp32", "int8"):
        out = work / model / precision
        have = sorted(out.glob("*.tflite")) + sorted(out.glob("*.pte"))
        if len(have) < 2:
            echo(f"slfm convert {model} --precision {precision} -> {out}")
            cmd = [
                sys.executable,
                "-m",
                "slfm.cli",
                "convert",
                model,
                "--to",
                "tflite",
                "--to",
                "executorch",
                "--precision",
                precision,
                "--out",
                str(out),
            ]
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if r.returncode != 0:
                tail = (r.stderr.strip().splitlines() or ["?"])[-1]
                raise SlfmError(f"slfm convert {model} --precision {precision} failed: {tail}")
            have = sorted(out.glob("*.tflite")) + sorted(out.glob("*.pte"))
        paths += have
    return paths


@click.command("latency")
@click.argument("artifacts", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--model",
    "models",
    multiple=True,
    type=click.Choice(tuple(BUNDLED)),
    help="bundled model(s) to convert (fp32 + int8 QAT, TFLite + ExecuTorch) and time; default aizoo when no ARTIFACTS",
)
@click.option(
    "--runtime",
    "runtimes",
    multiple=True,
    type=click.Choice(ALL_RUNTIMES),
    help="repeat for several  [default: all three]",
)
@click.option("--threads", type=POSITIVE, default=1, show_default=True)
@click.option("--runs", type=POSITIVE, default=30, show_default=True, help="timed rounds")
@click.option("--warmup", type=POSITIVE, default=5, show_default=True)
@click.option(
    "--op-runs",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="invokes per single-op model / ETDump runs (0: no per-op profile)",
)
@click.option(
    "--peer",
    type=click.Path(path_type=Path),
    default=Path("../shared/peers/aizoo/face_mask_detection.tflite"),
    show_default=True,
    help="AIZOO's .tflite, timed beside ours when present",
)
@click.option(
    "--work", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/bench-latency"), show_default=True
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("reports/latency"),
    show_default=True,
    help="report path without suffix (.json, .md and .png are written)",
)
def latency(artifacts, models, runtimes, threads, runs, warmup, op_runs, peer, work, out):
    """Latency of each artifact on ai-edge-litert, tflite-runtime 2.14 and ExecuTorch in one run, a per-op
    profile, and this CPU's fp32/int8 compute bound measured alongside."""
    from slfm.evaluate import machine

    try:
        paths = list(artifacts)
        for m in models or (() if paths else ("aizoo",)):
            paths += build_artifacts(m, work)
        cfg = LatencyConfig(
            artifacts=paths,
            out=out,
            work=work,
            runtimes=tuple(runtimes) or ALL_RUNTIMES,
            threads=threads,
            runs=runs,
            warmup=warmup,
            op_runs=op_runs,
            peer=peer,
        )
        mach = machine()
        report = run_latency(cfg)
        report["machine"] = mach
        md = write_report(cfg, report, "slfm bench latency " + shlex.join(sys.argv[3:]))
    except SlfmError as e:
        raise click.ClickException(str(e)) from e
    click.echo(md.read_text())
