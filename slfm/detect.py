"""``slfm detect``: annotated images or video plus a JSON of detections in image pixels."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path

import cv2
from tqdm import tqdm

from slfm.draw import draw, to_json
from slfm.errors import SlfmError
from slfm.formats import format_of
from slfm.images import IMAGE_SUFFIXES, DataWarning, read_image, write_image
from slfm.outputs import atomic_path, folder_lock, write_text

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def collect_inputs(source: Path) -> list[Path]:
    if not source.exists():
        raise SlfmError(f"input not found: {source}")
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES)
        if not files:
            raise SlfmError(f"no images or videos ({', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)}) in {source}")
        return files
    if format_of(source) is not None:
        raise SlfmError(
            f"{source} is an on-device artifact: detect takes [CHECKPOINT|ARTIFACT] SOURCE, so give the image, "
            f"folder or video after it (slfm detect {source} photo.jpg)"
        )
    if source.suffix.lower() not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
        raise SlfmError(
            f"{source}: unsupported file type {source.suffix!r} (images: {', '.join(IMAGE_SUFFIXES)}; "
            f"videos: {', '.join(VIDEO_SUFFIXES)})"
        )
    return [source]


def output_stems(paths: list[Path]) -> dict[Path, str]:
    """Each input's output name stem: its own, or with its suffix where several inputs share one
    (``photo.jpg`` and ``photo.png`` -> ``photo_jpg``, ``photo_png``), so no output overwrites another."""
    counts = Counter(p.stem for p in paths)
    return {p: p.stem if counts[p.stem] == 1 else f"{p.stem}_{p.suffix[1:]}" for p in paths}


def detect_path(predict, source: Path, out: Path, progress: bool = True) -> dict:
    """Run ``predict`` (BGR image -> ImageDetections) on an image, folder or video; write outputs under ``out``.

    An input that cannot be read or written becomes an entry with its ``error`` (and a warning naming it); the
    others are still processed, and ``detections.json`` is written (atomically) whatever happens."""
    inputs = collect_inputs(source)
    stems = output_stems(inputs)
    report: dict = {}
    with folder_lock(out, "slfm detect"):
        try:
            for path in tqdm(inputs, desc="detect", disable=not progress, leave=False):
                try:
                    report[str(path)] = _one(predict, path, out, stems[path], progress)
                except SlfmError as e:
                    warnings.warn(str(e), DataWarning, stacklevel=2)
                    report[str(path)] = {"error": str(e)}
        finally:
            write_text(out / "detections.json", json.dumps(report, indent=1) + "\n")
    return report


def _one(predict, path: Path, out: Path, stem: str, progress: bool) -> dict:
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return _video(predict, path, out / f"{stem}_det.mp4", progress)
    image = read_image(path)
    det = predict(image)
    entry = {"width": image.shape[1], "height": image.shape[0], "detections": to_json(det)}
    try:
        entry["output"] = str(write_image(out / f"{stem}_det.jpg", draw(image, det)))
    except SlfmError as e:  # the detections are kept; only the drawing is missing
        entry["error"] = str(e)
        warnings.warn(str(e), DataWarning, stacklevel=2)
    return entry


def _video(predict, path: Path, dst: Path, progress: bool) -> dict:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SlfmError(f"cannot open video {path}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    writer, frames = None, []
    with atomic_path(dst) as tmp:
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                det = predict(frame)
                if writer is None:
                    h, w = frame.shape[:2]
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                writer.write(draw(frame, det))
                frames.append({"frame": len(frames), "detections": to_json(det)})
        finally:
            cap.release()
            if writer is not None:
                writer.release()
        if not frames:
            raise SlfmError(f"no frames could be read from video {path}")
    return {"frames": frames, "fps": fps, "output": str(dst)}
