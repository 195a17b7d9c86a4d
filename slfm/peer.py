"""``slfm bench peer``: AIZOO's released TFLite detector beside SL-FMDet, same images, same evaluator,
same runtime (ai-edge-litert) and thread count.

The peer's decode follows ../shared/peers/aizoo/NOTES.md (written here from that description): RGB input
resized to 260x260 in [0, 1], NHWC; outputs SSD offsets [1, 5972, 4] and sigmoid scores [1, 5972, 2]
(class 0 = mask, 1 = no mask); 4 anchors a cell on 5 levels; SSD decode with variances 0.1/0.2; score =
max over the classes, class-agnostic NMS at IoU 0.4.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import cv2
import numpy as np

from slfm.bench import latency_stats, time_calls
from slfm.codec import decode
from slfm.core import output_order
from slfm.errors import SlfmError
from slfm.layouts import KINDS
from slfm.metrics import ImageDetections
from slfm.nms import nms
from slfm.options import POSITIVE, limit_option, threads_option
from slfm.postprocess import EVAL, PostprocessConfig, postprocess

PEER_DEFAULT = Path("../shared/peers/aizoo/face_mask_detection.tflite")
PEER_SIZE = 260
PEER_FEATURES = (33, 17, 9, 5, 3)
PEER_SIZES = ((0.04, 0.056), (0.08, 0.11), (0.16, 0.22), (0.32, 0.45), (0.64, 0.72))
PEER_RATIOS = (1.0, 0.62, 0.42)
PEER_PER_CLASS = "aizoo-peer, per-class NMS"
PEER_LABELS = np.array([2, 1])  # peer class 0 = mask -> slfm mask (2); class 1 = no mask -> face (1)
PEER_COLUMNS = [1, 0]  # the peer's score columns in slfm's label order (face, mask)


def peer_anchors() -> np.ndarray:
    """[5972, 4] (cx, cy, w, h): per cell each size at ratio 1, then the first size at the other ratios."""
    out = []
    for f, sizes in zip(PEER_FEATURES, PEER_SIZES, strict=True):
        shapes = [(s, 1.0) for s in sizes] + [(sizes[0], r) for r in PEER_RATIOS[1:]]
        wh = np.array([(s * np.sqrt(r), s / np.sqrt(r)) for s, r in shapes])  # [4, 2]
        ys, xs = np.meshgrid((np.arange(f) + 0.5) / f, (np.arange(f) + 0.5) / f, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], 1)  # rows (y) outer, then x
        cell = np.concatenate(np.broadcast_arrays(centres[:, None, :], wh[None, :, :]), axis=2)
        out.append(cell.reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


class PeerDetector:
    """AIZOO's detector: BGR image -> detections in image pixels."""

    def __init__(
        self,
        path: str | Path,
        threads: int = 1,
        score_threshold: float = 0.01,
        nms_iou: float = 0.4,
        post: PostprocessConfig | None = None,
    ):
        """Decodes as its notes say (best class per anchor, class-agnostic NMS) or, given ``post``, through
        slfm's own :func:`postprocess` with that config (e.g. EVAL: every class score, NMS within each class)."""
        path = Path(path)
        if not path.is_file():
            raise SlfmError(f"peer model not found: {path} (AIZOO's face_mask_detection.tflite)")
        from ai_edge_litert.interpreter import Interpreter

        self.interp = Interpreter(model_path=str(path), num_threads=threads)
        self.interp.allocate_tensors()
        self.input = self.interp.get_input_details()[0]
        outs = self.interp.get_output_details()
        try:  # the one rule (slfm.core.output_order); the peer scores 2 classes, no background column
            i_loc, i_scores = output_order([int(d["shape"][-1]) for d in outs], 2)
        except ValueError as e:
            raise SlfmError(f"{path}: not the AIZOO peer's outputs: {e}") from None
        self.loc_idx, self.score_idx = outs[i_loc]["index"], outs[i_scores]["index"]
        self.priors = peer_anchors()
        if tuple(self.input["shape"]) != (1, PEER_SIZE, PEER_SIZE, 3):
            raise SlfmError(f"{path}: input {self.input['shape'].tolist()} is not the AIZOO peer's [1, 260, 260, 3]")
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.post = post

    def prepare(self, image: np.ndarray) -> np.ndarray:
        rgb = cv2.cvtColor(cv2.resize(image, (PEER_SIZE, PEER_SIZE)), cv2.COLOR_BGR2RGB)
        return (rgb.astype(np.float32) / 255.0)[None]

    def raw(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.interp.set_tensor(self.input["index"], x)
        self.interp.invoke()
        return self.interp.get_tensor(self.loc_idx)[0], self.interp.get_tensor(self.score_idx)[0]

    def __call__(self, image: np.ndarray) -> ImageDetections:
        loc, scores = self.raw(self.prepare(image))
        if self.post is not None:
            # slfm's layout: a background column, then face (peer class 1), mask (peer class 0)
            probs = np.concatenate([np.zeros_like(scores[:, :1]), scores[:, PEER_COLUMNS]], axis=1)
            boxes, conf, labels = postprocess(loc, probs, self.priors, config=self.post)
        else:
            best = scores.max(1)
            keep = best >= self.score_threshold
            boxes = decode(loc[keep], self.priors[keep])
            conf, labels = best[keep], PEER_LABELS[scores[keep].argmax(1)]
            k = nms(boxes, conf, self.nms_iou)
            boxes, conf, labels = boxes[k], conf[k], labels[k]
        h, w = image.shape[:2]
        px = np.clip(boxes * np.array([w, h, w, h], np.float32), 0, [w, h, w, h]).astype(np.float32)
        return ImageDetections(px, conf, labels)


def compare(artifact: Path, peer: Path, samples, threads: int, runs: int) -> dict:
    """mAP and model latency of both detectors on the same samples with the same runtime and threads."""
    from slfm.core import prepare
    from slfm.device_tests.runtimes import load_runner
    from slfm.evaluate import evaluate_samples, summary
    from slfm.images import read_image
    from slfm.predictor import Predictor

    runner = load_runner(artifact, threads=threads)
    meta = runner.meta
    ours = Predictor(runner, meta, "letterbox", meta.image_size, EVAL)
    theirs = PeerDetector(peer, threads)
    image = read_image(samples[0].image, quiet=True)
    x_ours, _ = prepare(image, meta)
    x_peer = theirs.prepare(image)
    rows = {}
    for name, det, call, size in (
        ("slfm", ours, lambda: runner(x_ours), meta.image_size),
        ("aizoo-peer", theirs, lambda: theirs.raw(x_peer), PEER_SIZE),
    ):
        warm, times = time_calls(call, runs, 3)
        result = summary(evaluate_samples(det, samples, desc=name))
        rows[name] = {
            "input": size,
            "ap50": result["ap50"],
            "map50": result["map50"],
            "map50_95": result["map50_95"],
            "latency_ms": latency_stats(times),
            "warmup_ms": [w * 1000 for w in warm],
        }
    # the same peer model decoded by slfm's mAP protocol: its latency is the row above's (same invocations)
    per_class = PeerDetector(peer, threads, post=EVAL)
    result = summary(evaluate_samples(per_class, samples, desc=PEER_PER_CLASS))
    rows[PEER_PER_CLASS] = {
        **rows["aizoo-peer"],
        **{k: result[k] for k in ("ap50", "map50", "map50_95")},
    }
    rows["slfm"]["artifact"] = str(artifact)
    rows["aizoo-peer"]["artifact"] = rows[PEER_PER_CLASS]["artifact"] = str(peer)
    return rows


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"# SL-FMDet vs AIZOO's detector on {report['dataset']} {report['split']} ({report['images']} images)",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {m['platform']}, {m['cpu_count']} CPUs; runtime "
        f"ai-edge-litert, {report['threads']} thread(s); evaluator: slfm VOC AP@0.5 (all-point)",
        "",
        f"Decoding: slfm and `{PEER_PER_CLASS}` by slfm's mAP protocol (scores above {EVAL.score_threshold}, NMS "
        f"at IoU {EVAL.nms_iou} within each class); `aizoo-peer` as its notes say (best class per anchor, "
        "class-agnostic NMS at IoU 0.4, scores from 0.01). Both peer rows time the same model once.",
        "",
        "| detector | input | AP50 face | AP50 mask | mAP@0.5 | mAP@[.5:.95] | latency p50 ms | p90 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in report["detectors"].items():
        lines.append(
            f"| {name} | {r['input']} | {r['ap50'].get('face', 0):.3f} | {r['ap50'].get('mask', 0):.3f} | "
            f"{r['map50']:.3f} | {r['map50_95']:.3f} | {r['latency_ms']['p50']:.1f} | "
            f"{r['latency_ms']['p90']:.1f} |"
        )
    return "\n".join(lines) + "\n"


@click.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--peer", type=click.Path(path_type=Path), default=PEER_DEFAULT, show_default=True)
@click.option("--data", type=click.Path(path_type=Path), required=True, help="dataset root")
@click.option("--dataset", "kind", type=click.Choice(KINDS), default="aizoo", show_default=True)
@click.option("--split", default=None, help="default: val (aizoo) / test (moxa3k)")
@limit_option("images of the split")
@threads_option
@click.option("--runs", type=POSITIVE, default=50, show_default=True, help="timed invocations per detector")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("reports/peer"),
    show_default=True,
    help="report path without suffix (.json and .md)",
)
def peer(artifact, peer, data, kind, split, limit, threads, runs, out):
    """Compare an SL-FMDet .tflite with AIZOO's released detector: mAP and latency side by side."""
    from slfm.evaluate import machine
    from slfm.layouts import layout
    from slfm.voc import load_dataset

    if not Path(peer).is_file():
        raise SlfmError(
            f"peer model not found: {peer}; skipped (AIZOO's face_mask_detection.tflite, see ../shared/peers/aizoo)"
        )
    if not Path(artifact).is_file():
        raise SlfmError(f"artifact not found: {artifact} (make one with: slfm convert CHECKPOINT --to tflite)")
    split = split or layout(kind).test_split
    samples = load_dataset(data, kind, split, limit=limit)
    report = {
        "command": f"slfm bench peer {artifact} --data {data} --dataset {kind} --split {split}"
        + (f" --limit {limit}" if limit else "")
        + f" --threads {threads}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "dataset": kind,
        "split": split,
        "images": len(samples),
        "threads": threads,
        "machine": machine(),
        "detectors": compare(Path(artifact), Path(peer), samples, threads, runs),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    click.echo(markdown(report))
