"""``slfm convert``: one checkpoint -> the artifacts each backend needs, each with its contract (sidecar JSON +
metadata inside the artifact)."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from slfm.artifact import ArtifactMeta, write_sidecar
from slfm.checkpoint import file_sha256, load_model
from slfm.config import ModelConfig
from slfm.errors import SlfmError
from slfm.formats import FORMATS
from slfm.forms import export_friendly
from slfm.model import InferenceWrapper, SLFMDet
from slfm.outputs import atomic_path, write_bytes


def artifact_name(fmt: str, size: int, precision: str, quantization: str | None, nhwc: bool, nms: bool = False) -> str:
    parts = ["slfm", str(size), precision]
    if precision == "int8" and quantization:
        parts.append(quantization.split("-")[0])  # qat | ptq | weights
    if nhwc:
        parts.append("nhwc")
    if nms:
        parts.append("nms")
    return "_".join(parts) + FORMATS[fmt].suffix


def fp32_module(model: SLFMDet) -> torch.nn.Module:
    """What fp32/fp16 artifacts contain: export forms, no heatmap head, (loc, softmax scores)."""
    return InferenceWrapper(export_friendly(model)).eval()


def example(config: ModelConfig) -> torch.Tensor:
    s = config.image_size
    return torch.zeros(1, 3, s, s)


class Source:
    """The fp32 model and, for int8, the quantized graph: from a QAT/PTQ checkpoint (``qat``), or calibrated
    here on ``calibration`` batches (described by ``calib_desc``), or else on scikit-image's real photos."""

    def __init__(
        self,
        checkpoint: Path,
        qat: Path | None = None,
        calibration=None,
        calib_total: int | None = None,
        calib_desc: str | None = None,
    ):
        self.checkpoint = Path(checkpoint)
        self.model, _ = load_model(checkpoint)
        self.sha = file_sha256(checkpoint)
        self.qat = qat
        self.calibration = calibration
        self.calib_total = calib_total
        self.calib_desc = calib_desc
        self._pm = None
        self.quantization = None
        self.quant_extra: dict = {}

    def quantized_graph(self):
        if self._pm is None:
            if self.qat is not None:
                from slfm.quantize.quantized import load_quantized

                self._pm, qmodel, ck = load_quantized(self.qat)
                if qmodel.config.to_dict() != self.model.config.to_dict():
                    raise SlfmError(f"{self.qat} was made for a different model config than {self.checkpoint}")
                self.quantization = f"{ck['quantizer']['mode']}-{'+'.join(ck['quantizer']['backends'])}"
                self.quant_extra = {"quantized_checkpoint": str(self.qat), "quantized_sha256": file_sha256(self.qat)}
            else:
                from slfm.quantize.calibrate import photo_batches, photo_names, ptq

                if self.calibration is None:
                    batches, self.quantization = photo_batches(self.model), "ptq-photos"
                    self.quant_extra = {"calibration": "scikit-image photos: " + ", ".join(photo_names())}
                else:
                    batches, self.quantization = self.calibration, "ptq-data"
                    self.quant_extra = {"calibration": self.calib_desc or "caller-supplied batches"}
                self._pm, _ = ptq(self.model, batches, total=self.calib_total)
                self.quant_extra["range_equalization"] = "backbone (slfm.quantize.equalize)"
        return self._pm

    def meta(self, fmt: str, precision: str, from_graph: bool = False, **kw) -> ArtifactMeta:
        """The artifact contract; ``from_graph``: made from :meth:`quantized_graph` (records its provenance)."""
        meta = ArtifactMeta.from_model_config(
            self.model.config,
            fmt,
            precision,
            source_checkpoint=str(self.checkpoint),
            source_sha256=self.sha,
            **kw,
        )
        if from_graph:
            meta.extra.update(self.quant_extra)
        return meta


def convert_tflite(src: Source, precision: str, nhwc: bool, out: Path) -> Path:
    from slfm.convert import tflite
    from slfm.convert.meta import embed_tflite

    x = example(src.model.config)
    quant = None
    if precision == "int8":
        from slfm.quantize.quantized import deploy_module

        module = deploy_module(src.quantized_graph(), fold_quantize=False)
        data = tflite.to_tflite(module, x, quantized=True, nhwc=nhwc)
        quant = src.quantization
    else:
        data = tflite.to_tflite(fp32_module(src.model), x, nhwc=nhwc)
        if precision == "fp16":
            data = tflite.fp16_weights(data)
            quant = "weights-fp16"
    path = out / artifact_name("tflite", src.model.config.image_size, precision, quant, nhwc)
    meta = src.meta("tflite", precision, precision == "int8", layout="NHWC" if nhwc else "NCHW", quantization=quant)
    _fill_tflite_io(data, meta)
    write_bytes(path, embed_tflite(data, meta))
    write_sidecar(path, meta)
    return path


