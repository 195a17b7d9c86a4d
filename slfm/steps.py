"""The steps of the main job, as library functions with typed configs.

Each step kind pairs a config dataclass with the function that does the work; ``slfm pipeline`` plans a list
of (kind, config) and runs each one with :func:`run_step`. Python users call the same functions:

    from slfm.convert.job import ConvertJob, convert_job
    convert_job(ConvertJob(checkpoint="moxa3k", formats=("tflite",), out=Path("artifacts")))

The pipeline runs each step in a fresh interpreter (``python -m slfm.steps CONFIG.json RESULT.json [THREADS]``,
the kind named inside CONFIG.json): converters and runtimes then never share a process (memory, thread pools,
global registrations), and the step's whole output, native libraries' included, lands in its log. The config
travels as data (JSON, read back into its dataclass by :func:`slfm.manifest.config_from_json`); the kind is
looked up in :data:`KINDS`, so the file names no code.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slfm.manifest import config_from_json, config_json


@dataclass(frozen=True)
class StepKind:
    """One kind of step: where its config class and function live, and the files its result names."""

    config: str  # "module:Class"
    run: str  # "module:function"
    outputs: Callable[[Any, Any], list[Path]]  # (config, result) -> the files it produced


def _artifact_outputs(job, result) -> list[Path]:
    from slfm.artifact import sidecar_path

    return [q for p in result.artifacts.values() for q in (Path(p), sidecar_path(Path(p)))]


def _report_outputs(opts, result) -> list[Path]:
    return [Path(opts.out).with_suffix(s) for s in (".json", ".md")]


KINDS: dict[str, StepKind] = {
    "train": StepKind("slfm.train:TrainJob", "slfm.train:train_job", lambda job, best: [Path(best)]),
    "qat": StepKind("slfm.quantize.qat:QATJob", "slfm.quantize.qat:qat_job", lambda job, path: [Path(path)]),
    "convert": StepKind("slfm.convert.job:ConvertJob", "slfm.convert.job:convert_job", _artifact_outputs),
    "eval": StepKind(
        "slfm.eval_job:EvalJob", "slfm.eval_job:eval_job", lambda job, _: [Path(job.json_out)] if job.json_out else []
    ),
    "parity": StepKind(
        "slfm.device_tests.parity:ParityOptions", "slfm.device_tests.parity:parity_step", _report_outputs
    ),
}


def _load(ref: str):
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def kind_of(config: Any) -> str:
    for name, kind in KINDS.items():
        if kind.config.split(":")[1] == type(config).__name__:
            return name
    raise ValueError(f"no step kind takes a {type(config).__name__}")


def to_json(config: Any) -> dict:
    return {"kind": kind_of(config), "config": config_json(config)}


def from_json(data: dict) -> Any:
    """The config a step file holds; its kind must be one of :data:`KINDS` (the file names no code)."""
    from slfm.errors import SlfmError

    kind = KINDS.get(str(data.get("kind")))
    if kind is None:
        raise SlfmError(f"unknown step kind {data.get('kind')!r} (known: {', '.join(KINDS)})")
    try:
        return config_from_json(_load(kind.config), data.get("config", {}))
    except (TypeError, ValueError) as e:
        raise SlfmError(f"step file for {data['kind']!r}: {e}") from e


def run_step(config: Any) -> list[Path]:
    """Do the work ``config`` describes in this process; returns the files it produced."""
    kind = KINDS[kind_of(config)]
    result = _load(kind.run)(config)
    return kind.outputs(config, result)


def main(argv: list[str] | None = None) -> int:
    """``python -m slfm.steps CONFIG.json RESULT.json [THREADS]``: one step in this process (the pipeline's)."""
    from slfm.errors import SlfmError
    from slfm.options import apply_threads

    args = sys.argv[1:] if argv is None else argv
    config_path, result_path = Path(args[0]), Path(args[1])
    apply_threads(int(args[2]) if len(args) > 2 else None)
    try:
        outputs = run_step(from_json(json.loads(config_path.read_text())))
    except json.JSONDecodeError as e:
        print(f"Error: {config_path}: not JSON ({e})", file=sys.stderr, flush=True)
        return 1
    except SlfmError as e:
        print(f"Error: {e}", file=sys.stderr, flush=True)
        return 1
    result_path.write_text(json.dumps({"outputs": [str(p) for p in outputs]}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
