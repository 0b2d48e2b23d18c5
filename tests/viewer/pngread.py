"""A minimal PNG reader for screenshot pixel checks (8-bit RGB/RGBA, not interlaced: what Chromium writes).

Pillow is not a dependency of rtbank; this is enough for tests to look at the pixels they captured.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(data: bytes) -> np.ndarray:
    """Pixels as (height, width, channels) uint8."""
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PNG")
    pos, idat, header = 8, bytearray(), None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None:
        raise ValueError("PNG without IHDR")
    width, height, depth, colour, _, _, interlace = header
    channels = {2: 3, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"unsupported PNG (depth {depth}, colour type {colour}, interlace {interlace})")
    raw = np.frombuffer(zlib.decompress(bytes(idat)), dtype=np.uint8).reshape(height, 1 + width * channels)
    out = np.zeros((height, width * channels), dtype=np.int32)
    previous = np.zeros(width * channels, dtype=np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        out[y] = _unfilter(kind, line, previous, channels)
        previous = out[y]
    return out.reshape(height, width, channels).astype(np.uint8)


def _unfilter(kind: int, line: np.ndarray, up: np.ndarray, bpp: int) -> np.ndarray:
    if kind == 0:
        return line
    if kind == 2:
        return (line + up) & 0xFF
    if kind == 1:  # Sub: a running sum per channel
        return np.cumsum(line.reshape(-1, bpp), axis=0).ravel() & 0xFF
    cur, above = line.tolist(), up.tolist()
    out = [0] * len(cur)
    for x in range(len(cur)):
        left = out[x - bpp] if x >= bpp else 0
        if kind == 3:
            out[x] = (cur[x] + ((left + above[x]) >> 1)) & 0xFF
        elif kind == 4:
            upper_left = above[x - bpp] if x >= bpp else 0
            p = left + above[x] - upper_left
            pa, pb, pc = abs(p - left), abs(p - above[x]), abs(p - upper_left)
            pred = left if pa <= pb and pa <= pc else above[x] if pb <= pc else upper_left
            out[x] = (cur[x] + pred) & 0xFF
        else:
            raise ValueError(f"unknown PNG filter {kind}")
    return np.array(out, dtype=np.int32)
