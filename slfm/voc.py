"""Pascal VOC XML annotations and the dataset layouts (AIZOO, Moxa3K, any VOC folder).

Every sample is validated against its real image: bad input is skipped, clipped or repaired with a
:class:`DataWarning` that names the file, never a crash and never a silently wrong box.
"""

from __future__ import annotations

import math
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slfm.errors import SlfmError
from slfm.images import IMAGE_SUFFIXES, DataWarning, image_size, truncated
from slfm.layouts import FACE, FIT, HOLDOUT, MASK, layout

LABELS = {"face": FACE, "mask": MASK}
# Boxes that overshoot the image by up to this many pixels (common off-by-one labels) are clipped silently.
CLIP_TOLERANCE = 2.0


@dataclass
class Sample:
    image: Path
    boxes: np.ndarray  # float32 [K, 4] x1, y1, x2, y2 in image pixels
    labels: np.ndarray  # int64 [K], 1 = face, 2 = mask
    width: int
    height: int
    annotation: Path | None = None


def _warn(msg: str) -> None:
    warnings.warn(msg, DataWarning, stacklevel=3)


def parse_class_map(spec: str) -> dict[str, int]:
    """``"nomask=face,mask=mask"`` -> {"nomask": 1, "mask": 2}."""
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, target = part.partition("=")
        if target.strip() not in LABELS:
            raise SlfmError(f"class map entry {part!r}: target must be 'face' or 'mask'")
        out[name.strip()] = LABELS[target.strip()]
    if not out:
        raise SlfmError(f"empty class map {spec!r}: expected e.g. 'nomask=face,mask=mask'")
    return out


def parse_annotation(xml_path: Path, image_path: Path, class_map: Mapping[str, int]) -> Sample | None:
    """Parse one VOC XML against its image. Returns None (with a warning) when nothing usable is left."""
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as e:
        _warn(f"{xml_path}: unreadable annotation ({e}); skipped")
        return None
    try:
        width, height = image_size(image_path)
        cut = truncated(image_path)
    except (SlfmError, OSError) as e:
        _warn(f"{xml_path}: its image cannot be read ({e}); skipped")
        return None
    if cut:
        _warn(f"{image_path}: the image file is truncated (its data ends before the image does); skipped")
        return None
    size = root.find("size")
    xw, xh = ((size.findtext(k) or "").strip() if size is not None else "" for k in ("width", "height"))
    bad = [f"<{k}> {v!r}" for k, v in (("width", xw), ("height", xh)) if v and _number(v) is None]
    if bad:
        _warn(f"{xml_path}: non-numeric {' and '.join(bad)}; using the image's size {width}x{height}")
    elif (_number(xw), _number(xh)) != (width, height):
        _warn(f"{xml_path}: <size> {xw or 0}x{xh or 0} disagrees with the image {width}x{height}; using the image's")
    boxes, labels = [], []
    for i, obj in enumerate(root.iter("object")):
        name = (obj.findtext("name") or "").strip()
        if name not in class_map:
            _warn(f"{xml_path}: object {i} has unknown class {name!r} (known: {sorted(class_map)}); skipped")
            continue
        bb = obj.find("bndbox")
        if bb is None:
            _warn(f"{xml_path}: object {i} ({name}) has no <bndbox>; skipped")
            continue
        coords = {k: (bb.findtext(k) or "").strip() for k in ("xmin", "ymin", "xmax", "ymax")}
        bad = [f"<{k}> {v!r}" for k, v in coords.items() if _number(v) is None]
        if bad:
            _warn(f"{xml_path}: object {i} ({name}) has a missing, non-numeric or non-finite {', '.join(bad)}; skipped")
            continue
        x1, y1, x2, y2 = (_number(v) for v in coords.values())
        if x2 <= x1 or y2 <= y1:
            _warn(f"{xml_path}: object {i} ({name}) box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) is empty or inverted; skipped")
            continue
        cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
        cx2, cy2 = min(max(x2, 0.0), width), min(max(y2, 0.0), height)
        if cx2 - cx1 < 1 or cy2 - cy1 < 1:
            _warn(
                f"{xml_path}: object {i} ({name}) box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) lies outside the "
                f"{width}x{height} image; skipped"
            )
            continue
        if max(abs(cx1 - x1), abs(cy1 - y1), abs(cx2 - x2), abs(cy2 - y2)) > CLIP_TOLERANCE:
            _warn(
                f"{xml_path}: object {i} ({name}) box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) clipped to the "
                f"{width}x{height} image"
            )
        boxes.append((cx1, cy1, cx2, cy2))
        labels.append(class_map[name])
    had_objects = root.find("object") is not None
    if had_objects and not boxes:
        _warn(f"{xml_path}: no valid objects left; skipped")
        return None
    return Sample(
        image=image_path,
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        labels=np.asarray(labels, dtype=np.int64),
        width=width,
        height=height,
        annotation=xml_path,
    )


