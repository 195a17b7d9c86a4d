"""Core ML for Vision: the raw mlprogram -> a decoder -> ``NonMaximumSuppression``, as one pipeline model.

``VNCoreMLRequest`` turns such a model's outputs into ``VNRecognizedObjectObservation``s with labels:

- the raw model (:func:`slfm.convert.coreml.to_coreml`): ``loc`` [1, A, 4], ``scores`` [1, A, C] softmax;
- the decoder (an mlprogram made from :class:`VisionDecoder`): ``anchor_confidence`` [A, C-1] (the object classes,
  background column dropped) and ``anchor_coordinates`` [A, 4] in Vision's convention, normalised centre x,
  centre y, width, height relative to the network input: the decode of :func:`slfm.codec.decode` with the
  contract's anchors and variances, left in centre/size form;
- ``NonMaximumSuppression``: per-class, with the contract's IoU and score thresholds and its class labels (no
  background). The host's cross-class suppression (:func:`slfm.nms.cross_class_suppress`) is not in it.

Prediction needs macOS; on Linux :func:`pipeline_summary` reads the spec.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from slfm.anchors import anchors
from slfm.artifact import ArtifactMeta
from slfm.convert.failures import conversion_error
from slfm.errors import SlfmError
from slfm.toolchain import require

CONFIDENCE_IN, COORDINATES_IN = "anchor_confidence", "anchor_coordinates"
CONFIDENCE, COORDINATES = "confidence", "coordinates"  # the pipeline's outputs, as Vision reads them


class VisionDecoder(torch.nn.Module):
    """(``loc`` [1, A, 4], ``scores`` [1, A, C]) -> (confidence [A, C-1], coordinates [A, 4] cx, cy, w, h)."""

    def __init__(self, priors: np.ndarray, variances) -> None:
        super().__init__()
        p = torch.from_numpy(np.asarray(priors, dtype=np.float32))
        self.register_buffer("centre", p[:, :2].clone())
        self.register_buffer("size", p[:, 2:].clone())
        self.v0, self.v1 = float(variances[0]), float(variances[1])

    def forward(self, loc: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc = loc[0]
        cxcy = self.centre + loc[:, :2] * self.v0 * self.size
        wh = self.size * torch.exp(loc[:, 2:] * self.v1)
        return scores[0, :, 1:], torch.cat([cxcy, wh], dim=1)


def decoder_for(meta: ArtifactMeta) -> VisionDecoder:
    s = meta.image_size
    return VisionDecoder(anchors(s, s, meta.min_sizes, meta.steps), meta.variances).eval()


def _decoder_model(meta: ArtifactMeta, ct):
    a, c = meta.num_anchors, len(meta.classes)
    example = (torch.zeros(1, a, 4), torch.zeros(1, a, c))
    try:
        ep = torch.export.export(decoder_for(meta), example).run_decompositions({})
        return ct.convert(
            ep,
            inputs=[ct.TensorType(name="loc", shape=(1, a, 4)), ct.TensorType(name="scores", shape=(1, a, c))],
            outputs=[ct.TensorType(name=CONFIDENCE_IN), ct.TensorType(name=COORDINATES_IN)],
            convert_to="mlprogram",
            compute_precision=ct.precision.FLOAT32,
            minimum_deployment_target=ct.target.iOS16,
            skip_model_load=True,
        )
    except Exception as e:
        raise conversion_error("coreml", "converting the Vision decoder", e) from e


def _nms_model(meta: ArtifactMeta, decoder, ct):
    """The ``NonMaximumSuppression`` model (a spec, as ultralytics' ``nms=True`` Core ML export builds it)."""
    labels = list(meta.classes[1:])
    spec = ct.proto.Model_pb2.Model()
    spec.specificationVersion = decoder.get_spec().specificationVersion
    for i, (src, name, cols) in enumerate(
        zip(decoder.get_spec().description.output, (CONFIDENCE, COORDINATES), (len(labels), 4), strict=True)
    ):
        spec.description.input.add().CopyFrom(src)
        spec.description.input[i].type.multiArrayType.ClearField("shape")
        spec.description.input[i].type.multiArrayType.shape.extend([meta.num_anchors, cols])
        out = spec.description.output.add()
        out.CopyFrom(src)
        out.name = name
        ma = out.type.multiArrayType
        ma.ClearField("shape")
        ranges = ma.shapeRange.sizeRanges
        ranges.add(lowerBound=0, upperBound=-1)  # detections
        ranges.add(lowerBound=cols, upperBound=cols)
    nms = spec.nonMaximumSuppression
    nms.confidenceInputFeatureName, nms.coordinatesInputFeatureName = CONFIDENCE_IN, COORDINATES_IN
    nms.confidenceOutputFeatureName, nms.coordinatesOutputFeatureName = CONFIDENCE, COORDINATES
    nms.iouThreshold = float(meta.nms_iou)
    nms.confidenceThreshold = float(meta.score_threshold)
    nms.pickTop.perClass = True
    nms.stringClassLabels.vector.extend(labels)
    return ct.models.MLModel(spec, skip_model_load=True)


def nms_pipeline(raw, meta: ArtifactMeta):
    """The Vision pipeline around ``raw`` (the image-input mlprogram of :func:`~slfm.convert.coreml.to_coreml`)."""
    ct = require("coreml")
    if [o.name for o in raw.get_spec().description.output] != ["loc", "scores"]:
        raise SlfmError("the Core ML NMS pipeline wraps a model with outputs loc, scores")
    decoder = _decoder_model(meta, ct)
    nms = _nms_model(meta, decoder, ct)
    try:
        ml = ct.utils.make_pipeline(raw, decoder, nms, compute_units=ct.ComputeUnit.ALL)
    except Exception as e:
        raise conversion_error("coreml", "building the NMS pipeline", e) from e
    for k, v in raw.user_defined_metadata.items():
        ml.user_defined_metadata[k] = v
    ml.user_defined_metadata["classes"] = ",".join(meta.classes[1:])
    ml.author, ml.version = raw.author, raw.version
    ml.short_description = "SL-FMDet face/mask detector for Vision: decode + per-class NMS inside"
    ml.input_description["image"] = raw.input_description["image"]
    ml.output_description[CONFIDENCE] = "per detection: confidence of " + ", ".join(meta.classes[1:])
    ml.output_description[COORDINATES] = "per detection: cx, cy, w, h normalised to the network input"
    return ml


def pipeline_summary(path: str | Path) -> dict:
    """The pipeline's models, NMS settings and features, from the spec (works on Linux)."""
    ct = require("coreml")
    spec = ct.utils.load_spec(str(path))
    if spec.WhichOneof("Type") != "pipeline":
        raise SlfmError(f"{path}: not a Core ML pipeline ({spec.WhichOneof('Type')})")
    models = list(spec.pipeline.models)
    nms = next((m for m in models if m.WhichOneof("Type") == "nonMaximumSuppression"), None)

    def shapes(desc):
        return {f.name: list(f.type.multiArrayType.shape) for f in desc}

    out = {
        "models": [m.WhichOneof("Type") for m in models],
        "inputs": {f.name: f.type.WhichOneof("Type") for f in spec.description.input},
        "outputs": [f.name for f in spec.description.output],
        "decoder_inputs": shapes(models[1].description.input) if len(models) > 1 else {},
        "decoder_outputs": shapes(models[1].description.output) if len(models) > 1 else {},
        "metadata": dict(spec.description.metadata.userDefined),
    }
    if nms is not None:
        p = nms.nonMaximumSuppression
        out["nms"] = {
            "class_labels": list(p.stringClassLabels.vector),
            "iou_threshold": p.iouThreshold,
            "confidence_threshold": p.confidenceThreshold,
            "per_class": p.pickTop.perClass,
            "inputs": shapes(nms.description.input),
            "confidence_input": p.confidenceInputFeatureName,
            "coordinates_input": p.coordinatesInputFeatureName,
        }
    return out


def _slice_by_index(x, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None):
    n = x.ndim
    stride = [1] * n if stride is None else stride
    idx = []
    for i in range(n):
        b = None if begin_mask is not None and begin_mask[i] else int(begin[i])
        e = None if end_mask is not None and end_mask[i] else int(end[i])
        idx.append(int(b) if squeeze_mask is not None and squeeze_mask[i] else slice(b, e, int(stride[i])))
    return x[tuple(idx)]


_NUMPY_OPS = {
    "slice_by_index": _slice_by_index,
    "mul": lambda x, y: x * y,
    "add": lambda x, y: x + y,
    "exp": lambda x: np.exp(x),
    "concat": lambda values, axis, interleave=False: np.concatenate(values, axis=int(axis)),
}


def run_decoder(path: str | Path, loc: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    """Evaluate the pipeline's decoder mlprogram, as saved, in NumPy (Linux has no Core ML runtime): its ops
    and constants (anchors, variances) read back from the package. Raises on an op it does not know."""
    ct = require("coreml")
    from coremltools.converters.mil.frontend.milproto.load import load

    spec = ct.utils.load_spec(str(path))
    decoder = spec.pipeline.models[1]
    prog = load(decoder, spec.specificationVersion, str(Path(path) / "Data" / "com.apple.CoreML" / "weights"))
    fn = prog.functions["main"]
    env: dict = {"loc": np.asarray(loc, dtype=np.float32), "scores": np.asarray(scores, dtype=np.float32)}
    for op in fn.operations:
        if op.op_type == "const":
            env[op.outputs[0].name] = op.outputs[0].val
            continue
        if op.op_type not in _NUMPY_OPS:
            raise SlfmError(f"{path}: decoder op {op.op_type!r} has no NumPy evaluation here")
        args = {
            k: [env[x.name] for x in v] if isinstance(v, (list, tuple)) else env[v.name] for k, v in op.inputs.items()
        }
        env[op.outputs[0].name] = _NUMPY_OPS[op.op_type](**args)
    return {o.name: np.asarray(env[o.name]) for o in fn.outputs}
