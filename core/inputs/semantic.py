"""Semantic maps: single-band class ids or an RGB palette image -> class ids of one scheme."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import InputError
from ..schemes import SCHEMES, ClassScheme
from .raster import Raster, all_no_data, read
from .resample import nearest

_SHOWN = 5  # offending values named in the message


def _no_data(a: np.ndarray, nodata: float | None) -> np.ndarray:
    if nodata is None:
        return np.zeros(a.shape, bool)
    return np.isnan(a) if np.isnan(nodata) else a == nodata


def _refuse(r: Raster, scheme: ClassScheme, bad: np.ndarray, what: str,
            label: Callable[[int], str], fits: Callable[[ClassScheme], bool]) -> InputError:
    """The error for values outside the scheme: which ones, how many pixels, which --palette fits."""
    values = np.unique(bad)
    shown = ", ".join(label(v) for v in values[:_SHOWN]) + (", ..." if len(values) > _SHOWN else "")
    share = 100 * bad.size / (r.width * r.height)
    match = next((s.name for s in SCHEMES.values() if s is not scheme and fits(s)), None)
    fix = (f"use --palette {match}, which matches the map" if match else
           f"use the --palette that matches the map ({', '.join(SCHEMES)}) or remap the {what}")
    return InputError(r.path, f"{bad.size} pixels ({share:.1f}%) have {what} outside the "
                      f"{scheme.name} scheme: {shown}", fix)


def _from_ids(r: Raster, band: np.ndarray, scheme: ClassScheme) -> np.ndarray:
    unknown = _no_data(band, r.nodata)
    bad = ~np.isin(band, scheme.ids) & ~unknown
    if bad.any():
        known = band[~unknown]
        raise _refuse(r, scheme, band[bad], "class ids", lambda v: f"{v:g}",
                      lambda s: bool(np.isin(known, s.ids).all()))
    return np.where(unknown, 0, band).astype(np.uint8)


def _codes(colours: dict[int, tuple[int, int, int]]) -> dict[int, int]:
    return {(c[0] << 16) | (c[1] << 8) | c[2]: cid for cid, c in colours.items()}


def _from_colours(r: Raster, data: np.ndarray, scheme: ClassScheme) -> np.ndarray:
    if r.dtype != "uint8":
        raise InputError(r.path, f"a palette image must be 8-bit RGB; this one is {r.dtype}",
                         "export the class map as 8-bit RGB, or as single-band class ids")
    rgb = data[:3].astype(np.int32)
    codes = (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]
    unknown = _no_data(data[:3], r.nodata).all(axis=0) | ((data[3] == 0) if r.count == 4 else False)
    table = _codes(scheme.colours)
    keys = np.array(sorted(table), np.int32)
    bad = ~np.isin(codes, keys) & ~unknown
    if bad.any():
        known = codes[~unknown]
        raise _refuse(r, scheme, codes[bad], "colours",
                      lambda c: f"({c >> 16}, {(c >> 8) & 255}, {c & 255})",
                      lambda s: bool(np.isin(known, list(_codes(s.colours))).all()))
    ids = np.array([table[k] for k in keys], np.uint8)[np.searchsorted(keys, codes).clip(0, len(keys) - 1)]
    ids[unknown] = 0
    return ids


def read_class_values(r: Raster, scheme: ClassScheme, data: np.ndarray) -> np.ndarray:
    """(H, W) uint8 class ids from (bands, H, W) stored values of ``r`` (all of it or a window);
    values outside the scheme are refused."""
    if r.count == 2 or r.count > 4:
        raise InputError(r.path, f"a semantic map needs 1 band (ids) or 3-4 (palette); it has {r.count}",
                         "export the class map as single-band ids or an RGB palette image")
    return _from_ids(r, data[0], scheme) if r.count == 1 else _from_colours(r, data, scheme)


def read_classes(r: Raster, scheme: ClassScheme, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 class ids on the analysis grid (nearest neighbour: ids are never blended).
    Read at full resolution so every pixel is checked against the scheme."""
    ids = read_class_values(r, scheme, read(r))
    if not ids.any():
        raise all_no_data(r, "every pixel is no-data or class 0 (unknown)")
    return nearest(ids, shape)
