"""Resampling between grids that cover the same extent (pixel centres map onto pixel centres)."""
from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage


def _centres(n_out: int, n_in: int) -> np.ndarray:
    """Source coordinates (in pixels) of the output pixel centres along one axis."""
    return (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5


def nearest(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour: for class ids and masks, which must never be blended."""
    if a.shape[:2] == shape:
        return a
    rows = np.clip(np.round(_centres(shape[0], a.shape[0])), 0, a.shape[0] - 1).astype(np.intp)
    cols = np.clip(np.round(_centres(shape[1], a.shape[1])), 0, a.shape[1] - 1).astype(np.intp)
    return a[np.ix_(rows, cols)]


def area_mean(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) float values averaged over the output pixels' areas (box filter): for heights and
    colours going onto a coarser grid."""
    img = Image.fromarray(a.astype(np.float32), mode="F")
    return np.asarray(img.resize((shape[1], shape[0]), Image.BOX), np.float32)


def bilinear_nan(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear interpolation that ignores NaN neighbours (normalised by the valid weight).

    A pixel stays NaN when less than half of its interpolation weight falls on valid data, so
    no-data areas keep their outline instead of growing or shrinking by a pixel.
    """
    if a.shape == shape:
        return a.astype(np.float32)
    rr, cc = np.meshgrid(_centres(shape[0], a.shape[0]), _centres(shape[1], a.shape[1]), indexing="ij")
    valid = np.isfinite(a)
    weight = ndimage.map_coordinates(valid.astype(np.float32), [rr, cc], order=1, mode="nearest")
    total = ndimage.map_coordinates(np.where(valid, a, 0).astype(np.float32), [rr, cc], order=1,
                                    mode="nearest")
    out = np.full(shape, np.nan, np.float32)
    ok = weight >= 0.5
    out[ok] = total[ok] / weight[ok]
    return out
