"""The orthophoto: 8/16-bit, 3 or 4 bands -> sRGB float32 in [0, 1], near-infrared, validity."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .raster import Raster, all_no_data, read, read_internal_mask
from .rules import black_frame, check_orthophoto, declared_valid, fourth_band_is_nir, no_data_frame, scale, value_range


@dataclass(frozen=True)
class Image:
    rgb: np.ndarray            # (Hi, Wi, 3) float32 sRGB in [0, 1]
    nir: np.ndarray | None  # (Hi, Wi) float32 in [0, 1]
    valid: np.ndarray          # (Hi, Wi) bool


def read_image(r: Raster) -> Image:
    """Read the orthophoto at its own resolution."""
    check_orthophoto(r)
    data = read(r)
    fourth = data[3] if r.count == 4 else None
    is_nir = fourth is not None and fourth_band_is_nir(r, fourth)
    border = black_frame(data[:3])
    mask = read_internal_mask(r) if r.internal_mask else None
    valid = declared_valid(r, data, None if is_nir else fourth, mask) & ~border
    rgb = np.moveaxis(scale(data[:3], *value_range(data[:3], valid, r.dtype)), 0, -1)
    valid = ~no_data_frame(border, ~valid, rgb)
    if not valid.any():
        raise all_no_data(r)
    return Image(rgb=np.ascontiguousarray(rgb), valid=valid,
                 nir=scale(fourth[None], *value_range(fourth[None], valid, r.dtype))[0] if is_nir else None)
