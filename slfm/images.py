"""Robust image reading: the format is taken from the file's bytes, not its name.

Handles PNG files named ``.jpg``, RGBA (alpha dropped), grayscale and 16-bit images, each with a
warning naming the file; an unreadable file raises :class:`SlfmError` naming it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from slfm.errors import SlfmError

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


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise SlfmError(f"image not found: {path}") from None
    except Exception as e:
        raise SlfmError(f"cannot read image {path}: {e}") from e


def read_image(path: str | Path, reduce: int = 1, quiet: bool = False) -> np.ndarray:
    """Read an image as BGR uint8 [H, W, 3]. ``reduce`` in {1, 2, 4, 8} decodes at 1/reduce size (fast for JPEG)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SlfmError(f"image not found: {path}") from None
    except OSError as e:
        raise SlfmError(f"cannot read image {path}: {e}") from e
    fmt = sniff_format(data[:8])
    expected = _SUFFIX_FORMAT.get(path.suffix.lower())
    if not quiet and fmt and expected and fmt != expected:
        warnings.warn(
            f"{path}: a {fmt.upper()} file named {path.suffix}; decoded by content", DataWarning, stacklevel=2
        )
    buf = np.frombuffer(data, dtype=np.uint8)
    if reduce > 1 and fmt == "jpeg":
        flag = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[reduce]
        img = cv2.imdecode(buf, flag)
    else:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise SlfmError(f"cannot decode image {path} (not a readable image file)")
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
    return np.ascontiguousarray(img)
