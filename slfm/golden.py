"""Golden vectors: the Python inference core (:mod:`slfm.core`) run on a real model and real photos, written as
small JSON files that the Kotlin (``android_demo/postprocess``), Swift (``ios_demo/SLFMCore``) and JS
(``web_demo/src``) ports are tested against, so a change to any of them fails in every language at once.

    python -m slfm.golden --out tests/golden [--checkpoint CKPT (default: the bundled `faces`)] [--images DIR]

Floats are written as the shortest decimal that round-trips to the same float32, so every port parses the
exact float32 inputs Python used. Every expected value is computed from the stored inputs (never from data
that is not in the file), so :func:`expected_postprocess` and friends can recheck a committed file against
the current code (``tests/test_golden.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from slfm.anchors import anchors, feature_sizes
from slfm.artifact import ArtifactMeta
from slfm.checkpoint import BUNDLED, DEFAULT_BUNDLED, MODELS_DIR
from slfm.codec import decode
from slfm.config import ModelConfig
from slfm.core import (
    Frame,
    dequantize,
    letterbox_geometry,
    model_input,
    output_order,
    prepare,
    quantize,
    to_image_pixels,
)
from slfm.nms import batched_nms, cross_class_suppress, iou, nms
from slfm.postprocess import DEMO, PostprocessConfig, postprocess

SCHEMA = "slfm-golden/1"
IMAGE_SIZE = 320
DEFAULT_CHECKPOINT = MODELS_DIR / BUNDLED[DEFAULT_BUNDLED]  # the default detector (slfm detect's)
DEFAULT_RETINAFACE = Path("../shared/weights/retinaface_mobilenet0.25_Final.pth")
DEFAULT_IMAGES = Path("../shared/data/moxa3k/images")
# Real Moxa3K test photos: faces and masks together, landscape and portrait.
DEFAULT_IMAGE_NAMES = ("MOXA_2964.jpg", "MOXA_2819.jpg", "MOXA_2870.jpg")
TOP_ANCHORS = 300  # anchors stored per image (highest foreground score first)
LETTERBOX_SHAPES = ((183, 275), (254, 198), (480, 640), (1080, 1920), (320, 320), (100, 100), (41, 999), (333, 500))
INT8_MIN, INT8_MAX = -128, 127
ENCODE_SIZE = 32  # the encode cases' input: small, the smallest a sidecar allows


# ---------------------------------------------------------------------------------------------- numbers


def f32(x) -> float | list:
    """float32 value(s) as Python floats whose repr is the shortest decimal that round-trips in float32."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 0:
        return float(str(a[()]))
    return [f32(v) for v in a]


