"""The stored-value rules: how the values a file stores become data. ``generate`` (whole files,
core/inputs) and ``world`` (windows, world/inputs) both apply exactly these.

- Orthophoto format: 3 or 4 bands, 8- or 16-bit (``check_orthophoto``).
- 4th band: near-infrared or alpha (``fourth_band_is_nir``).
- Value range: 8-bit /255; 16-bit /65535 or a 2..98 % stretch (``value_range``, ``scale``).
- No-data: the file's nodata value on all colour bands, alpha 0, a GDAL internal mask
  (``declared_valid``), and an undeclared black frame (``black_frame`` then ``no_data_frame``).
- Heights: nDSM, absolute surface or DSM + DTM, and the vertical datum (``height_mode``).
"""
from __future__ import annotations

import numpy as np
from rasterio.enums import ColorInterp
from scipy import ndimage

from ..errors import InputError
from .raster import Raster

FULL_SCALE = {"uint8": 255, "uint16": 65535}
_TWELVE_BIT = 4095             # a 16-bit image whose 98th percentile is above this uses the full range
_ALPHA_BINARY_FRACTION = 0.95  # share of 0/full-scale values that makes a labelled alpha band real
_FRINGE_PX = 16                # JPEG ringing along a black border fills up to one 16x16 block
_FRINGE_LEVEL = 16 / 255       # ... with values this dark
_SPECK_PX = 2                  # valid specks and gaps narrower than 2 * this inside the frame are closed
# A window of a larger file sees the frame through this many extra pixels on every side: enough for
# the fringe growth and the closing, and a black region reaching this far past the window's edge
# counts as connected to the image edge (true of every no-data collar; real black that large is rare).
FRAME_MARGIN_PX = 64
# An nDSM starts at the ground: its 2nd percentile sits near 0 m. Anything clearly above (or below)
# is an absolute surface (DSM/DEM above a vertical datum).
NDSM_P2_RANGE = (-1.0, 3.0)


def check_orthophoto(r: Raster) -> None:
    if r.count not in (3, 4):
        raise InputError(r.path, f"an orthophoto needs 3 or 4 bands; this raster has {r.count}",
                         "pass RGB or RGB + alpha/NIR; a single-band raster goes to --height or --semantic")
    if r.dtype not in FULL_SCALE:
        raise InputError(r.path, f"an orthophoto must be 8- or 16-bit; this one is {r.dtype}",
                         "convert it, e.g. gdal_translate -ot Byte -scale in.tif out.tif")


def fourth_band_is_nir(r: Raster, band: np.ndarray) -> bool:
    """NIR when the band says so or is not labelled alpha. A GeoTIFF 'alpha' band that is not mostly
    0/full-scale is NIR too: NAIP files label their NIR band as an alpha extra sample."""
    description = r.descriptions[3].lower()
    if "nir" in description or "infrared" in description or r.colorinterp[3] != ColorInterp.alpha:
        return True
    if r.driver != "GTiff":
        return False  # a PNG's fourth channel is alpha by definition of the format
    binary = np.count_nonzero((band == 0) | (band == FULL_SCALE[r.dtype]))
    return binary < _ALPHA_BINARY_FRACTION * band.size


def declared_valid(r: Raster, data: np.ndarray, alpha: np.ndarray | None,
                   internal_mask: np.ndarray | None) -> np.ndarray:
    """Validity the file declares: nodata value on all colour bands, alpha 0, internal mask."""
    valid = np.ones(data.shape[1:], bool)
    if r.nodata is not None:
        valid &= ~(data[:3] == r.nodata).all(axis=0)
    if alpha is not None:
        valid &= alpha > 0
    if internal_mask is not None:
        valid &= internal_mask
    return valid


def black_frame(colour: np.ndarray, seeds: np.ndarray | None = None) -> np.ndarray:
    """Exactly-black (0, 0, 0) regions of (3, H, W) stored values connected to the image edge: an
    undeclared no-data frame. ``seeds``: (H, W) bool, the cells that count as the edge (default:
    the array's own border; a window of a larger file passes its border cells as well)."""
    labels, _ = ndimage.label((colour == 0).all(axis=0))
    if seeds is None:
        edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    else:
        edge = labels[seeds]
    edge = np.unique(edge)
    return np.isin(labels, edge[edge > 0])


def no_data_frame(border: np.ndarray, invalid: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Grow the black border into the near-black JPEG ringing along it (one block at most), then
    close it, with the other no-data, so isolated dark specks in the frame are not kept as image.
    ``rgb``: (H, W, 3) scaled to [0, 1]. Returns (H, W) bool: no data."""
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


def height_mode(surface: np.ndarray, terrain: np.ndarray | None) -> tuple[str, float]:
    """(mode, datum) of height rasters in metres (NaN = no data). With a terrain model: "dsm-dtm",
    datum = its median. Without: "ndsm" when the 2nd percentile is within NDSM_P2_RANGE (datum 0),
    else "terrain" (an absolute DSM/DEM taken as ground), datum = its median."""
    if terrain is not None:
        return "dsm-dtm", float(np.nanmedian(terrain))
    if NDSM_P2_RANGE[0] <= float(np.nanpercentile(surface, 2)) <= NDSM_P2_RANGE[1]:
        return "ndsm", 0.0
    return "terrain", float(np.nanmedian(surface))
