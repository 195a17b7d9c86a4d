"""Timing mode of the on-device runner: whole models and single-op models under each op resolver.

    python3 -m pi_runner.timing SPEC.json OUT.json

Runs in any environment with numpy and a TFLite interpreter (a Pi, the tflite-runtime 2.14 venv, the main
environment with ai-edge-litert). SPEC::

    {"runtime": "tflite_runtime" | "ai_edge_litert", "threads": 1, "runs": 30, "warmup": 5,
     "models": [{"key": "...", "path": "...", "resolver": "AUTO"}, ...],
     "op_models": {"paths": [...], "resolvers": ["AUTO", ...], "runs": 5}}

Whole models are timed in interleaved rounds (one invoke of each per round, after their warm-up) so that load
from other processes spreads over all of them. Each op model holds one operator of a graph (cut out by
``slfm.convert.tflite_graph``); its time is the minimum over ``runs`` invokes, and ``delegated`` says whether
the default XNNPACK delegate took it (a DELEGATE node appears in the execution plan).

Resolvers (``experimental_op_resolver_type``): AUTO = builtin kernels + the default XNNPACK delegate;
BUILTIN_WITHOUT_DEFAULT_DELEGATES = the optimized builtin kernels only; BUILTIN_REF = the reference kernels.
"""

from __future__ import annotations

import json
import platform
import sys
import time

import numpy as np

from .backend import RunnerError, import_interpreter


def _open(interpreter_cls, path: str, resolver: str, threads: int):
    import importlib

    mod = importlib.import_module(interpreter_cls.__module__)
    kinds = mod.OpResolverType
    if not hasattr(kinds, resolver):
        raise RunnerError(f"unknown op resolver {resolver!r}: use one of AUTO, BUILTIN, BUILTIN_REF, ...")
    try:
        it = interpreter_cls(
            model_path=path, num_threads=int(threads), experimental_op_resolver_type=getattr(kinds, resolver)
        )
        it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise RunnerError(f"{path}: cannot load it with resolver {resolver}: {first}") from e
    for d in it.get_input_details():
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    return it


def _nodes(it) -> list[str]:
    return [o["op_name"] for o in it._get_ops_details()]


def time_models(interpreter_cls, models: list[dict], threads: int, runs: int, warmup: int) -> dict:
    its = {m["key"]: _open(interpreter_cls, m["path"], m.get("resolver", "AUTO"), threads) for m in models}
    out = {
        k: {"warmup_ms": [], "times_ms": [], "delegate_nodes": _nodes(it).count("DELEGATE")} for k, it in its.items()
    }
    for k, it in its.items():
        for _ in range(warmup):
            t = time.perf_counter()
            it.invoke()
            out[k]["warmup_ms"].append(1000 * (time.perf_counter() - t))
    for _ in range(runs):
        for k, it in its.items():
            t = time.perf_counter()
            it.invoke()
            out[k]["times_ms"].append(1000 * (time.perf_counter() - t))
    return out


def time_op_models(interpreter_cls, paths: list[str], resolvers: list[str], threads: int, runs: int) -> dict:
    """{resolver: {path: {"ms": min time, "delegated": bool}}}."""
    res: dict = {}
    for resolver in resolvers:
        for p in paths:
            it = _open(interpreter_cls, p, resolver, threads)
            it.invoke()
            best = float("inf")
            for _ in range(runs):
                t = time.perf_counter()
                it.invoke()
                best = min(best, time.perf_counter() - t)
            res.setdefault(resolver, {})[p] = {"ms": 1000 * best, "delegated": "DELEGATE" in _nodes(it)}
    return res


def run(spec: dict) -> dict:
    interpreter_cls, name, version = import_interpreter(spec.get("runtime"))
    threads = int(spec.get("threads", 1))
    result = {
        "runtime": name,
        "runtime_version": version,
        "threads": threads,
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "python": platform.python_version(),
        },
        "models": time_models(interpreter_cls, spec.get("models", []), threads, spec["runs"], spec["warmup"]),
    }
    ops = spec.get("op_models")
    if ops:
        result["op_models"] = time_op_models(interpreter_cls, ops["paths"], ops["resolvers"], threads, ops["runs"])
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python3 -m pi_runner.timing SPEC.json OUT.json", file=sys.stderr)
        return 2
    try:
        with open(argv[0]) as f:
            spec = json.load(f)
        result = run(spec)
    except (RunnerError, OSError, ValueError, KeyError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    with open(argv[1], "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