def _number(text: str) -> float | None:
    """A finite number from an XML field, or None (missing, non-numeric, nan or inf)."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _pair(images: dict[str, Path], xmls: dict[str, Path], where: Path, names: list[str] | None) -> list[tuple]:
    """Pair image and XML files by stem, warning about either one missing."""
    if names is None:
        names = sorted(set(images) | set(xmls))
        for n in sorted(set(images) - set(xmls)):
            _warn(f"{images[n]}: image has no annotation; skipped")
    pairs = []
    for n in names:
        if n not in xmls:
            if n in images:
                _warn(f"{images[n]}: image has no annotation; skipped")
            else:
                _warn(f"{where}: '{n}' is listed but has neither image nor annotation; skipped")
            continue
        if n not in images:
            _warn(f"{xmls[n]}: annotation has no image; skipped")
            continue
        pairs.append((xmls[n], images[n]))
    return pairs


def _index(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in suffixes} if folder.is_dir() else {}


def _read_list(path: Path) -> list[str]:
    return [Path(line.strip()).stem for line in path.read_text().splitlines() if line.strip()]


def _require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise SlfmError(f"{what}: folder not found: {path}")


SPLITS_DIR = Path(__file__).resolve().parent / "splits"
# Validation splits carved from training data: fixed, committed lists of training images (``slfm/splits/``),
# for choices (epochs, sizes, thresholds, the QAT epoch); test splits are for final numbers only
# (HOLDOUT, FIT: slfm.layouts).


def holdout_names(kind: str) -> set[str]:
    path = SPLITS_DIR / f"{kind}_holdout.txt"
    if not path.is_file():
        raise SlfmError(
            f"no committed holdout list for the {kind} layout ({path}): use a split of your data for validation"
        )
    return set(_read_list(path))


def dataset_pairs(root: str | Path, kind: str, split: str) -> list[tuple[Path, Path]]:
    """(xml, image) pairs of one split of a dataset laid out as ``kind``.

    ``holdout`` is the committed validation list carved from ``train`` (slfm/splits/<kind>_holdout.txt) and
    ``fit`` is ``train`` without it."""
    root = Path(root)
    if split in (HOLDOUT, FIT) and not (root / f"{split}.txt").is_file() and not (root / split).is_dir():
        names = holdout_names(kind)
        pairs = dataset_pairs(root, kind, "train")
        return [(x, i) for x, i in pairs if (i.stem in names) == (split == HOLDOUT)]
    _require_dir(root, f"{kind} dataset")
    return layout(kind).find_pairs(root, split)


def aizoo_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    folder = root / split
    if not folder.is_dir():
        found = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise SlfmError(
            f"aizoo layout expects {root}/<split>/ with <name>.jpg + <name>.xml; "
            f"no split folder {split!r} (found: {found})"
        )
    return _pair(_index(folder, IMAGE_SUFFIXES), _index(folder, (".xml",)), folder, None)


def moxa3k_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    images, ann = root / "images", root / "annotations" / "Pascal Voc"
    listing = root / f"{split}.txt"
    for p in (images, ann):
        _require_dir(p, "moxa3k layout (images/, 'annotations/Pascal Voc/', <split>.txt)")
    if not listing.is_file():
        raise SlfmError(f"moxa3k layout: split list not found: {listing}")
    return _pair(_index(images, IMAGE_SUFFIXES), _index(ann, (".xml",)), listing, _read_list(listing))


def voc_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    if (root / "Annotations").is_dir():
        images, ann = root / "JPEGImages", root / "Annotations"
        listing = root / "ImageSets" / "Main" / f"{split}.txt"
        names = _read_list(listing) if listing.is_file() else None
        return _pair(_index(images, IMAGE_SUFFIXES), _index(ann, (".xml",)), listing, names)
    folder = root / split if (root / split).is_dir() else root
    return _pair(_index(folder, IMAGE_SUFFIXES), _index(folder, (".xml",)), folder, None)


def load_dataset(
    root: str | Path, kind: str, split: str, class_map: Mapping[str, int] | None = None, limit: int | None = None
) -> list[Sample]:
    """Parse and validate a dataset split. Raises :class:`SlfmError` when no usable sample is found."""
    cmap = dict(class_map if class_map is not None else layout(kind).class_map)
    pairs = dataset_pairs(root, kind, split)
    if limit is not None:
        pairs = pairs[:limit]
    samples = [s for xml, img in pairs if (s := parse_annotation(xml, img, cmap)) is not None]
    if not samples:
        raise SlfmError(f"no usable annotated images in {root} ({kind} layout, split {split!r})")
    return samples
