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
SLAB_CLEARANCE = 0.05  # ground under a road or water slab stays this far below the slab's top


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
    if not len(vox):
        return ColumnGrid(x0=0.0, y0=0.0, size=float(vox.size), kinds={})
    lo = vox.coords[:, :2].min(0)
    shape = tuple(int(n) for n in vox.coords[:, :2].max(0) - lo + 1)
    x0, y0 = (vox.origin[:2] + lo * vox.size).tolist()
    n = shape[0] * shape[1]
    cells = (vox.coords[:, 0] - lo[0]).astype(np.int64) * shape[1] + (vox.coords[:, 1] - lo[1])
    span = _voxel_spans(_fold_other(vox.kind).astype(np.int64) * n + cells, vox.coords[:, 2], vox.class_id)
    tops = _splat_tops(scene.splats, x0, y0, vox.size, shape)
    out: dict[SurfaceKind, Columns] = {}
    for kind in MESHED_KINDS:
        sel = span["group"] // n == kind
        if sel.any():
            out[kind] = _kind_columns(kind, shape, {k: v[sel] for k, v in span.items()}, tops[kind],
                                      vox.origin[2], vox.size)
    if SurfaceKind.TERRAIN in out:
        out[SurfaceKind.TERRAIN] = _ground_everywhere(out, cells, shape)
    return ColumnGrid(x0=x0, y0=y0, size=float(vox.size), kinds=out)


def _fold_other(kind: np.ndarray) -> np.ndarray:
    return np.where(kind == SurfaceKind.OTHER, np.uint8(SurfaceKind.TERRAIN), kind)


def _voxel_spans(group: np.ndarray, k: np.ndarray, class_id: np.ndarray) -> dict[str, np.ndarray]:
    """Per (kind, column) group: lowest and highest voxel k, and the class of the highest.

    One sort of (group, k, class) packed into an int64 instead of several ufunc.at passes.
    """
    k_low = int(k.min(initial=0))
    k = k.astype(np.int64) - k_low
    levels = int(k.max(initial=0)) + 1
    key = np.sort((group * levels + k) * 256 + class_id)
    column = key // 256 // levels
    head = np.flatnonzero(np.r_[True, column[1:] != column[:-1]])
    tail = np.r_[head[1:], len(key)] - 1
    return {"group": column[head], "k_min": key[head] // 256 % levels + k_low,
            "k_max": key[tail] // 256 % levels + k_low, "class_id": (key[tail] % 256).astype(np.uint8)}


def splat_normal_z(splats: Splats) -> np.ndarray:
    """z of each splat's normal; equals ``splats.frames()[:, 2, 2]`` without the (M, 3, 3) array."""
    x, y = splats.rotation[:, 1], splats.rotation[:, 2]
    return 1 - 2 * (x * x + y * y)


def _splat_tops(splats: Splats, x0: float, y0: float, size: float,
                shape: tuple[int, int]) -> dict[SurfaceKind, tuple[np.ndarray, np.ndarray]]:
    """Per kind, (sum of z, count) of its up-facing splats in each column (flat index)."""
    n = shape[0] * shape[1]
    i = np.floor((splats.position[:, 0] - x0) / size).astype(np.int64)
    j = np.floor((splats.position[:, 1] - y0) / size).astype(np.int64)
    ok = (i >= 0) & (i < shape[0]) & (j >= 0) & (j < shape[1]) & (splat_normal_z(splats) > UP)
    group = (_fold_other(splats.kind[ok]).astype(np.int64) * shape[0] + i[ok]) * shape[1] + j[ok]
    size_all = (max(SurfaceKind) + 1) * n
    z_sum = np.bincount(group, splats.position[ok, 2].astype(np.float64), minlength=size_all)
    count = np.bincount(group, minlength=size_all)
    return {kind: (z_sum[kind * n:(kind + 1) * n], count[kind * n:(kind + 1) * n]) for kind in MESHED_KINDS}


def _kind_columns(kind: SurfaceKind, shape: tuple[int, int], span: dict[str, np.ndarray],
                  splat_top: tuple[np.ndarray, np.ndarray], z0: float, size: float) -> Columns:
    n = shape[0] * shape[1]
    cell = span["group"] % n
    mask = np.zeros(n, bool)
    mask[cell] = True
    bottom = np.zeros(n)
    bottom[cell] = z0 + span["k_min"] * size
    voxel_top = np.zeros(n)
    voxel_top[cell] = z0 + (span["k_max"] + 1) * size
    cls = np.zeros(n, np.uint8)
    cls[cell] = span["class_id"]
    # Splats carry the exact surface height; the voxel top is only a fallback.
    z_sum, count = splat_top
    measured = mask & (count > 0)
    top = np.where(measured, z_sum / np.maximum(count, 1), voxel_top)  # 0 off the mask
    return Columns(kind, mask.reshape(shape), top.reshape(shape), bottom.reshape(shape), cls.reshape(shape),
                   measured.reshape(shape))


def _ground_everywhere(out: dict[SurfaceKind, Columns], cells: np.ndarray, shape: tuple[int, int]) -> Columns:
    """Terrain under every column that has any voxel, so simplified-away kinds still show ground.

    Where terrain has no splat of its own (under roofs, slabs, canopies) its height is the nearest
    splat-measured ground, never above its own voxels and kept under road and water slabs.
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
            top = np.where(out[kind].mask, np.minimum(top, out[kind].top - SLAB_CLEARANCE), top)
    # One flat base: it is hidden, and a flat bottom costs almost no triangles.
    bottom = np.full(shape, ter.bottom[ter.mask].min())
    cls = np.where(ter.mask, ter.class_id, ter.class_id[near[0], near[1]])
    return Columns(SurfaceKind.TERRAIN, mask, np.where(mask, top, 0.0), np.where(mask, bottom, 0.0),
                   np.where(mask, cls, 0).astype(np.uint8), mask & ter.measured)
