"""Shell voxels + top splats -> per-kind columns on the 2D voxel-column grid.

Arrays are indexed ``[i, j]`` like the voxel coordinates: i east (x), j north (y). Column (i, j)
covers x in [x0 + i*size, x0 + (i+1)*size), y in [y0 + j*size, y0 + (j+1)*size).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..scene import Scene, Splats
from ..schemes import MESHED_KINDS, SurfaceKind

UP = 0.5  # a splat whose normal has z above this lies on a top surface


@dataclass
class Columns:
    """One surface kind's solid as vertical columns [bottom, top] on the column grid."""

    kind: SurfaceKind
    mask: np.ndarray      # (nx, ny) bool
    top: np.ndarray       # (nx, ny) float64 tile-frame z; 0 outside the mask
    bottom: np.ndarray    # (nx, ny) float64
    class_id: np.ndarray  # (nx, ny) uint8 class of the kind's top voxel
    measured: np.ndarray  # (nx, ny) bool: top came from splats, not from the voxel top


@dataclass
class ColumnGrid:
    x0: float             # tile-frame x of the grid's west edge
    y0: float             # tile-frame y of the grid's south edge
    size: float           # column width, metres (the voxel size)
    kinds: dict[SurfaceKind, Columns]


def scene_columns(scene: Scene) -> ColumnGrid:
    """Per-kind columns of every meshed kind present; OTHER counts as TERRAIN."""
    vox = scene.voxels
    lo = vox.coords[:, :2].min(0) if len(vox) else np.zeros(2, np.int64)
    shape = tuple(int(n) for n in vox.coords[:, :2].max(0) - lo + 1) if len(vox) else (0, 0)
    x0, y0 = (vox.origin[:2] + lo * vox.size).tolist()
    kinds = _fold_other(vox.kind)
    splat_kinds = _fold_other(scene.splats.kind)
    cells = _cell_index(vox.coords[:, :2] - lo, shape)
    splat_cells = _splat_cells(scene.splats, x0, y0, vox.size, shape)
    out: dict[SurfaceKind, Columns] = {}
    for kind in MESHED_KINDS:
        sel = kinds == kind
        if sel.any():
            on = splat_kinds == kind
            out[kind] = _kind_columns(kind, shape, cells[sel], vox.coords[sel, 2], vox.class_id[sel],
                                      vox.origin[2], vox.size, splat_cells[on], scene.splats.position[on, 2])
    if SurfaceKind.TERRAIN in out:
        out[SurfaceKind.TERRAIN] = _ground_everywhere(out, cells, shape)
    return ColumnGrid(x0=x0, y0=y0, size=float(vox.size), kinds=out)


def _fold_other(kind: np.ndarray) -> np.ndarray:
    return np.where(kind == SurfaceKind.OTHER, np.uint8(SurfaceKind.TERRAIN), kind)


def _cell_index(ij: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return ij[:, 0].astype(np.int64) * shape[1] + ij[:, 1]


def splat_normal_z(splats: Splats) -> np.ndarray:
    """z of each splat's normal; equals ``splats.frames()[:, 2, 2]`` without the (M, 3, 3) array."""
    x, y = splats.rotation[:, 1], splats.rotation[:, 2]
    return 1 - 2 * (x * x + y * y)


def _splat_cells(splats: Splats, x0: float, y0: float, size: float, shape: tuple[int, int]) -> np.ndarray:
    """Flat column index of each up-facing splat; -1 for splats off the grid or not facing up."""
    i = np.floor((splats.position[:, 0] - x0) / size).astype(np.int64)
    j = np.floor((splats.position[:, 1] - y0) / size).astype(np.int64)
    ok = (i >= 0) & (i < shape[0]) & (j >= 0) & (j < shape[1]) & (splat_normal_z(splats) > UP)
    return np.where(ok, i * shape[1] + j, -1)


def _kind_columns(kind: SurfaceKind, shape: tuple[int, int], cells: np.ndarray, k: np.ndarray,
                  class_id: np.ndarray, z0: float, size: float, splat_cells: np.ndarray,
                  splat_z: np.ndarray) -> Columns:
    n = shape[0] * shape[1]
    k_max = np.full(n, np.iinfo(np.int32).min, np.int64)
    k_min = np.full(n, np.iinfo(np.int32).max, np.int64)
    np.maximum.at(k_max, cells, k)
    np.minimum.at(k_min, cells, k)
    mask = k_max >= k_min
    cls = np.zeros(n, np.uint8)
    top_voxel = k == k_max[cells]
    np.maximum.at(cls, cells[top_voxel], class_id[top_voxel])
    # Splats carry the exact surface height; the voxel top is only a fallback.
    ok = splat_cells >= 0
    z_sum = np.bincount(splat_cells[ok], splat_z[ok].astype(np.float64), minlength=n)
    count = np.bincount(splat_cells[ok], minlength=n)
    voxel_top = z0 + (k_max + 1) * size
    top = np.where(count > 0, z_sum / np.maximum(count, 1), voxel_top)
    bottom = z0 + k_min * size
    return Columns(kind, mask.reshape(shape), np.where(mask, top, 0.0).reshape(shape),
                   np.where(mask, bottom, 0.0).reshape(shape), cls.reshape(shape),
                   (mask & (count > 0)).reshape(shape))


def _ground_everywhere(out: dict[SurfaceKind, Columns], cells: np.ndarray, shape: tuple[int, int]) -> Columns:
    """Terrain under every column that has any voxel, so simplified-away kinds still show ground.

    Where terrain has no splat of its own (under roofs, slabs, canopies) its height is the nearest
    splat-measured ground, never above its own voxels and never above a road or water slab's bottom,
    so it cannot poke through them.
    """
    ter = out[SurfaceKind.TERRAIN]
    mask = np.zeros(shape[0] * shape[1], bool)
    mask[cells] = True
    mask = mask.reshape(shape)
    source = ter.measured if ter.measured.any() else ter.mask
    near = ndimage.distance_transform_edt(~source, return_distances=False, return_indices=True)
    top = ter.top[near[0], near[1]]
    top = np.where(ter.measured, ter.top, np.where(ter.mask, np.minimum(top, ter.top), top))
    for kind in (SurfaceKind.ROAD, SurfaceKind.WATER):
        if kind in out:
            top = np.where(out[kind].mask, np.minimum(top, out[kind].bottom), top)
    # One flat base: it is hidden, and a flat bottom costs almost no triangles.
    bottom = np.full(shape, ter.bottom[ter.mask].min())
    cls = np.where(ter.mask, ter.class_id, ter.class_id[near[0], near[1]])
    return Columns(SurfaceKind.TERRAIN, mask, np.where(mask, top, 0.0), np.where(mask, bottom, 0.0),
                   np.where(mask, cls, 0).astype(np.uint8), mask & ter.measured)
