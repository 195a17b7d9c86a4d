"""The parity run: every artifact against the PyTorch reference on real images, on a target, with mAP,
latency, size and memory; one report row per (artifact, runtime), written as it goes."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from slfm.artifact import ArtifactMeta, read_sidecar
from slfm.bench import latency_stats
from slfm.core import Frame
from slfm.device_tests import browser, coreml_spec, report, tflrt_env, thresholds
from slfm.device_tests.compare import live_anchors, match_detections, output_errors
from slfm.device_tests.remote import AdbRemote, SshRemote
from slfm.device_tests.runners import DeviceRunner, InProcessRunner, RunResult, SubprocessRunner
from slfm.errors import SlfmError
from slfm.evaluate import machine
from slfm.formats import FORMATS, format_of
from slfm.inputs import DataSpec, Image, load_images, prepare_inputs


@dataclass
class ParityOptions:
    artifacts: list[Path]
    checkpoint: Path | None = None
    target: str = "local"
    data: list[DataSpec] = field(default_factory=list)
    limit: int | None = 50
    runs: int = 20
    warmup: int = 3
    threads: int = 1
    out: Path = Path("reports/parity")
    thresholds: dict = field(default_factory=lambda: thresholds.load_thresholds())
    ssh_config: Path | None = None
    identity: Path | None = None
    connect_timeout: int = 15
    timeout: float = 900
    remote_python: str = "python3"
    remote_dir: str | None = None
    layers: str = "auto"  # auto (on failure) | always | never
    tflite_runtime: bool = True  # local: also run .tflite under the tflite-runtime 2.14 venv
    tflite_runtime_venv: Path | None = None
    fake_quant: Path | None = None
    command: str = "slfm parity"
    progress: bool = True


def discover(paths: list[Path]) -> list[Path]:
    """Artifacts named, or found in named folders (any file with a known suffix and a sidecar)."""
    out = []
    for p in paths:
        if p.is_dir() and format_of(p) is None:
            found = sorted(q for q in p.iterdir() if format_of(q) is not None)
            if not found:
                raise SlfmError(f"{p}: no artifacts ({', '.join(f.suffix for f in FORMATS.values())}) in this folder")
            out += found
        elif p.exists():
            out.append(p)
        else:
            raise SlfmError(f"artifact not found: {p}")
    return out


def size_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def make_remote(opts: ParityOptions) -> SshRemote | AdbRemote | None:
    if opts.target.startswith("ssh://"):
        return SshRemote.parse(
            opts.target, ssh_config=opts.ssh_config, identity=opts.identity, connect_timeout=opts.connect_timeout
        )
    if opts.target == "adb" or opts.target.startswith("adb:"):
        return AdbRemote.parse(opts.target)
    if opts.target in ("local", "macos") or browser.is_target(opts.target):
        return None
    raise SlfmError(f"unknown target {opts.target!r}: use local, ssh://user@host[:port], adb[:serial], macos, browser")


def plan(opts: ParityOptions, path: Path, meta: ArtifactMeta, remote) -> list:
    """Runners for this artifact on the target, or (status, reason) pairs for rows that cannot run here."""
    fmt = meta.format
    if remote is not None:
        if fmt != "tflite":
            return [("skipped", f"{opts.target}: only .tflite artifacts run on this target ({fmt} given)")]
        base = opts.remote_dir or ("/data/local/tmp/slfm-parity" if isinstance(remote, AdbRemote) else "slfm-parity")
        return [DeviceRunner(remote, path, meta, opts.threads, opts.remote_python, base, opts.timeout)]
    if browser.is_target(opts.target):
        return browser.plan(opts.target, path, meta, opts.timeout)
    if fmt == "coreml" or opts.target == "macos":
        if fmt != "coreml":
            return [("skipped", f"target macos checks Core ML artifacts ({fmt} given): use --target local")]
        if not coreml_spec.is_macos():
            return [("needs-macos", coreml_spec.NEEDS_MACOS.format(system=platform.system()))]
        return [InProcessRunner(path, meta, opts.threads)]
    runners: list = [InProcessRunner(path, meta, opts.threads)]
    if fmt == "tflite" and opts.tflite_runtime:
        try:
            py = tflrt_env.ensure(opts.tflite_runtime_venv)
            runners.append(SubprocessRunner(path, meta, py, opts.threads, opts.timeout))
        except SlfmError as e:
            runners.append(("error", f"tflite-runtime venv: {e}"))
    return runners


@dataclass
class Reference:
    result: RunResult
    dets: dict
    map: dict | None
    module: object
    config: object


def _latency(res: RunResult) -> dict:
    lat = latency_stats(res.times_s) if res.times_s else {}
    lat["warmup_ms"] = [w * 1000 for w in res.warmup_s]
    return lat


def _row_base(path: Path, meta: ArtifactMeta | None, target: str) -> dict:
    """A report row's fields; ``meta`` None for an artifact whose sidecar is unreadable."""
    return {
        "artifact": str(path),
        "format": meta.format if meta else getattr(format_of(path), "name", None),
        "precision": meta.precision if meta else None,
        "quantization": meta.quantization if meta else None,
        "image_size": meta.image_size if meta else None,
        "target": target,
        "size_bytes": size_bytes(path),
        "runtime": None,
        "status": "ok",
        "error": None,
        "map50": None,
        "latency_ms": None,
        "max_abs_error": None,
        "snr_db": None,
        "detection_recall": None,
        "detection_precision": None,
        "passed": None,
    }


