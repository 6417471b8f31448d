"""Write pixel arrays as files the worker reads: PNG (8-bit) and float32 TIFF (heights in metres).

Stdlib and numpy only (Blender ships numpy; it does not ship Pillow or GDAL). The bytes are ours,
so no colour management or float clamping gets between a .blend image and the worker.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

_PNG_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> grey, grey+alpha, RGB, RGBA


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(pixels: np.ndarray) -> bytes:
    """(H, W) or (H, W, C) uint8, row 0 at the top -> PNG bytes (filter 0 on every row)."""
    array = np.asarray(pixels)
    if array.dtype != np.uint8:
        raise ValueError(f"png_bytes wants uint8 pixels, not {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    height, width, channels = array.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), array.reshape(height, width * channels)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOUR_TYPE[channels], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + _png_chunk(b"IEND", b""))


def tiff_float_bytes(values: np.ndarray) -> bytes:
    """(H, W) numbers, row 0 at the top -> a baseline little-endian single-strip float32 TIFF.

    No georeference tags: the worker then needs ``--gsd`` (the operator passes it).
    """
    data = np.ascontiguousarray(values, dtype="<f4")
    height, width = data.shape
    entries = [  # (tag, type, count, value); type 3 SHORT, 4 LONG; sorted by tag as TIFF requires
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 32), (259, 3, 1, 1), (262, 3, 1, 1),
        (273, 4, 1, 0), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, data.nbytes), (284, 3, 1, 1),
        (339, 3, 1, 3),  # SampleFormat 3: IEEE float
    ]
    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    pixel_offset = ifd_offset + ifd_size
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        if tag == 273:
            value = pixel_offset
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)  # no next IFD
    return b"II*\x00" + struct.pack("<I", ifd_offset) + ifd + data.tobytes()


def write(path: Path, data: bytes) -> Path:
    path = Path(path)
    path.write_bytes(data)
    return path
