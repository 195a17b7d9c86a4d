"""Robust image reading: the format is taken from the file's bytes, not its name.

Handles PNG files named ``.jpg``, RGBA (alpha dropped), grayscale and 16-bit images, each with a
warning naming the file; applies the EXIF orientation as image viewers do; an unreadable or truncated file
raises :class:`SlfmError` naming it.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from slfm.errors import SlfmError
from slfm.outputs import atomic_path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_MAGIC = {b"\xff\xd8\xff": "jpeg", b"\x89PNG": "png", b"BM": "bmp", b"RIFF": "webp"}
_SUFFIX_FORMAT = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png", ".bmp": "bmp", ".webp": "webp"}


class DataWarning(UserWarning):
    """Bad input that was handled (skipped, clipped or converted); the message names the file."""


def sniff_format(data: bytes) -> str | None:
    for magic, fmt in _MAGIC.items():
        if data.startswith(magic):
            return fmt
    return None


# EXIF orientation (tag 0x0112) -> the operations that show the stored pixels upright, as image viewers do
_EXIF_ORIENTATION = 0x0112
_ORIENT = {
    2: lambda im: cv2.flip(im, 1),
    3: lambda im: cv2.rotate(im, cv2.ROTATE_180),
    4: lambda im: cv2.flip(im, 0),
    5: lambda im: cv2.transpose(im),
    6: lambda im: cv2.rotate(im, cv2.ROTATE_90_CLOCKWISE),
    7: lambda im: cv2.rotate(cv2.transpose(im), cv2.ROTATE_180),
    8: lambda im: cv2.rotate(im, cv2.ROTATE_90_COUNTERCLOCKWISE),
}


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a broken EXIF block: the pixels are still readable, shown as stored
        return 1
    return value if value in _ORIENT else 1


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) as shown upright (EXIF orientation applied), from the file header without decoding."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            return (h, w) if _orientation(im) in (5, 6, 7, 8) else (w, h)
    except FileNotFoundError:
        raise SlfmError(f"image not found: {path}") from None
    except Exception as e:
        raise SlfmError(f"cannot read image {path}: {e}") from e


# The last bytes of a complete file: JPEG's end-of-image marker, PNG's IEND chunk.
_END = {"jpeg": b"\xff\xd9", "png": b"IEND"}


def truncated(path: str | Path) -> bool:
    """Whether a JPEG or PNG ends before its end marker (header fine, pixels cut), from its last 1 KB; a
    file with more than 1 KB of trailing bytes is decoded to be sure."""
    path = Path(path)
    with open(path, "rb") as f:
        fmt = sniff_format(f.read(8))
        if fmt not in _END:
            return False
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 1024))
        if _END[fmt] in f.read():
            return False
    return cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8) is None


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an image atomically (format from the suffix); SlfmError naming the file if it cannot be written."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            if not cv2.imwrite(str(tmp), image):
                raise SlfmError("the encoder refused it")
    except (SlfmError, cv2.error, OSError) as e:
        h, w = image.shape[:2]
        limit = (
            "; JPEG allows at most 65500 px a side"
            if path.suffix.lower() in (".jpg", ".jpeg") and max(h, w) > 65500
            else ""
        )
        raise SlfmError(f"cannot write {path} ({w}x{h}{limit}): {str(e).splitlines()[0]}") from e
    return path


def read_image(path: str | Path, reduce: int = 1, quiet: bool = False) -> np.ndarray:
    """Read an image as BGR uint8 [H, W, 3]. ``reduce`` in {1, 2, 4, 8} decodes at 1/reduce size (fast for JPEG)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SlfmError(f"image not found: {path}") from None
    except OSError as e:
        raise SlfmError(f"cannot read image {path}: {e}") from e
    if not data:
        raise SlfmError(f"cannot decode image {path}: the file is empty (0 bytes)")
    fmt = sniff_format(data[:8])
    expected = _SUFFIX_FORMAT.get(path.suffix.lower())
    if not quiet and fmt and expected and fmt != expected:
        warnings.warn(
            f"{path}: a {fmt.upper()} file named {path.suffix}; decoded by content", DataWarning, stacklevel=2
        )
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        if reduce > 1 and fmt == "jpeg":
            flag = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[reduce]
            img = cv2.imdecode(buf, flag | cv2.IMREAD_IGNORE_ORIENTATION)
        else:
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        if fmt in _END and _END[fmt] not in data[-1024:]:
            raise SlfmError(f"cannot decode image {path}: the file is truncated (its data ends before the image does)")
        raise SlfmError(f"cannot decode image {path} (not a readable image file)")
    orientation = _file_orientation(data) if fmt in ("jpeg", "png", "webp") else 1
    if img.dtype == np.uint16:
        img = (img / 257).astype(np.uint8)
    if img.ndim == 2:
        if not quiet:
            warnings.warn(f"{path}: grayscale image converted to 3 channels", DataWarning, stacklevel=2)
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        if not quiet:
            warnings.warn(f"{path}: RGBA image, alpha channel dropped", DataWarning, stacklevel=2)
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    elif img.shape[2] == 1:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if reduce > 1 and fmt != "jpeg":
        h, w = img.shape[:2]
        img = cv2.resize(img, ((w + reduce - 1) // reduce, (h + reduce - 1) // reduce), interpolation=cv2.INTER_AREA)
    if orientation != 1:  # upright, as viewers show it (phone photos store the sensor's rotation as a tag)
        img = _ORIENT[orientation](img)
    return np.ascontiguousarray(img)


def _file_orientation(data: bytes) -> int:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return _orientation(im)
    except Exception:
        return 1
