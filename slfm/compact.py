"""Copy a dataset split into a small Pascal VOC folder: images shrunk to a longest side, boxes scaled with them.

For moving training data to a remote accelerator whose upload is capped (``slfm compact``): the result is
the ``voc`` layout (``JPEGImages/``, ``Annotations/``, ``ImageSets/Main/<split>.txt``) with the class names
``face`` and ``mask``, so ``slfm train --dataset voc`` reads it. Images already within the limit are copied
byte for byte; larger ones (and other formats) are resized (area interpolation) and re-encoded as JPEG or
WebP at ``quality``.
"""

from __future__ import annotations

import shutil
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
from tqdm import tqdm

from slfm.errors import SlfmError
from slfm.images import DataWarning, read_image, sniff_format
from slfm.voc import FACE, MASK, load_dataset

NAMES = {FACE: "face", MASK: "mask"}
ENCODERS = {"jpg": cv2.IMWRITE_JPEG_QUALITY, "webp": cv2.IMWRITE_WEBP_QUALITY}


@dataclass
class CompactReport:
    images: int
    resized: int
    bytes_in: int
    bytes_out: int


def _xml(name: str, width: int, height: int, boxes, labels) -> ET.ElementTree:
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = name
    size = ET.SubElement(root, "size")
    for k, v in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, k).text = str(v)
    for (x1, y1, x2, y2), label in zip(boxes.tolist(), labels.tolist(), strict=True):
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = NAMES[int(label)]
        ET.SubElement(obj, "difficult").text = "0"
        bb = ET.SubElement(obj, "bndbox")
        for k, v in zip(("xmin", "ymin", "xmax", "ymax"), (x1, y1, x2, y2), strict=True):
            ET.SubElement(bb, k).text = f"{v:.1f}"
    return ET.ElementTree(root)


def compact(
    data: str | Path,
    kind: str,
    split: str,
    out: str | Path,
    max_side: int = 800,
    quality: int = 85,
    fmt: str = "jpg",
    class_map: Mapping[str, int] | None = None,
    progress: bool = True,
) -> CompactReport:
    """Write ``split`` of ``data`` to ``out`` in the voc layout; returns counts and sizes."""
    if max_side < 32:
        raise SlfmError(f"--max-side {max_side}: must be at least 32 pixels")
    if not 1 <= quality <= 100:
        raise SlfmError(f"--quality {quality}: must be in 1..100")
    if fmt not in ENCODERS:
        raise SlfmError(f"--format {fmt!r}: use one of {', '.join(ENCODERS)}")
    samples = load_dataset(data, kind, split, class_map)
    out = Path(out)
    images, anns, lists = out / "JPEGImages", out / "Annotations", out / "ImageSets" / "Main"
    for p in (images, anns, lists):
        p.mkdir(parents=True, exist_ok=True)
    names, seen, resized, bytes_in, bytes_out = [], set(), 0, 0, 0
    for s in tqdm(samples, desc=f"compact {split}", disable=not progress):
        stem = s.image.stem
        if stem in seen:
            raise SlfmError(f"{s.image}: two images of split {split!r} share the name {stem!r}")
        seen.add(stem)
        scale = min(1.0, max_side / max(s.width, s.height))
        with open(s.image, "rb") as f:
            is_jpeg = sniff_format(f.read(8)) == "jpeg"
        if scale < 1.0 or not is_jpeg:
            try:
                image = read_image(s.image, quiet=True)  # BGR
            except SlfmError as e:  # one unreadable image is left out, the copy goes on
                warnings.warn(f"{e}; left out of the copy", DataWarning, stacklevel=2)
                continue
            w, h = max(1, round(s.width * scale)), max(1, round(s.height * scale))
            if scale < 1.0:
                image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
                resized += 1
            dst = images / f"{stem}.{fmt}"
            ok = cv2.imwrite(str(dst), image, [ENCODERS[fmt], quality])
            if not ok:
                raise SlfmError(f"could not write {dst}")
            sx, sy = w / s.width, h / s.height
        else:
            dst = images / f"{stem}.jpg"
            shutil.copyfile(s.image, dst)
            w, h, sx, sy = s.width, s.height, 1.0, 1.0
        names.append(stem)
        bytes_in += s.image.stat().st_size
        bytes_out += dst.stat().st_size
        boxes = s.boxes * [sx, sy, sx, sy]
        _xml(dst.name, w, h, boxes, s.labels).write(anns / f"{stem}.xml", encoding="utf-8")
    (lists / f"{split}.txt").write_text("\n".join(names) + "\n")
    return CompactReport(len(names), resized, bytes_in, bytes_out)