def measure(
    row: dict,
    res: RunResult,
    ref: Reference,
    images: list[Image],
    frames: list[Frame],
    meta: ArtifactMeta,
    fake_quant: RunResult | None,
) -> None:
    from slfm.device_tests.reference import all_detections, map50
    from slfm.postprocess import EVAL

    live = live_anchors(ref.result.scores, EVAL.score_threshold)
    outs = {
        "loc": output_errors(ref.result.loc[live], res.loc[live]),
        "scores": output_errors(ref.result.scores, res.scores),
    }
    dets = all_detections(res, frames, meta)
    match = match_detections(ref.dets["demo"], dets["demo"])
    m = map50(dets["eval"], images)
    row.update(
        {
            "runtime": res.runtime,
            "runtime_short": res.runtime.split(" (")[0],
            "threads": res.threads,
            "device": res.device or None,
            "outputs": outs,
            # box offsets on every anchor, background ones included (reported, not checked)
            "loc_all_anchors": output_errors(ref.result.loc, res.loc),
            "live_anchors": int(live.sum()),
            "max_abs_error": max(o["max_abs_error"] for o in outs.values()),
            "snr_db": min(o["snr_db"] for o in outs.values()),
            "detections": {k: match[k] for k in ("reference", "artifact", "matched")},
            "detection_precision": match["precision"],
            "detection_recall": match["recall"],
            "map50": m["map50"] if m else None,
            "ap50": m["ap50"] if m else None,
            "map50_by_dataset": {k: v["map50"] for k, v in m["by_dataset"].items()} if m else None,
            "map50_drop": round(ref.map["map50"] - m["map50"], 6) + 0.0 if m and ref.map else None,
            "latency_ms": _latency(res),
            "load_ms": res.load_s * 1000 if res.load_s is not None else None,
            "peak_memory_mb": res.peak_memory_mb,
            "memory_note": res.memory_note,
            "on_device_postprocess": res.dets is not None,
        }
    )
    if fake_quant is not None:
        fo = {"loc": output_errors(fake_quant.loc, res.loc), "scores": output_errors(fake_quant.scores, res.scores)}
        row["vs_fake_quant"] = {"outputs": fo, "snr_db": min(o["snr_db"] for o in fo.values())}


