"""A .tflite graph as data: its operators (name, version, dtype, MACs), single-op models cut out of it, and
synthetic one-convolution models for measuring what this CPU can do.

Uses the flatbuffer schema that ai-edge-litert ships (``ai_edge_litert.schema_py_generated``) and nothing
else: no TensorFlow.

Why single-op models: neither ai-edge-litert 2.3 nor tflite-runtime 2.14 exposes a per-op profiler to
Python, so each operator is cut out with its own tensors (constants kept, activations as inputs) and timed
alone (``pi_runner.timing``). The sum over ops overstates the whole graph (one invoke per op, and XNNPACK's
fusions across ops, e.g. PAD into the next convolution, are lost), so reports give each op type's *share* of
that sum beside the whole-graph time.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slfm.errors import SlfmError

MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def _schema():
    from ai_edge_litert import schema_py_generated as s

    return s


def _op_names() -> dict[int, str]:
    s = _schema()
    return {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


def _type_names() -> dict[int, str]:
    s = _schema()
    return {v: k.lower() for k, v in vars(s.TensorType).items() if not k.startswith("_") and isinstance(v, int)}


def read_model(path: str | Path):
    """The ``ModelT`` object tree of a .tflite file (error naming the file when it is not one)."""
    path = Path(path)
    buf = path.read_bytes()
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise SlfmError(f"{path}: not a TFLite flatbuffer (no 'TFL3' identifier at byte 4)")
    return _schema().ModelT.InitFromPackedBuf(buf, 0)


def write_model(model, path: str | Path) -> Path:
    import flatbuffers

    b = flatbuffers.Builder(1 << 16)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    path = Path(path)
    path.write_bytes(bytes(b.Output()))
    return path


@dataclass(frozen=True)
class Op:
    index: int
    name: str
    version: int
    dtype: str  # of the first input
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    macs: int


def _macs(name: str, g, op) -> int:
    if name not in MAC_OPS:
        return 0
    out = [int(d) for d in g.tensors[op.outputs[0]].shape]
    w = [int(d) for d in g.tensors[op.inputs[1]].shape]
    n_out = int(np.prod(out))
    if name == "CONV_2D":  # weights [O, KH, KW, I]
        return n_out * w[1] * w[2] * w[3]
    if name == "DEPTHWISE_CONV_2D":  # weights [1, KH, KW, C*M]: one MAC per tap per output
        return n_out * w[1] * w[2]
    if name == "FULLY_CONNECTED":  # weights [O, I]
        return n_out * w[1]
    return n_out * w[1] * w[2] * int(g.tensors[op.inputs[2]].shape[-1])  # TRANSPOSE_CONV [O, KH, KW, I]


def ops(path: str | Path) -> list[Op]:
    """The operators of the main subgraph in execution order."""
    m = read_model(path)
    g = m.subgraphs[0]
    names, types = _op_names(), _type_names()
    res = []
    for i, op in enumerate(g.operators):
        c = m.operatorCodes[op.opcodeIndex]
        name = names.get(max(c.builtinCode, c.deprecatedBuiltinCode), f"CUSTOM({c.customCode})")
        t_in = g.tensors[op.inputs[0]] if op.inputs is not None and len(op.inputs) else None
        t_out = g.tensors[op.outputs[0]]
        res.append(
            Op(
                index=i,
                name=name,
                version=int(c.version),
                dtype=types.get(t_in.type, "?") if t_in is not None else "?",
                input_shape=tuple(int(d) for d in t_in.shape) if t_in is not None and t_in.shape is not None else (),
                output_shape=tuple(int(d) for d in t_out.shape) if t_out.shape is not None else (),
                macs=_macs(name, g, op),
            )
        )
    return res


def graph_macs(path: str | Path) -> int:
    return sum(o.macs for o in ops(path))


def _is_const(m, g, t: int) -> bool:
    data = m.buffers[g.tensors[t].buffer].data
    return data is not None and len(data) > 0


def cut_ops(path: str | Path, out_dir: str | Path) -> list[tuple[Op, Path]]:
    """One .tflite per operator of ``path`` (``NNN_OPNAME.tflite`` in ``out_dir``): the operator, its constant
    inputs with their data, its other inputs as graph inputs, its outputs as graph outputs."""
    s = _schema()
    m = read_model(path)
    if len(m.subgraphs) != 1:
        raise SlfmError(f"{path}: {len(m.subgraphs)} subgraphs; cutting single ops supports one")
    g = m.subgraphs[0]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    res = []
    for o, op in zip(ops(path), g.operators, strict=True):
        used = list(dict.fromkeys(t for t in [*op.inputs, *op.outputs] if t >= 0))
        remap = {t: k for k, t in enumerate(used)}
        nm = s.ModelT()
        nm.version, nm.description = m.version, f"op {o.index} ({o.name}) of {Path(path).name}"
        nm.operatorCodes = [copy.copy(m.operatorCodes[op.opcodeIndex])]
        nm.buffers = [s.BufferT()]
        sg = s.SubGraphT()
        sg.name, sg.tensors = "op", []
        for t in used:
            tt = copy.copy(g.tensors[t])
            nm.buffers.append(m.buffers[tt.buffer] if _is_const(m, g, t) else s.BufferT())
            tt.buffer = len(nm.buffers) - 1
            sg.tensors.append(tt)
        nop = copy.copy(op)
        nop.opcodeIndex = 0
        nop.inputs = [remap[t] if t >= 0 else -1 for t in op.inputs]
        nop.outputs = [remap[t] for t in op.outputs]
        nop.intermediates = []
        sg.operators = [nop]
        sg.inputs = [remap[t] for t in op.inputs if t >= 0 and not _is_const(m, g, t)]
        sg.outputs = [remap[t] for t in op.outputs]
        nm.subgraphs = [sg]
        res.append((o, write_model(nm, out_dir / f"{o.index:03d}_{o.name}.tflite")))
    return res


def synthetic_conv(path: str | Path, dtype: str, hw: int = 56, channels: int = 256) -> tuple[Path, int]:
    """A one-CONV_2D model (1x1 kernel, [1, hw, hw, channels] -> channels, bias, no activation) in ``float32``
    or ``int8`` (per-channel int8 weights, int32 bias, int8 activations: the form slfm's int8 graphs use).
    A dense GEMM with nothing around it: the fastest a CPU runs convolutions through that runtime.
    Returns (path, MACs)."""
    s = _schema()
    if dtype not in ("float32", "int8"):
        raise SlfmError(f"synthetic_conv: dtype {dtype!r} is not float32 or int8")
    rng = np.random.default_rng(0)
    m = s.ModelT()
    m.version, m.description = 3, f"synthetic 1x1 conv {hw}x{hw}x{channels} {dtype}"
    code = s.OperatorCodeT()
    code.builtinCode = s.BuiltinOperator.CONV_2D
    code.deprecatedBuiltinCode = s.BuiltinOperator.CONV_2D
    code.version = 3 if dtype == "int8" else 1
    m.operatorCodes = [code]

    def buf(arr: np.ndarray | None):
        b = s.BufferT()
        if arr is not None:
            b.data = np.frombuffer(arr.tobytes(), np.uint8).tolist()
        m.buffers.append(b)
        return len(m.buffers) - 1

    def quant(scale, zp, axis=0):
        q = s.QuantizationParametersT()
        q.scale = [float(v) for v in np.atleast_1d(scale)]
        q.zeroPoint = [int(v) for v in np.atleast_1d(zp)]
        q.quantizedDimension = axis
        return q

    def tensor(name, shape, ttype, buffer, q=None):
        t = s.TensorT()
        t.name, t.shape, t.type, t.buffer, t.quantization = name, list(shape), ttype, buffer, q
        return t

    m.buffers = [s.BufferT()]
    c, T = channels, s.TensorType
    if dtype == "float32":
        w = rng.standard_normal((c, 1, 1, c)).astype(np.float32) * 0.05
        tensors = [
            tensor("x", (1, hw, hw, c), T.FLOAT32, buf(None)),
            tensor("w", w.shape, T.FLOAT32, buf(w)),
            tensor("b", (c,), T.FLOAT32, buf(np.zeros(c, np.float32))),
            tensor("y", (1, hw, hw, c), T.FLOAT32, buf(None)),
        ]
    else:
        w = rng.integers(-127, 128, (c, 1, 1, c), dtype=np.int8)
        w_scale = np.full(c, 0.01, np.float32)
        tensors = [
            tensor("x", (1, hw, hw, c), T.INT8, buf(None), quant(0.05, -3)),
            tensor("w", w.shape, T.INT8, buf(w), quant(w_scale, np.zeros(c, int), 0)),
            tensor("b", (c,), T.INT32, buf(np.zeros(c, np.int32)), quant(w_scale * 0.05, np.zeros(c, int), 0)),
            tensor("y", (1, hw, hw, c), T.INT8, buf(None), quant(0.5, 2)),
        ]
    opts = s.Conv2DOptionsT()
    opts.padding, opts.strideH, opts.strideW = s.Padding.SAME, 1, 1
    opts.dilationHFactor = opts.dilationWFactor = 1
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1, 2], [3]
    op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.Conv2DOptions, opts
    g = s.SubGraphT()
    g.name, g.tensors, g.operators, g.inputs, g.outputs = "conv", tensors, [op], [0], [3]
    m.subgraphs = [g]
    return write_model(m, path), hw * hw * c * c
