"""Core ML artifacts where predictions cannot run (anything but macOS): check the spec instead -- input
name and shape against the sidecar, two outputs, op count -- and say that predictions need macOS."""

from __future__ import annotations

import platform
from pathlib import Path

from slfm.artifact import ArtifactMeta

NEEDS_MACOS = "Core ML predictions need macOS (this is {system}): spec checked only"


def is_macos() -> bool:
    return platform.system() == "Darwin"


def spec_checks(path: Path, meta: ArtifactMeta) -> list[dict]:
    out = []

    def add(name, value, expected, ok):
        out.append({"name": name, "value": value, "threshold": expected, "passed": bool(ok)})

    try:
        import coremltools as ct

        model = ct.models.MLModel(str(path), skip_model_load=True)
        spec = model.get_spec()
    except Exception as e:  # coremltools raises many types; one line naming the file
        add("loads", f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", "loadable spec", False)
        return out
    add("loads", True, True, True)
    inputs = list(spec.description.input)
    outputs = list(spec.description.output)
    add("inputs", len(inputs), 1, len(inputs) == 1)
    if inputs and inputs[0].type.HasField("multiArrayType"):
        shape = list(inputs[0].type.multiArrayType.shape)
        s = meta.image_size
        want = [1, 3, s, s] if meta.layout == "NCHW" else [1, s, s, 3]
        add("input_shape", shape, want, shape == want)
    add("outputs", len(outputs), 2, len(outputs) == 2)
    kind = spec.WhichOneof("Type")
    want = "pipeline" if meta.extra.get("coreml_nms") else "mlProgram"  # slfm convert --coreml-nms: for Vision
    add("model_type", kind, want, kind == want)
    programs = [spec] if kind == "mlProgram" else []
    if kind == "pipeline":
        models = list(spec.pipeline.models)
        kinds = [m.WhichOneof("Type") for m in models]
        expected = ["mlProgram", "mlProgram", "nonMaximumSuppression"]
        add("pipeline_models", kinds, expected, kinds == expected)
        programs = [m for m in models if m.WhichOneof("Type") == "mlProgram"]
    if programs:
        n_ops = sum(
            len(b.operations)
            for m in programs
            for f in m.mlProgram.functions.values()
            for b in f.block_specializations.values()
        )
        add("ops", n_ops, "> 0", n_ops > 0)
    return out
