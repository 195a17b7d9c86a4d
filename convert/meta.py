"""The artifact contract (:class:`slfm.artifact.ArtifactMeta`) inside each format, besides the JSON sidecar.

- TFLite: a model metadata entry named ``slfm`` (the JSON, UTF-8) in the flatbuffer;
- ExecuTorch: a constant method ``slfm_meta`` returning the JSON as a uint8 tensor;
- Core ML: ``user_defined_metadata["slfm"]`` (plus the standard author / version / description fields).
"""

from __future__ import annotations

import json
from pathlib import Path

from slfm.artifact import ArtifactMeta

TFLITE_KEY = "slfm"
PTE_METHOD = "slfm_meta"
COREML_KEY = "slfm"


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def embed_tflite(model: bytes, meta: ArtifactMeta) -> bytes:
    """Add (or replace) the ``slfm`` metadata entry of a .tflite flatbuffer (buffers the model keeps after the
    flatbuffer, by offset, are moved inline: repacking would drop them, leaving offsets out of range)."""
    import flatbuffers
    import numpy as np

    schema = _schema()
    m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    for b in m.buffers or []:  # data stored after the flatbuffer (ai-edge-quantizer's fp16 weights): packed
        if getattr(b, "offset", 0) > 1:  # again below, that tail would be lost; carry it inline instead
            b.data = np.frombuffer(model[b.offset : b.offset + b.size], dtype=np.uint8)
            b.offset, b.size = 0, 0
    buf = schema.BufferT()
    buf.data = np.frombuffer(meta.to_json().encode(), dtype=np.uint8)
    m.buffers.append(buf)
    entry = schema.MetadataT()
    entry.name = TFLITE_KEY
    entry.buffer = len(m.buffers) - 1
    m.metadata = [e for e in (m.metadata or []) if e.name not in (TFLITE_KEY, TFLITE_KEY.encode())] + [entry]
    b = flatbuffers.Builder(len(model) + 4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def read_tflite(path: str | Path) -> dict | None:
    schema = _schema()
    data = Path(path).read_bytes()
    m = schema.Model.GetRootAs(data, 0)
    for i in range(m.MetadataLength()):
        e = m.Metadata(i)
        if e.Name() == TFLITE_KEY.encode():
            return json.loads(m.Buffers(e.Buffer()).DataAsNumpy().tobytes().decode())
    return None


def pte_constant_methods(meta: ArtifactMeta) -> dict:
    import torch

    return {PTE_METHOD: torch.frombuffer(bytearray(meta.to_json().encode()), dtype=torch.uint8)}


def read_pte(path: str | Path) -> dict | None:
    from executorch.runtime import Runtime

    prog = Runtime.get().load_program(Path(path))
    if PTE_METHOD not in prog.method_names:
        return None
    (t,) = prog.load_method(PTE_METHOD).execute([])
    return json.loads(bytes(t.numpy().astype("uint8").tolist()).decode())


def read_coreml(path: str | Path) -> dict | None:
    """The ``slfm`` entry of a Core ML model's user-defined metadata (read from the spec: works on Linux)."""
    import coremltools as ct

    spec = ct.utils.load_spec(str(path))
    value = spec.description.metadata.userDefined.get(COREML_KEY)
    return json.loads(value) if value else None
