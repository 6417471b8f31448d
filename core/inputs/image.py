"""The orthophoto: 8/16-bit, 3 or 4 bands -> sRGB float32 in [0, 1], near-infrared, validity."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rasterio.enums import ColorInterp
from scipy import ndimage

from ..errors import InputError
from .raster import Raster, all_no_data, read, read_internal_mask

_FULL_SCALE = {"uint8": 255, "uint16": 65535}
_TWELVE_BIT = 4095             # a 16-bit image whose 98th percentile is above this uses the full range
_ALPHA_BINARY_FRACTION = 0.95  # share of 0/full-scale values that makes a labelled alpha band real
_FRINGE_PX = 16                # JPEG ringing along a black border fills up to one 16x16 block
_FRINGE_LEVEL = 16 / 255       # ... with values this dark
_SPECK_PX = 2                  # valid specks and gaps narrower than 2 * this inside the frame are closed


@dataclass(frozen=True)
class Image:
    rgb: np.ndarray            # (Hi, Wi, 3) float32 sRGB in [0, 1]
    nir: np.ndarray | None  # (Hi, Wi) float32 in [0, 1]
    valid: np.ndarray          # (Hi, Wi) bool


def _check_format(r: Raster) -> None:
    if r.count not in (3, 4):
        raise InputError(r.path, f"an orthophoto needs 3 or 4 bands; this raster has {r.count}",
                         "pass RGB or RGB + alpha/NIR; a single-band raster goes to --height or --semantic")
    if r.dtype not in _FULL_SCALE:
        raise InputError(r.path, f"an orthophoto must be 8- or 16-bit; this one is {r.dtype}",
                         "convert it, e.g. gdal_translate -ot Byte -scale in.tif out.tif")


def _fourth_is_nir(r: Raster, band: np.ndarray) -> bool:
    """NIR when the band says so or is not labelled alpha. A GeoTIFF 'alpha' band that is not mostly
    0/full-scale is NIR too: NAIP files label their NIR band as an alpha extra sample."""
    description = r.descriptions[3].lower()
    if "nir" in description or "infrared" in description or r.colorinterp[3] != ColorInterp.alpha:
        return True
    if r.driver != "GTiff":
        return False  # a PNG's fourth channel is alpha by definition of the format
    binary = np.count_nonzero((band == 0) | (band == _FULL_SCALE[r.dtype]))
    return binary < _ALPHA_BINARY_FRACTION * band.size


def _declared_valid(r: Raster, data: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Validity the file declares: nodata value on all colour bands, alpha 0, internal mask."""
    valid = np.ones(r.shape, bool)
    if r.nodata is not None:
        valid &= ~(data[:3] == r.nodata).all(axis=0)
    if alpha is not None:
        valid &= alpha > 0
    if r.internal_mask:
        valid &= read_internal_mask(r)
    return valid


def _black_border(colour: np.ndarray) -> np.ndarray:
    """Exactly-black (0, 0, 0) regions connected to the image edge: an undeclared no-data frame."""
    labels, _ = ndimage.label((colour == 0).all(axis=0))
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return np.isin(labels, edge[edge > 0])


def _frame(border: np.ndarray, invalid: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Grow the black border into the near-black JPEG ringing along it (one block at most), then
    close it, with the other no-data, so isolated dark specks in the frame are not kept as image."""
    if not border.any():
        return invalid
    dark = rgb.max(axis=-1) <= _FRINGE_LEVEL
    grown = ndimage.binary_dilation(border, iterations=_FRINGE_PX, mask=dark) | border | invalid
    # A square element leaves right-angle corners alone; edge padding keeps the image edge neutral.
    k = _SPECK_PX
    closed = ndimage.binary_closing(np.pad(grown, k, mode="edge"), np.ones((3, 3), bool), iterations=k)
    return closed[k:-k, k:-k]


def value_range(bands: np.ndarray, valid: np.ndarray, dtype: str) -> tuple[float, float]:
    """The stored values that map to 0 and 1. 8-bit: 0..255. 16-bit: 0..65535 when the data uses the
    full range (98th percentile above 12 bits), else the 2nd..98th percentile of all bands together
    (keeps the colour balance), so 10-12-bit sensor counts are not black."""
    if dtype == "uint8":
        return 0.0, 255.0
    idx = np.flatnonzero(valid)[:: max(1, int(valid.sum()) // 1_000_000)]  # ~1M samples suffice
    lo, hi = np.percentile(bands.reshape(len(bands), -1)[:, idx], [2, 98]) if idx.size else (0.0, 1.0)
    return (0.0, 65535.0) if hi > _TWELVE_BIT else (float(lo), float(hi))


def scale(bands: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(C, H, W) stored values -> float32 in [0, 1]: lo -> 0, hi -> 1."""
    out = bands.astype(np.float32)
    out -= np.float32(lo)
    out /= np.float32(max(hi - lo, 1.0))
    return np.clip(out, 0, 1, out=out)


def read_image(r: Raster) -> Image:
    """Read the orthophoto at its own resolution."""
    _check_format(r)
    data = read(r)
    fourth = data[3] if r.count == 4 else None
    is_nir = fourth is not None and _fourth_is_nir(r, fourth)
    border = _black_border(data[:3])
    valid = _declared_valid(r, data, None if is_nir else fourth) & ~border
    rgb = np.moveaxis(scale(data[:3], *value_range(data[:3], valid, r.dtype)), 0, -1)
    valid = ~_frame(border, ~valid, rgb)
    if not valid.any():
        raise all_no_data(r)
    return Image(rgb=np.ascontiguousarray(rgb), valid=valid,
                 nir=scale(fourth[None], *value_range(fourth[None], valid, r.dtype))[0] if is_nir else None)