def _fill_tflite_io(model: bytes, meta: ArtifactMeta) -> None:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model)
    d = it.get_input_details()[0]
    meta.input_dtype = np.dtype(d["dtype"]).name
    if d["dtype"] != np.float32:
        meta.input_quant = [float(d["quantization"][0]), int(d["quantization"][1])]
    details = it.get_output_details()
    # litert-torch names outputs ..._output_0, ..._output_1 in the module's return order (loc, scores); the
    # graph may list them either way, so each name's position is recorded (slfm.core.output_order reads it)
    order = sorted(range(len(details)), key=lambda i: details[i]["name"])
    meta.output_indices = order
    for name, i in zip(meta.outputs, order, strict=True):
        o = details[i]
        if o["dtype"] != np.float32:
            meta.output_quant[name] = [float(o["quantization"][0]), int(o["quantization"][1])]
    meta.extra["tflite_ops"] = sorted({op["op_name"] for op in it._get_ops_details()})


def convert_executorch(src: Source, precision: str, nhwc: bool, out: Path) -> Path:
    from slfm.convert.executorch import to_pte
    from slfm.convert.meta import pte_constant_methods

    if nhwc:
        raise SlfmError("--nhwc is a TFLite option; ExecuTorch takes NCHW input (XNNPACK converts internally)")
    x = example(src.model.config)
    quant = None
    if precision == "int8":
        from slfm.quantize.quantized import deploy_module

        module = deploy_module(src.quantized_graph(), fold_quantize=True)
        quant = src.quantization
    elif precision == "fp16":
        from slfm.convert.executorch import Float16

        module = Float16(fp32_module(src.model))
    else:
        module = fp32_module(src.model)
    meta = src.meta("executorch", precision, precision == "int8", quantization=quant)
    if precision == "fp16":
        meta.extra["compute"] = "fp16 weights and activations in XNNPACK; float32 input and outputs (cast inside)"
    data, left = to_pte(module, x, pte_constant_methods(meta))
    path = out / artifact_name("executorch", src.model.config.image_size, precision, quant, False)
    write_bytes(path, data)
    meta.extra["outside_delegate"] = left  # sidecar only (known after lowering)
    write_sidecar(path, meta)
    if left:
        tqdm.write(f"note: {path.name}: ops outside the XNNPACK delegate: {left}")
    return path


def convert_coreml(
    src: Source, precision: str, nhwc: bool, out: Path, image_input: bool = True, nms: bool = False
) -> Path:
    """``nms``: the Vision pipeline (decode + NMS inside, :mod:`slfm.convert.coreml_nms`) around the model."""
    from slfm.convert.coreml import COMPUTE_UNITS, to_coreml

    if nhwc:
        raise SlfmError("--nhwc is a TFLite option; the Core ML model takes an image (or NCHW tensor)")
    x = example(src.model.config)
    quant = "weights-int8" if precision == "int8" else None
    module, quantized = fp32_module(src.model), False
    if precision == "int8" and src.qat is not None:
        from slfm.quantize.quantized import deploy_module

        module, quantized = deploy_module(src.quantized_graph(), fold_quantize=True), True
        quant = src.quantization + "-w8a8"
    meta = src.meta("coreml", precision, quantized, quantization=quant)
    meta.extra["coreml_input"] = "image" if image_input else "tensor"
    meta.extra["compute_units"] = COMPUTE_UNITS
    if nms:
        if not image_input:
            raise SlfmError("the Core ML NMS pipeline is for Vision: it takes an image input")
        meta.outputs = ["confidence", "coordinates"]
        meta.extra["coreml_nms"] = {
            "models": "raw mlprogram (loc, scores) -> decoder mlprogram -> NonMaximumSuppression",
            "class_labels": list(meta.classes[1:]),
            "coordinates": "cx, cy, w, h normalised to the network input (letterboxed, pad right/bottom)",
            "iou_threshold": meta.nms_iou,
            "confidence_threshold": meta.score_threshold,
            "per_class": True,
            "cross_class_suppression": "not applied (host-side only)",
        }
    ml = to_coreml(module, x, meta, precision, image_input=image_input, quantized=quantized)
    if nms:
        from slfm.convert.coreml_nms import nms_pipeline

        ml = nms_pipeline(ml, meta)
    path = out / artifact_name("coreml", src.model.config.image_size, precision, quant, False, nms)
    with atomic_path(path) as tmp:  # a folder: swapped in whole
        ml.save(str(tmp))
    write_sidecar(path, meta)
    return path


def supports(fmt: str, precision: str, nhwc: bool = False) -> str | None:
    """Why ``fmt`` cannot be made at ``precision`` (None when it can)."""
    if nhwc and not FORMATS[fmt].nhwc:
        return "--nhwc is a TFLite option"
    if precision not in FORMATS[fmt].precisions:
        return f"{FORMATS[fmt].title} is not made at {precision}"
    return None


def convert(
    checkpoint: Path,
    formats: list[str],
    precision: str,
    out: Path,
    qat: Path | None = None,
    nhwc: bool = False,
    calibration=None,
    calib_total: int | None = None,
    calib_desc: str | None = None,
    coreml_nms: bool = False,
) -> list[Path]:
    """``coreml_nms``: the Core ML artifact is the Vision pipeline with decode and NMS inside."""
    src = Source(checkpoint, qat, calibration, calib_total, calib_desc)
    paths = []
    for fmt in tqdm(formats, desc="convert", leave=False):
        kw = {"nms": True} if fmt == "coreml" and coreml_nms else {}
        paths.append(FORMATS[fmt].convert()(src, precision, nhwc, Path(out), **kw))
    return paths
