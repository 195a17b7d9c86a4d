"""The Raspberry Pi detector: an image, a folder of images, a video file or a camera index in; boxes and
labels drawn, detections printed, FPS reported. Needs numpy and a TFLite interpreter; OpenCV for video and
camera (and JPEG), optional for images (PNG/PPM/BMP/.npy are read without it).

    python3 -m pi_runner.detect MODEL.tflite SOURCE [--out DIR] [--threads N] [--score S] [--max-frames N]

Everything model-specific (input size, mean, anchors, thresholds, class names) comes from the artifact's
sidecar ``MODEL.tflite.json``; pre- and post-processing are the shipped :mod:`slfm.core` (NumPy, OpenCV used
when present), the same code the host runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from slfm.artifact import read_sidecar
from slfm.core import PostprocessConfig, decode, prepare
from slfm.core.image import cv2
from slfm.errors import SlfmError

from .backend import RunnerError, TfliteModel

HAS_CV2 = cv2 is not None

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".npy", ".webp")


class Detector:
    def __init__(self, model_path: str, threads: int, score: float | None, runtime: str | None = None) -> None:
        try:
            self.meta = read_sidecar(model_path)
        except SlfmError as e:
            raise RunnerError(str(e)) from e
        if self.meta.format != "tflite":
            raise RunnerError(f"{model_path}: a {self.meta.format} artifact; the Pi runner runs .tflite")
        self.model = TfliteModel(model_path, threads, runtime, False, len(self.meta.classes), self.meta.output_indices)
        self.post = PostprocessConfig(
            score_threshold=self.meta.score_threshold if score is None else score,
            nms_iou=self.meta.nms_iou,
            cross_class_iou=self.meta.cross_class_iou,
        )
        self.infer_s: list[float] = []

    def __call__(self, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, frame = prepare(bgr, self.meta)
        t = time.perf_counter()
        raw = self.model(x)
        self.infer_s.append(time.perf_counter() - t)
        d = decode(raw, self.meta, self.post, frame)
        return d.boxes, d.scores, d.labels


def read_image(path: Path) -> np.ndarray:
    if HAS_CV2:
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise RunnerError(f"cannot decode image {path}")
        return img
    try:
        from PIL import Image
    except ImportError:
        from . import imageio_lite

        return imageio_lite.read(path)
    try:
        with Image.open(path) as im:
            return np.ascontiguousarray(np.asarray(im.convert("RGB"))[..., ::-1])
    except OSError as e:
        raise RunnerError(f"cannot decode image {path}: {e}") from None


def draw_and_save(path: Path, bgr: np.ndarray, dets, classes) -> Path:
    boxes, scores, labels = dets
    if HAS_CV2:
        from slfm.draw import draw
        from slfm.metrics import ImageDetections

        cv2.imwrite(str(path.with_suffix(".jpg")), draw(bgr, ImageDetections(boxes, scores, labels)))
        return path.with_suffix(".jpg")
    from . import drawing, imageio_lite

    imageio_lite.write_png(path.with_suffix(".png"), drawing.draw(bgr, boxes, scores, labels))
    return path.with_suffix(".png")


def as_json(dets, classes: list[str]) -> list[dict]:
    boxes, scores, labels = dets
    return [
        {
            "label": classes[int(lab)] if int(lab) < len(classes) else str(lab),
            "score": round(float(s), 4),
            "box": [round(float(v), 1) for v in b],
        }
        for b, s, lab in zip(boxes, scores, labels, strict=True)
    ]


def run_images(det: Detector, paths: list[Path], out: Path) -> dict:
    results, t0 = {}, time.perf_counter()
    for p in paths:
        bgr = read_image(p)
        dets = det(bgr)
        saved = draw_and_save(out / p.stem, bgr, dets, det.meta.classes)
        results[p.name] = as_json(dets, det.meta.classes)
        print(
            json.dumps(
                {
                    "image": p.name,
                    "detections": results[p.name],
                    "inference_ms": round(det.infer_s[-1] * 1e3, 2),
                    "annotated": saved.name,
                }
            ),
            flush=True,
        )
    total = time.perf_counter() - t0
    return {"results": results, "frames": len(paths), "seconds": total}


def run_video(det: Detector, source: str, out: Path, max_frames: int | None, show: bool) -> dict:
    if not HAS_CV2:
        raise RunnerError("video and camera input need OpenCV on this device (pip install opencv-python-headless)")
    from slfm.draw import draw
    from slfm.metrics import ImageDetections

    cap = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not cap.isOpened():
        raise RunnerError(f"cannot open {'camera' if source.isdigit() else 'video'} {source}")
    writer, n, t0 = None, 0, time.perf_counter()
    name = f"camera{source}" if source.isdigit() else Path(source).stem
    try:
        while max_frames is None or n < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            dets = det(frame)
            vis = draw(frame, ImageDetections(*dets))
            if writer is None:
                fps_in = cap.get(cv2.CAP_PROP_FPS) or 15
                writer = cv2.VideoWriter(
                    str(out / f"{name}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps_in, (frame.shape[1], frame.shape[0])
                )
            writer.write(vis)
            if show:
                cv2.imshow("slfm", vis)
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    break
            n += 1
            if n % 30 == 0:
                print(f"frame {n}: {n / (time.perf_counter() - t0):.1f} FPS", flush=True)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    return {"frames": n, "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pi_runner.detect", description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("source", help="image, folder of images, video file, or camera index (0, 1, ...)")
    p.add_argument("--out", default="out", help="folder for annotated images/video and detections.json")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--score", type=float, default=None, help="score threshold (default: the sidecar's)")
    p.add_argument("--runtime", default=None)
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--show", action="store_true", help="video/camera: show a window (needs a display)")
    a = p.parse_args(argv)
    try:
        det = Detector(a.model, a.threads, a.score, a.runtime)
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        src = Path(a.source)
        if src.is_dir():
            paths = sorted(q for q in src.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
            if not paths:
                raise RunnerError(f"{src}: no images ({', '.join(IMAGE_SUFFIXES)})")
            summary = run_images(det, paths, out)
        elif src.is_file() and src.suffix.lower() in IMAGE_SUFFIXES:
            summary = run_images(det, [src], out)
        elif a.source.isdigit() or src.is_file():
            summary = run_video(det, a.source, out, a.max_frames, a.show)
        else:
            raise RunnerError(f"source not found: {a.source}")
    except (RunnerError, OSError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    inf = det.infer_s
    fps_model = len(inf) / sum(inf) if inf else 0.0
    fps_total = summary["frames"] / summary["seconds"] if summary["seconds"] else 0.0
    summary.update(
        {
            "runtime": f"{det.model.runtime} {det.model.version}",
            "threads": a.threads,
            "fps_inference": fps_model,
            "fps_end_to_end": fps_total,
            "opencv": HAS_CV2,
        }
    )
    (out / "detections.json").write_text(json.dumps(summary, indent=1))
    print(
        f"FPS: {fps_total:.2f} end to end, {fps_model:.2f} inference only ({summary['frames']} frame(s), "
        f"{det.model.runtime} {det.model.version}, {a.threads} thread(s), OpenCV {'yes' if HAS_CV2 else 'no'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
