"""Heights: DSM / nDSM / DTM rasters in metres onto the analysis grid, and the DSM-vs-nDSM decision."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rasterio.enums import Resampling
from scipy import ndimage

from ..errors import InputError
from .raster import Raster, all_no_data, read
from .resample import bilinear_nan
from .rules import height_mode


@dataclass(frozen=True)
class Heights:
    height: np.ndarray            # (H, W) float32 nDSM, metres above ground, NaN = no data
    ground: np.ndarray | None  # (H, W) float32 terrain relative to ``elevation``; None = flat
    elevation: float              # vertical datum (metres) that ground 0 stands for


def _read_metres(r: Raster, shape: tuple[int, int], scale: float, offset: float) -> np.ndarray:
    """One band in metres on the analysis grid, NaN where no data. Downsampling averages while GDAL
    reads (memory follows the output, nodata ignored); upsampling is NaN-aware bilinear."""
    if r.count != 1:
        raise InputError(r.path, f"a height raster needs 1 band; this one has {r.count}",
                         "pass a single-band DSM/nDSM; an RGB image goes to --rgb")
    down = shape[0] <= r.height and shape[1] <= r.width
    data = read(r, out_shape=shape if down else None, resampling=Resampling.average, masked=True)[0]
    metres = np.ma.filled(data.astype(np.float32), np.nan)
    if np.issubdtype(np.dtype(r.dtype), np.integer):
        metres = metres * np.float32(scale) + np.float32(offset)  # e.g. 16-bit PNG heights
    metres[~np.isfinite(metres)] = np.nan
    if not down:
        metres = bilinear_nan(metres, shape)
    if np.isnan(metres).all():
        raise all_no_data(r)
    return metres


def _fill_nearest(a: np.ndarray) -> np.ndarray:
    """Fill NaN holes with the nearest value: bare-earth models have gaps (under buildings, water)
    where the surface model is still valid, and terrain is smooth enough for this."""
    holes = np.isnan(a)
    if not holes.any():
        return a
    idx = ndimage.distance_transform_edt(holes, return_distances=False, return_indices=True)
    return a[tuple(idx)]


def read_heights(height: Raster, dtm: Raster | None, shape: tuple[int, int],
                 scale: float, offset: float) -> Heights:
    """nDSM and ground. With a DTM: nDSM = DSM - DTM (clipped at 0), ground = DTM - median(DTM),
    DTM holes under valid DSM filled. Without: an nDSM when the 2nd percentile is within -1..3 m,
    else a terrain model (DSM/DEM): ground = value - median, nDSM = 0."""
    surface = _read_metres(height, shape, scale, offset)
    terrain = _read_metres(dtm, shape, scale, offset) if dtm is not None else None
    mode, datum = height_mode(surface, terrain)
    if mode == "dsm-dtm":
        terrain = np.where(np.isnan(surface) & np.isnan(terrain), np.nan, _fill_nearest(terrain))
        return Heights(np.clip(surface - terrain, 0, None), terrain - np.float32(datum), datum)
    if mode == "ndsm":
        return Heights(np.clip(surface, 0, None), None, 0.0)
    flat = np.where(np.isnan(surface), np.nan, 0).astype(np.float32)
    return Heights(flat, surface - np.float32(datum), datum)
