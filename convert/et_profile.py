"""ExecuTorch latency and per-op profile of .pte programs, in a process of its own.

    python -m slfm.convert.et_profile SPEC.json OUT.json

SPEC: ``{"threads": 1, "runs": 30, "warmup": 5, "models": {"key": "path.pte", ...}, "profile_runs": 5}``.
Each program is timed with plain ``forward`` calls in interleaved rounds; then, loaded a second time with
ETDump enabled (``portable_lib._load_for_executorch(..., enable_etdump=True)``), it is run ``profile_runs``
times and the dump read back with ``executorch.devtools.Inspector``: one row per runtime event (XNNPACK's
operators inside the delegate, portable kernels outside it) with its median time.
ExecuTorch sizes its threadpool once per process (:func:`slfm.device_tests.runtimes._et_threads`), hence the
separate process.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from pathlib import Path


def kernel_kind(event: str, delegated: bool) -> str:
    """A short name for the kernel behind an event: XNNPACK operator family, or the portable op."""
    if delegated:
        return re.sub(r"\s*#\d+$", "", event)
    return event.split("::")[-1] if "::" in event else event


def profile(module, path: str, runs: int) -> list[dict]:
    """[{event, kernel, delegated, p50_ms}] of one run of ``path`` (median over ``runs`` with ETDump)."""
    import torch
    from executorch.devtools import Inspector
    from executorch.extension.pybindings import portable_lib as pl

    m = pl._load_for_executorch(path, enable_etdump=True, debug_buffer_size=0)
    x = torch.zeros(module)
    for _ in range(runs):
        m.forward([x])
    with tempfile.TemporaryDirectory(prefix="slfm-etdump-") as tmp:
        dump = str(Path(tmp) / "run.etdp")
        m.write_etdump_result_to_file(dump)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = Inspector(etdump_path=dump).to_dataframe()
    rows = []
    for _, r in df[df["event_block_name"] == "Execute"].iterrows():
        name = str(r["event_name"])
        if name in ("Method::execute", "DELEGATE_CALL"):
            continue  # wrappers around the events listed
        delegated = bool(r["is_delegated_op"])
        rows.append(
            {
                "event": name,
                "kernel": kernel_kind(name, delegated),
                "delegated": delegated,
                "p50_ms": float(r["p50 (ms)"]),
            }
        )
    return rows


def run(spec: dict) -> dict:
    import torch
    from executorch.extension.pybindings import portable_lib as pl
    from executorch.runtime import Runtime

    threads = int(spec.get("threads", 1))
    pl._unsafe_reset_threadpool(threads)  # before any method is loaded (see runtimes._et_threads)
    rt = Runtime.get()
    methods, shapes = {}, {}
    for key, path in spec["models"].items():
        methods[key] = rt.load_program(path).load_method("forward")
        shapes[key] = list(methods[key].metadata.input_tensor_meta(0).sizes())
    xs = {k: torch.zeros(shapes[k]) for k in methods}
    out = {k: {"warmup_ms": [], "times_ms": [], "input_shape": shapes[k]} for k in methods}
    for k, m in methods.items():
        for _ in range(spec["warmup"]):
            t = time.perf_counter()
            m.execute([xs[k]])
            out[k]["warmup_ms"].append(1000 * (time.perf_counter() - t))
    for _ in range(spec["runs"]):
        for k, m in methods.items():
            t = time.perf_counter()
            m.execute([xs[k]])
            out[k]["times_ms"].append(1000 * (time.perf_counter() - t))
    if spec.get("profile_runs"):
        for k, path in spec["models"].items():
            out[k]["profile"] = profile(shapes[k], path, int(spec["profile_runs"]))
    from importlib.metadata import version

    return {
        "runtime": "executorch",
        "runtime_version": version("executorch"),
        "threads": threads,
        "models": out,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text())
    Path(argv[1]).write_text(json.dumps(run(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
