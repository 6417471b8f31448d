"""Atlas image encoding shared by every format (encoded once per export)."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

# zlib level 3 is ~4x faster than Pillow's default 6 on large atlases and only a few % bigger.
PNG_COMPRESS_LEVEL = 3


def encode_png(atlas: np.ndarray, compress_level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """(H, W, 3) uint8 sRGB atlas -> PNG bytes (8-bit RGB, no colour-space chunks)."""
    if atlas.dtype != np.uint8 or atlas.ndim != 3 or atlas.shape[2] != 3:
        raise ValueError(f"atlas must be (H, W, 3) uint8, got {atlas.shape} {atlas.dtype}")
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(atlas)).save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()