def run_parity(opts: ParityOptions) -> dict:
    from slfm.device_tests.reference import all_detections, load_fake_quant, load_reference, map50, refuse_program

    paths = discover(opts.artifacts)
    metas, broken = {}, {}  # a bad sidecar fails its own row; the other artifacts still run
    for p in paths:
        try:
            metas[p] = read_sidecar(p)
        except SlfmError as e:
            broken[p] = str(e)
    ckpt = opts.checkpoint
    if ckpt is None and metas:
        srcs = {m.source_checkpoint for m in metas.values() if m.source_checkpoint}
        if len(srcs) != 1 or not Path(next(iter(srcs))).is_file():
            raise SlfmError(
                f"give --checkpoint: the artifacts' sidecars name {sorted(srcs) or 'no'} source checkpoint(s)"
            )
        ckpt = Path(next(iter(srcs)))
    remote = make_remote(opts)
    images = load_images(opts.data, opts.limit)
    ref_runner, ref_info = load_reference(ckpt, opts.threads) if ckpt is not None else (None, {})
    rep = {
        "schema": report.SCHEMA,
        "command": opts.command,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "target_summary": opts.target,
        "machine": machine(),
        "thresholds": opts.thresholds,
        "data": [
            {"name": n, "images": sum(im.dataset == n for im in images)}
            for n in dict.fromkeys(im.dataset for im in images)
        ],
        "reference": {**ref_info, "threads": opts.threads},
        "artifacts": [],
        "passed": None,
    }
    target_error = None
    if remote is not None:
        try:
            rep["target_machine"] = remote.check(timeout=max(opts.connect_timeout * 4, 60))
        except SlfmError as e:  # every row for this target records it; the report is still written
            target_error = str(e)
    refs: dict[int, tuple[Reference, np.ndarray, list[Frame]]] = {}

    def reference(meta: ArtifactMeta):
        if meta.image_size not in refs:
            inputs, frames = prepare_inputs(images, ref_runner.module.model.config, meta.image_size)
            res = ref_runner.run(inputs, opts.runs, opts.warmup)
            cfg = ref_runner.module.model.config
            dets = all_detections(res, frames, cfg)
            refs[meta.image_size] = (
                Reference(res, dets, map50(dets["eval"], images), ref_runner.module, cfg),
                inputs,
                frames,
            )
            if not rep["reference"].get("map50") and refs[meta.image_size][0].map is not None:
                m = refs[meta.image_size][0].map
                rep["reference"].update(
                    {
                        "map50": m["map50"],
                        "ap50": m["ap50"],
                        "map50_by_dataset": {k: v["map50"] for k, v in m["by_dataset"].items()},
                        "input_size": meta.image_size,
                        "latency_ms": _latency(res),
                        "runtime": res.runtime,
                    }
                )
        return refs[meta.image_size]

    jobs = [
        (p, metas[p], r) if p in metas else (p, None, ("error", broken[p]))
        for p in paths
        for r in (plan(opts, p, metas[p], remote) if p in metas else [None])
    ]
    for path, meta, runner in tqdm(jobs, desc="parity", disable=not opts.progress):
        target = getattr(runner, "target", opts.target) if not isinstance(runner, tuple) else opts.target
        if meta is None:
            rep["artifacts"].append({**_row_base(path, None, target), "status": "error", "error": runner[1]})
            rep["artifacts"][-1]["passed"] = False
            rep["passed"] = False
            report.write(rep, opts.out, with_chart=False)
            continue
        row = _row_base(path, meta, target)
        t = opts.thresholds.get(meta.precision, opts.thresholds["fp32"])
        if target_error and not isinstance(runner, tuple):
            runner = ("error", target_error)
        if isinstance(runner, tuple):
            row["status"], row["error"] = runner
            if row["status"] == "needs-macos":
                row["checks"] = coreml_spec.spec_checks(path, meta)
                row["spec_passed"] = all(c["passed"] for c in row["checks"])
            else:
                row["passed"] = False if row["status"] == "error" else None
        else:
            try:
                fq_path = opts.fake_quant or _fake_quant_from_meta(path, meta)
                if fq_path and meta.precision == "int8" and refuse_program(fq_path):
                    row["fake_quant_note"] = f"sidecar's extra.fake_quant not loaded: {refuse_program(fq_path)}"
                    tqdm.write(f"warning: {path}: {row['fake_quant_note']}")
                    fq_path = None
                ref, inputs, frames = reference(meta)
                res = runner.run(inputs, opts.runs, opts.warmup)
                fq = (
                    load_fake_quant(fq_path, opts.threads).run(inputs, 0, 0)
                    if (fq_path and meta.precision == "int8")
                    else None
                )
                measure(row, res, ref, images, frames, meta, fq)
                row["checks"] = thresholds.checks(row, t)
                row["passed"] = all(c["passed"] for c in row["checks"])
            except SlfmError as e:
                row.update(status="error", error=str(e), passed=False)
            except Exception as e:  # a runtime's own error on a bad artifact: this row fails, the others run
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                row.update(status="error", error=f"{path}: {type(e).__name__}: {first}", passed=False)
            if row["status"] != "ok":  # not loadable or not runnable: nothing to compare layer by layer
                pass
            elif (
                meta.format == "tflite"
                and opts.layers != "never"
                and (opts.layers == "always" or row["passed"] is False)
            ):
                row["divergence"] = _divergence(path, refs, meta, t)
            elif meta.format == "executorch" and (
                opts.layers == "always" or (opts.layers != "never" and row["passed"] is False)
            ):
                row["divergence"] = _divergence_pte(path, refs, meta, t, opts.threads)
            elif meta.format != "tflite" and row["passed"] is False:
                row["divergence"] = {
                    "available": False,
                    "reason": f"layer-by-layer comparison is implemented for TFLite and ExecuTorch, not {meta.format}",
                }
        rep["artifacts"].append(row)
        rep["passed"] = all(a["passed"] is not False for a in rep["artifacts"])
        report.write(rep, opts.out, with_chart=False)
    report.write(rep, opts.out, with_chart=True)
    return rep


