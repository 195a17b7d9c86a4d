"""``slfm detect``: annotated images or video plus a JSON of detections in image pixels."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
from tqdm import tqdm

from slfm.draw import draw, to_json
from slfm.errors import SlfmError
from slfm.images import IMAGE_SUFFIXES, read_image

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def collect_inputs(source: Path) -> list[Path]:
    if not source.exists():
        raise SlfmError(f"input not found: {source}")
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
        if not files:
            raise SlfmError(f"no images or videos ({', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)}) in {source}")
        return files
    if source.suffix.lower() not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
        raise SlfmError(
            f"{source}: unsupported file type {source.suffix!r} (images: {', '.join(IMAGE_SUFFIXES)}; "
            f"videos: {', '.join(VIDEO_SUFFIXES)})"
        )
    return [source]


def detect_path(predict, source: Path, out: Path, progress: bool = True) -> dict:
    """Run ``predict`` (BGR image -> ImageDetections) on an image, folder or video; write outputs under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {}
    for path in tqdm(collect_inputs(source), desc="detect", disable=not progress, leave=False):
        if path.suffix.lower() in VIDEO_SUFFIXES:
            report[str(path)] = _video(predict, path, out / f"{path.stem}_det.mp4", progress)
            continue
        image = read_image(path)
        det = predict(image)
        cv2.imwrite(str(out / f"{path.stem}_det.jpg"), draw(image, det))
        report[str(path)] = {"width": image.shape[1], "height": image.shape[0], "detections": to_json(det)}
    (out / "detections.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def _video(predict, path: Path, dst: Path, progress: bool) -> dict:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SlfmError(f"cannot open video {path}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    writer, frames = None, []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            det = predict(frame)
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            writer.write(draw(frame, det))
            frames.append({"frame": len(frames), "detections": to_json(det)})
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if not frames:
        raise SlfmError(f"no frames could be read from video {path}")
    return {"frames": frames, "fps": fps, "output": str(dst)}
