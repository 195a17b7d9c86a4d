"""The contract every exported artifact carries: a JSON sidecar ``<artifact>.json`` (and the same dict
embedded in the artifact where the format allows: TFLite metadata, Core ML user-defined metadata,
ExecuTorch constant methods).

Decoding and NMS run on the host, in :mod:`slfm.postprocess`, from the two graph outputs:
``loc`` [1, A, 4] SSD offsets and ``scores`` [1, A, C] softmax probabilities (column 0 background).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from slfm import __version__
from slfm.config import ModelConfig
from slfm.errors import SlfmError
from slfm.formats import FORMATS, PRECISIONS
from slfm.outputs import write_text
from slfm.postprocess import DEMO

SCHEMA = "slfm-artifact/1"


@dataclass
class ArtifactMeta:
    format: str  # tflite | coreml | executorch
    precision: str  # fp32 | fp16 | int8
    image_size: int
    layout: str = "NCHW"  # input layout: NCHW or NHWC
    input_dtype: str = "float32"  # float32, or int8/uint8 for fully quantized graphs
    input_quant: list[float] | None = None  # (scale, zero_point) of a quantized input
    output_quant: dict[str, list[float]] = field(default_factory=dict)  # name -> (scale, zero_point)
    color: str = "BGR"
    mean_bgr: list[float] = field(default_factory=lambda: [104.0, 117.0, 123.0])
    pixel_scale: float = 1.0  # input = (pixel - mean) * pixel_scale
    letterbox: str = "long side to image_size, pad right/bottom with mean colour"
    outputs: list[str] = field(default_factory=lambda: ["loc", "scores"])
    # each name's position among the graph's outputs (what a runtime's output list numbers); None in sidecars
    # older than the field: then the shapes decide (slfm.core.output_order, mirrored by every port)
    output_indices: list[int] | None = None
    classes: list[str] = field(default_factory=lambda: ["background", "face", "mask"])
    min_sizes: list[list[int]] = field(default_factory=lambda: [[16, 32], [64, 128], [256, 512]])
    steps: list[int] = field(default_factory=lambda: [8, 16, 32])
    variances: list[float] = field(default_factory=lambda: [0.1, 0.2])
    num_anchors: int = 0
    score_threshold: float = DEMO.score_threshold
    nms_iou: float = DEMO.nms_iou
    cross_class_iou: float = DEMO.cross_class_iou
    quantization: str | None = None  # e.g. "qat-xnnpack", "ptq-litert", "weights-int8"
    model_version: str = __version__
    source_checkpoint: str = ""
    source_sha256: str = ""
    extra: dict = field(default_factory=dict)
    schema: str = SCHEMA

    @classmethod
    def from_model_config(cls, cfg: ModelConfig, fmt: str, precision: str, **kw) -> ArtifactMeta:
        from slfm.anchors import anchors

        n = int(anchors(cfg.image_size, cfg.image_size, cfg.min_sizes, cfg.steps).shape[0])
        kw.setdefault("output_indices", [0, 1])  # the model returns (loc, scores); TFLite records its own order
        return cls(
            format=fmt,
            precision=precision,
            image_size=cfg.image_size,
            mean_bgr=list(cfg.mean_bgr),
            classes=list(cfg.classes),
            min_sizes=[list(m) for m in cfg.min_sizes],
            steps=list(cfg.steps),
            variances=list(cfg.variances),
            num_anchors=n,
            **kw,
        )

    def model_config(self) -> ModelConfig:
        """The pre/post-processing half of the model config (input, anchors, classes) this artifact was made with."""
        return ModelConfig(
            image_size=self.image_size,
            mean_bgr=tuple(self.mean_bgr),
            classes=tuple(self.classes),
            min_sizes=tuple(tuple(m) for m in self.min_sizes),
            steps=tuple(self.steps),
            variances=tuple(self.variances),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> ArtifactMeta:
        """Raises ValueError naming the field at fault (the caller names the file)."""
        if not isinstance(d, dict):
            raise ValueError(f"expected a JSON object, got {type(d).__name__}")
        if d.get("schema") != SCHEMA:
            raise ValueError(f"schema {d.get('schema')!r} is not {SCHEMA!r}")
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}")
        meta = cls(**d)
        checks = {
            "format": meta.format in FORMATS,
            "precision": meta.precision in PRECISIONS,
            "image_size": type(meta.image_size) is int and 32 <= meta.image_size <= 8192,
            "layout": meta.layout in ("NCHW", "NHWC"),
            "mean_bgr": _numbers(meta.mean_bgr, 3),
            "variances": _numbers(meta.variances, 2),
            "steps": isinstance(meta.steps, list) and all(type(v) is int and v > 0 for v in meta.steps),
            "min_sizes": isinstance(meta.min_sizes, list)
            and len(meta.min_sizes) == len(meta.steps)
            and all(_numbers(m, len(m)) and m and all(v > 0 for v in m) for m in meta.min_sizes),
            "classes": isinstance(meta.classes, list) and len(meta.classes) >= 2,
            "score_threshold": _numbers([meta.score_threshold], 1) and 0 <= meta.score_threshold <= 1,
            "nms_iou": _numbers([meta.nms_iou], 1) and 0 <= meta.nms_iou <= 1,
            "cross_class_iou": _numbers([meta.cross_class_iou], 1) and 0 <= meta.cross_class_iou <= 1,
            "extra": isinstance(meta.extra, dict),
            "output_indices": meta.output_indices is None
            or (
                isinstance(meta.output_indices, list)
                and all(type(i) is int for i in meta.output_indices)
                and sorted(meta.output_indices) == list(range(len(meta.outputs)))
            ),
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid {bad[0]} {getattr(meta, bad[0])!r}")
        return meta


def _numbers(v, n: int) -> bool:
    """``v`` is a list of ``n`` finite numbers."""
    return isinstance(v, list) and len(v) == n and all(type(x) in (int, float) and math.isfinite(x) for x in v)


def sidecar_path(artifact: str | Path) -> Path:
    return Path(str(artifact) + ".json")


def write_sidecar(artifact: str | Path, meta: ArtifactMeta) -> Path:
    return write_text(sidecar_path(artifact), meta.to_json() + "\n")


def read_sidecar(artifact: str | Path) -> ArtifactMeta:
    p = sidecar_path(artifact)
    if not p.is_file():
        raise SlfmError(f"{artifact}: metadata sidecar {p} not found (every slfm artifact has one)")
    try:
        return ArtifactMeta.from_dict(json.loads(p.read_bytes()))
    except (ValueError, TypeError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise SlfmError(f"{p}: unreadable artifact metadata: {str(e).splitlines()[0][:200]}") from e
