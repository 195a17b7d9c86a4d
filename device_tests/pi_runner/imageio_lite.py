"""Image files without OpenCV or Pillow: PNG (8/16-bit, any colour type, not interlaced), binary PPM/PGM,
uncompressed BMP and .npy in; PNG out. Pixels come back as BGR uint8, as from ``cv2.imread``.
JPEG needs OpenCV or Pillow (a clear error says so)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from .backend import RunnerError


def read(path: str | Path) -> np.ndarray:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RunnerError(f"cannot read image {path}: {e.strerror}") from None
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        rgb = _png(data, path)
    elif data[:2] in (b"P5", b"P6"):
        rgb = _pnm(data, path)
    elif data.startswith(b"BM"):
        rgb = _bmp(data, path)
    elif data.startswith(b"\x93NUMPY"):
        arr = np.load(path)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise RunnerError(f"{path}: .npy image must be uint8 HxWx3 BGR, got {arr.dtype} {list(arr.shape)}")
        return arr
    elif data.startswith(b"\xff\xd8\xff"):
        raise RunnerError(f"{path}: JPEG needs OpenCV or Pillow on this device (pip install opencv-python-headless)")
    else:
        raise RunnerError(f"{path}: not a PNG, PPM/PGM, BMP or .npy image")
    return np.ascontiguousarray(rgb[..., ::-1])


def _png(data: bytes, path: Path) -> np.ndarray:
    pos, idat, palette, hdr = 8, [], None, None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = np.frombuffer(body, dtype=np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if hdr is None:
        raise RunnerError(f"{path}: PNG without IHDR")
    w, h, depth, ctype, _, _, interlace = hdr
    if interlace or depth not in (8, 16) and ctype != 3 or (ctype == 3 and depth != 8):
        raise RunnerError(f"{path}: PNG {depth}-bit colour type {ctype} interlace {interlace} needs OpenCV or Pillow")
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    bpp = channels * depth // 8
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8).reshape(h, 1 + w * bpp)
    rows = _unfilter(raw[:, 1:].astype(np.int64), raw[:, 0], bpp)
    if depth == 16:
        px = (rows.reshape(h, w * channels, 2)[..., 0]).reshape(h, w, channels)
    else:
        px = rows.reshape(h, w, channels)
    px = px.astype(np.uint8)
    if ctype == 3:
        if palette is None:
            raise RunnerError(f"{path}: palette PNG without PLTE")
        return palette[px[..., 0]]
    if channels in (1, 2):
        return np.repeat(px[..., :1], 3, axis=2)
    return px[..., :3]


def _unfilter(rows: np.ndarray, filters: np.ndarray, bpp: int) -> np.ndarray:
    out = np.zeros_like(rows)
    prev = np.zeros(rows.shape[1], dtype=np.int64)
    for y in range(rows.shape[0]):
        f, r = int(filters[y]), rows[y]
        if f == 0:
            cur = r
        elif f == 1:  # Sub: running sum per byte of a pixel
            cur = np.cumsum(r.reshape(-1, bpp), axis=0).reshape(-1) % 256
        elif f == 2:  # Up
            cur = (r + prev) % 256
        elif f in (3, 4):  # Average, Paeth: sequential along the row
            cur = r.copy()
            for i in range(cur.size):
                a = int(cur[i - bpp]) if i >= bpp else 0
                b = int(prev[i])
                if f == 3:
                    cur[i] = (cur[i] + (a + b) // 2) % 256
                else:
                    c = int(prev[i - bpp]) if i >= bpp else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) % 256
        else:
            raise RunnerError(f"bad PNG filter type {f}")
        out[y] = cur
        prev = cur
    return out


def _pnm(data: bytes, path: Path) -> np.ndarray:
    fields, pos = [], 2
    while len(fields) < 3:
        while data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(int(data[pos:end]))
        pos = end
    w, h, maxval = fields
    if maxval != 255:
        raise RunnerError(f"{path}: only 8-bit PPM/PGM are read without OpenCV")
    c = 3 if data[:2] == b"P6" else 1
    px = np.frombuffer(data, dtype=np.uint8, count=w * h * c, offset=pos + 1).reshape(h, w, c)
    return px if c == 3 else np.repeat(px, 3, axis=2)


def _bmp(data: bytes, path: Path) -> np.ndarray:
    offset = struct.unpack("<I", data[10:14])[0]
    w, h, _, bits, compression = struct.unpack("<iiHHI", data[18:34])
    if bits not in (24, 32) or compression not in (0, 3):
        raise RunnerError(f"{path}: only uncompressed 24/32-bit BMP are read without OpenCV")
    c = bits // 8
    stride = (w * c + 3) // 4 * 4
    rows = np.frombuffer(data, dtype=np.uint8, count=stride * abs(h), offset=offset).reshape(abs(h), stride)
    bgr = rows[:, : w * c].reshape(abs(h), w, c)[..., :3]
    bgr = bgr[::-1] if h > 0 else bgr
    return bgr[..., ::-1]  # as RGB, like the other decoders


def write_png(path: str | Path, bgr: np.ndarray) -> None:
    h, w = bgr.shape[:2]
    raw = np.concatenate([np.zeros((h, 1), np.uint8), np.ascontiguousarray(bgr[..., ::-1]).reshape(h, -1)], axis=1)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + chunk(b"IEND", b"")
    Path(path).write_bytes(png)