def as_f32(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


# ---------------------------------------------------------------------------------------------- cases


def anchor_case(height: int, width: int, cfg: ModelConfig, rng: np.random.Generator) -> dict:
    pri = anchors(height, width, cfg.min_sizes, cfg.steps)
    n = pri.shape[0]
    sizes = feature_sizes(height, width, cfg.steps)
    level_ends = np.cumsum([fh * fw * len(m) for (fh, fw), m in zip(sizes, cfg.min_sizes, strict=True)])
    picks = {0, 1, 2, 3, n - 1, *(int(e) - 1 for e in level_ends[:-1]), *(int(e) for e in level_ends[:-1])}
    picks |= {int(i) for i in rng.choice(n, 24, replace=False)}
    idx = sorted(picks)
    return {"height": height, "width": width, "count": int(n), "indices": idx, "rows": [f32(pri[i]) for i in idx]}


def postprocess_config_dict(c: PostprocessConfig) -> dict:
    return {k: (f32(v) if isinstance(v, float) else v) for k, v in asdict(c).items()}


def expected_postprocess(case: dict, config: dict) -> dict:
    """Detections of one stored image for one config, from the stored inputs only."""
    cfg = PostprocessConfig(**config)
    pri = anchors(case["input_size"], case["input_size"], case["min_sizes"], case["steps"])[case["anchor_indices"]]
    boxes, scores, labels = postprocess(as_f32(case["loc"]), as_f32(case["scores"]), pri, case["variances"], cfg)
    size = case["input_size"]
    px = to_image_pixels(boxes, Frame(case["scale"], (size, size), (case["image_height"], case["image_width"])))
    return {
        "boxes": [f32(b) for b in boxes],
        "scores": f32(scores),
        "labels": [int(v) for v in labels],
        "pixel_boxes": [f32(b) for b in px],
    }


def expected_decode(case: dict) -> list:
    return [f32(b) for b in decode(as_f32(case["loc"]), as_f32(case["priors"]), case["variances"])]


def expected_nms(case: dict) -> dict:
    b, s, lab, thr = as_f32(case["boxes"]), as_f32(case["scores"]), np.asarray(case["labels"]), case["iou_threshold"]
    return {
        "nms": [int(i) for i in nms(b, s, thr)],
        "batched_nms": [int(i) for i in batched_nms(b, s, lab, thr)],
        "cross_class": [int(i) for i in cross_class_suppress(b, s, lab, thr)],
        "iou_first_rows": [f32(r) for r in iou(b[:3], b)],
    }


def expected_quant(case: dict) -> dict:
    return {
        "quantized": [int(v) for v in quantize(as_f32(case["values"]), case["scale"], case["zero_point"])],
        "dequantized": f32(dequantize(case["q"], case["scale"], case["zero_point"])),
    }


def expected_encode(case: dict) -> list:
    """The model input of a stored ``size`` x ``size`` BGR image under the stored sidecar (its pixel_scale,
    layout and input_quant): :func:`slfm.core.prepare` then :func:`slfm.core.model_input`, flattened."""
    meta = ArtifactMeta.from_dict(case["sidecar"])
    s = meta.image_size
    image = np.asarray(case["pixels"], dtype=np.uint8).reshape(s, s, 3)
    x, _ = prepare(image, meta)
    q = meta.input_quant if meta.input_dtype != "float32" else None
    y = model_input(x, meta.layout == "NHWC", np.dtype(meta.input_dtype), q).ravel()
    return [int(v) for v in y] if q else f32(y)


def expected_order(case: dict) -> list | None:
    """[loc, scores] positions by :func:`slfm.core.output_order`, or None where it refuses."""
    try:
        return list(output_order(case["last_dims"], case["num_classes"], case["indices"]))
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------- model


def load_model(checkpoint: Path | None = DEFAULT_CHECKPOINT, retinaface: Path = DEFAULT_RETINAFACE):
    """The trained checkpoint if there is one, else SL-FMDet from RetinaFace weights (real, not random)."""
    import torch

    from slfm.model import SLFMDet
    from slfm.weights import load_retinaface

    torch.manual_seed(0)
    if checkpoint is not None and Path(checkpoint).is_file():
        from slfm.checkpoint import file_sha256
        from slfm.checkpoint import load_model as load

        model, _ = load(checkpoint)
        return model, f"checkpoint {Path(checkpoint).name} sha256 {file_sha256(checkpoint)[:16]}"
    model = SLFMDet(ModelConfig(image_size=IMAGE_SIZE))
    load_retinaface(model, retinaface)
    return model.eval(), f"RetinaFace init {Path(retinaface).name} (CBAM fresh, seed 0)"


def image_case(predictor, path: Path, top: int) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """Raw outputs of one real image, keeping the ``top`` anchors by foreground score (in anchor order)."""
    from slfm.images import read_image

    cfg = predictor.config
    image = read_image(path)
    x, _ = prepare(image, cfg, IMAGE_SIZE)
    loc, scores = predictor.raw(x)
    fg = scores[:, 1:].max(axis=1)
    keep = np.sort(np.argsort(-fg, kind="stable")[:top])
    case = {
        "image": path.name,
        "image_height": int(image.shape[0]),
        "image_width": int(image.shape[1]),
        "input_size": IMAGE_SIZE,
        "scale": IMAGE_SIZE / max(image.shape[:2]),
        "min_sizes": [list(m) for m in cfg.min_sizes],
        "steps": list(cfg.steps),
        "variances": list(cfg.variances),
        "anchor_indices": [int(i) for i in keep],
        "loc": [f32(r) for r in loc[keep]],
        "scores": [f32(r) for r in scores[keep]],
    }
    cutoff = float(np.sort(fg)[::-1][top]) if fg.size > top else 0.0
    return case, loc, scores, np.float32(cutoff)


def configs_for(cutoff: float) -> dict[str, dict]:
    """DEMO, plus a low threshold just above the stored anchors' cutoff (dense NMS), plus top-k limits."""
    low = float(np.float32(max(0.02, np.ceil(cutoff * 1000 + 1e-9) / 1000)))
    dense = replace(DEMO, score_threshold=low)
    capped = replace(dense, pre_nms_top_k=60, max_detections=8, nms_iou=0.45, cross_class_iou=0.3)
    no_cross = replace(dense, cross_class_iou=0.0)
    return {
        k: postprocess_config_dict(v)
        for k, v in {"demo": DEMO, "dense": dense, "capped": capped, "no_cross": no_cross}.items()
    }


def check_subset(case: dict, loc: np.ndarray, scores: np.ndarray, configs: dict) -> None:
    """The stored anchors must give the same detections as all anchors (else the file would lie)."""
    full_pri = anchors(IMAGE_SIZE, IMAGE_SIZE, case["min_sizes"], case["steps"])
    for name, c in configs.items():
        want = postprocess(loc, scores, full_pri, case["variances"], PostprocessConfig(**c))
        got = expected_postprocess(case, c)
        if not (np.array_equal(as_f32(got["scores"]), want[1]) and got["labels"] == want[2].tolist()):
            raise AssertionError(f"{case['image']}: stored anchors do not reproduce config {name!r}")


# ---------------------------------------------------------------------------------------------- files


def write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, separators=(",", ":")) + "\n")