def check_passed(rep: dict) -> dict:
    """``rep`` when every artifact passed (or was not judged); an error naming each failure otherwise."""
    failed = [a for a in rep["artifacts"] if a["passed"] is False]
    if failed:
        names = ", ".join(f"{Path(a['artifact']).name} on {a['target']}" for a in failed)
        raise SlfmError(f"parity failed for {len(failed)} of {len(rep['artifacts'])}: {names}")
    return rep


def parity_step(opts: ParityOptions) -> dict:
    """The parity step of ``slfm pipeline``: run, print the report, fail when an artifact failed."""
    from slfm.device_tests.report import markdown

    rep = run_parity(opts)
    print(markdown(rep), flush=True)
    return check_passed(rep)


def _fake_quant_from_meta(path: Path, meta: ArtifactMeta) -> Path | None:
    name = (meta.extra or {}).get("fake_quant")
    return (path.parent / name) if name else None


def _divergence(path: Path, refs: dict, meta: ArtifactMeta, t: dict) -> dict:
    from slfm.device_tests.divergence import compare_layers

    if meta.image_size not in refs:
        return {"available": False, "reason": "no reference run for this input size"}
    ref, inputs, _ = refs[meta.image_size]
    try:
        return compare_layers(str(path), ref.module, inputs[:1], t["layer_snr_db"])
    except Exception as e:  # the localisation is a diagnostic: never lose the row because of it
        return {"available": False, "reason": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}


def _divergence_pte(path: Path, refs: dict, meta: ArtifactMeta, t: dict, threads: int) -> dict:
    """The first divergent op of a .pte (:mod:`slfm.device_tests.divergence_pte`); never loses the row."""
    from slfm.device_tests.divergence_pte import compare_ops, source_module
    from slfm.device_tests.runtimes import load_runner

    if meta.image_size not in refs:
        return {"available": False, "reason": "no reference run for this input size"}
    ref, inputs, _ = refs[meta.image_size]
    try:
        module = source_module(path, meta)
        return compare_ops(module, ref.module, inputs[:1], t["layer_snr_db"], load_runner(path, threads=threads))
    except Exception as e:  # the localisation is a diagnostic: never lose the row because of it
        return {"available": False, "reason": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