def generate(
    out: Path,
    checkpoint: Path | None = DEFAULT_CHECKPOINT,
    images: Path = DEFAULT_IMAGES,
    names: Sequence[str] = DEFAULT_IMAGE_NAMES,
    retinaface: Path = DEFAULT_RETINAFACE,
    top: int = TOP_ANCHORS,
) -> list[Path]:
    """Write every golden file into ``out``; returns their paths."""
    from slfm.predictor import Predictor

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, source = load_model(checkpoint, retinaface)
    cfg = model.config
    predictor = Predictor(model, cfg)
    rng = np.random.default_rng(0)
    written = []

    def emit(name: str, body: dict) -> None:
        path = out / name
        write_json(path, {"schema": SCHEMA, "source": source, **body})
        written.append(path)

    emit("anchors.json", {"cases": [anchor_case(IMAGE_SIZE, IMAGE_SIZE, cfg, rng), anchor_case(240, 320, cfg, rng)]})
    emit(
        "letterbox.json",
        {"mean_bgr": list(cfg.mean_bgr), "cases": [letterbox_geometry(h, w, IMAGE_SIZE) for h, w in LETTERBOX_SHAPES]},
    )

    image_cases = []
    for name in names:
        case, loc, scores, cutoff = image_case(predictor, Path(images) / name, top)
        configs = configs_for(float(cutoff))
        check_subset(case, loc, scores, configs)
        case["configs"] = configs
        case["expected"] = {k: expected_postprocess(case, c) for k, c in configs.items()}
        image_cases.append(case)
        emit(f"postprocess_{Path(name).stem}.json", case)

    emit("decode.json", {"cases": [decode_case(c, rng) for c in image_cases]})
    emit("nms.json", {"cases": nms_cases(image_cases)})
    emit("quant.json", {"cases": quant_cases(image_cases, rng)})
    emit("encode.json", {"cases": encode_cases(cfg, rng)})
    emit("outputs.json", {"cases": order_cases()})
    meta = ArtifactMeta.from_model_config(
        replace(cfg, image_size=IMAGE_SIZE),
        "tflite",
        "int8",
        layout="NHWC",
        input_dtype="int8",
        input_quant=[1.0, -11],
        output_quant={"loc": [0.0627451, 3], "scores": [0.00390625, -128]},
        output_indices=[1, 0],  # the graph lists scores first: the ports must read the recorded order
        quantization="ptq-litert",
        extra={"golden": "sample sidecar for the ports' parser tests, not a real artifact"},
    )
    path = out / "sidecar_int8.tflite.json"
    path.write_text(meta.to_json() + "\n")
    written.append(path)
    return written


def decode_case(case: dict, rng: np.random.Generator) -> dict:
    pri = anchors(IMAGE_SIZE, IMAGE_SIZE, case["min_sizes"], case["steps"])
    rows = sorted(rng.choice(len(case["anchor_indices"]), 16, replace=False).tolist())
    body = {
        "image": case["image"],
        "variances": case["variances"],
        "anchor_indices": [case["anchor_indices"][r] for r in rows],
        "loc": [case["loc"][r] for r in rows],
        "priors": [f32(pri[case["anchor_indices"][r]]) for r in rows],
    }
    body["boxes"] = expected_decode(body)
    return body


def nms_cases(image_cases: list[dict]) -> list[dict]:
    """Real decoded candidate boxes; one case with scores rounded to 0.05 so that many scores tie."""
    cases = []
    for i, c in enumerate(image_cases[:2]):
        pri = anchors(IMAGE_SIZE, IMAGE_SIZE, c["min_sizes"], c["steps"])[c["anchor_indices"]]
        sc = as_f32(c["scores"])[:, 1:]
        a, k = np.unravel_index(np.argsort(-sc, axis=None, kind="stable")[:80], sc.shape)
        boxes = decode(as_f32(c["loc"])[a], pri[a], c["variances"])
        scores = sc[a, k]
        if i == 1:
            scores = np.round(scores * 20) / 20
        for thr in (0.3, 0.5):
            case = {
                "image": c["image"],
                "iou_threshold": thr,
                "boxes": [f32(b) for b in boxes],
                "scores": f32(scores),
                "labels": [int(v) + 1 for v in k],
            }
            case["expected"] = expected_nms(case)
            cases.append(case)
    return cases


def quant_cases(image_cases: list[dict], rng: np.random.Generator) -> list[dict]:
    c = image_cases[0]
    scores = as_f32(c["scores"]).ravel()[:40]
    loc = as_f32(c["loc"]).ravel()[:40]
    below_half = float(np.nextafter(np.float32(0.5), np.float32(0)))  # floor(x + 0.5) rounds this up: wrong
    halves = as_f32([0.5, 1.5, -0.5, -1.5, 2.5, -2.5, 1000.0, -1000.0, 0.0, below_half, -below_half, 126.5])
    # x / scale exactly k + 0.5 (scale a power of two): halves to even (np.round) would give 2 for 2.5, not 3
    ties = as_f32(np.arange(-20.5, 21, 1.0)) * np.float32(0.25)
    cases = [
        {"name": "scores", "scale": 0.00390625, "zero_point": -128, "values": f32(scores)},
        {"name": "loc", "scale": 0.0627451, "zero_point": 3, "values": f32(np.concatenate([loc, halves * 0.0627451]))},
        {"name": "input", "scale": 1.0, "zero_point": -11, "values": f32(np.concatenate([halves, [-104, 151]]))},
        {"name": "ties", "scale": 0.25, "zero_point": 0, "values": f32(np.concatenate([ties, halves * 0.25]))},
    ]
    for case in cases:
        case["q"] = [int(v) for v in rng.integers(INT8_MIN, INT8_MAX + 1, 24)] + [INT8_MIN, INT8_MAX, 0]
        case["expected"] = expected_quant(case)
    return cases


def encode_cases(cfg: ModelConfig, rng: np.random.Generator) -> list[dict]:
    """Pixels -> model input under sidecars with ``pixel_scale`` != 1, int8 input whose ``x / scale`` lands on
    exact halves (ties), and both layouts. The pixels cover every byte value on every channel."""
    s = ENCODE_SIZE
    variants = (
        ("int8_ties_nhwc", dict(pixel_scale=0.5, layout="NHWC", input_dtype="int8", input_quant=[1.0, -11])),
        ("int8_ties_nchw", dict(pixel_scale=0.0078125, input_dtype="int8", input_quant=[0.015625, 3])),
        ("float_scaled_nhwc", dict(pixel_scale=0.017, layout="NHWC")),
        ("float_scaled_nchw", dict(pixel_scale=0.0125)),
    )
    every_byte = np.repeat(np.arange(256, dtype=np.uint8), 3)
    cases = []
    for name, kw in variants:
        precision = "int8" if kw.get("input_dtype") == "int8" else "fp32"
        meta = ArtifactMeta.from_model_config(replace(cfg, image_size=s), "tflite", precision, **kw)
        pixels = np.concatenate([every_byte, rng.integers(0, 256, s * s * 3 - every_byte.size)])
        case = {"name": name, "sidecar": json.loads(meta.to_json()), "pixels": [int(v) for v in pixels]}
        case["expected"] = expected_encode(case)
        cases.append(case)
    return cases


def order_cases() -> list[dict]:
    """Which output is loc: recorded indices first (checked against the shapes), else the shapes; an
    ambiguous pair is refused (expected None)."""
    rows = [
        ([4, 3], 3, None),
        ([3, 4], 3, None),
        ([4, 3], 3, [0, 1]),
        ([3, 4], 3, [1, 0]),
        ([4, 4], 4, None),  # 3 classes + background: the shapes cannot tell, only recorded indices can
        ([4, 4], 4, [1, 0]),
        ([4, 3], 3, [1, 0]),  # recorded indices that contradict the shapes
        ([4, 5], 3, None),
        ([4], 3, None),
    ]
    cases = [{"last_dims": d, "num_classes": n, "indices": i} for d, n, i in rows]
    for c in cases:
        c["expected"] = expected_order(c)
    return cases


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(prog="python -m slfm.golden", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for the JSON files (e.g. tests/golden)")
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="trained slfm checkpoint")
    p.add_argument("--retinaface", type=Path, default=DEFAULT_RETINAFACE, help="used when there is no checkpoint")
    p.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="folder holding the Moxa3K photos")
    a = p.parse_args(argv)
    for path in generate(a.out, a.checkpoint, a.images, retinaface=a.retinaface):
        print(f"{path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
