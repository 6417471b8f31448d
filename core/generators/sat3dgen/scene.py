"""A density volume (Sat3DGen's) -> the scene model: the occupied cells' shells as sparse voxels
(``Scene.solid == "volume"``, so the converter keeps overhangs) and surfels for appearance.

- Occupied: density >= the volume's iso level (upstream's marching-cubes level). The ground is the 10th percentile
  of the columns' top heights (streets and yards are lower than roofs and crowns); the tile
  frame's z = 0 is put there, and the solid is cut FLOOR_VOXELS below it (a flat, hidden base).
  Columns the model left empty down there get a ground slab, so the terrain has no holes.
- Kinds: each voxel column takes its class from ``classes`` (the semantic map, a learned estimate
  or the heuristic); voxels more than GROUND_VOXELS above the ground in building and vegetation
  columns are that object, everything else is the column's ground kind (terrain, road, water).
  In a world window only owned columns (``tile.valid``) may hold objects.
- Appearance: the orthophoto at full resolution on everything seen from above (as the default
  generator does), and the volume's own colour, one surfel per surface voxel, on walls and
  undersides, which no top-down photo sees.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ...arrays import to_u8
from ...inputs.resample import nearest
from ...scene import SparseVoxels, Splats, quaternions_from_frames
from ...schemes import ClassScheme, SurfaceKind
from ...tile import Tile
from ..default.surfels import SIGMA, TopSurface, top_surfels
from .volume import Volume

FLOOR_VOXELS = 4     # the solid's base, this many voxels below the ground
GROUND_VOXELS = 3    # object voxels start this far above the ground (lower: the ground under them)
GROUND_PERCENTILE = 10
STEP_VOXELS = 2      # a jump between neighbouring column tops above this is a wall, not a slope
SIDE_NZ = 0.7        # surface voxels with |normal z| below this (or facing down) show volume colour
_GROUND_KINDS = (SurfaceKind.TERRAIN, SurfaceKind.ROAD, SurfaceKind.WATER, SurfaceKind.OTHER)
_SIX = ndimage.generate_binary_structure(3, 1)


def volume_scene_parts(tile: Tile, volume: Volume, classes: np.ndarray) -> tuple[SparseVoxels, Splats]:
    """Shell voxels and surfels of the volume, in the tile frame. ``classes``: (H, W) class ids of the
    tile's scheme on its analysis grid (row 0 north). The volume's x/y extent is the tile's."""
    occupied, ground_k = _occupancy(volume.density, volume.iso)
    size = volume.voxel_size
    nx, ny, _ = occupied.shape
    column_class = nearest(classes, (ny, nx))[::-1].T  # (nx, ny): i east, j north
    owned = nearest(tile.valid, (ny, nx))[::-1].T
    kind = _kinds(occupied, column_class, owned, ground_k, tile.scheme)
    origin = np.array([-nx * size / 2, -ny * size / 2, -(ground_k + 1) * size])
    coords = np.argwhere(_shell(kind)).astype(np.int32)
    at = tuple(coords.T)
    voxels = SparseVoxels(coords=coords, size=size, origin=origin, colour=to_u8(volume.colour[at]),
                          class_id=_voxel_class(kind[at], column_class[at[:2]], tile.scheme), kind=kind[at],
                          normal=_normals_at(volume.density, coords))
    exposed = occupied[at] & ~ndimage.binary_erosion(occupied, _SIX, border_value=0)[at]
    tops = _top_splats(tile, kind, column_class, origin[2], size)
    return voxels, Splats.concat([tops, _side_splats(voxels, exposed)])


def heights_above_ground(volume: Volume) -> np.ndarray:
    """(ny, nx) float32 metres from the ground to the top of each column (row 0 north): the volume's
    own nDSM, for classifying land cover when nothing else says what is where."""
    occupied, ground_k = _occupancy(volume.density, volume.iso)
    return _north_up(((_column_tops(occupied) - ground_k) * volume.voxel_size).astype(np.float32))


def _north_up(a: np.ndarray) -> np.ndarray:
    """(nx, ny, ...) volume columns -> (ny, nx, ...) raster, row 0 north."""
    return np.ascontiguousarray(a.swapaxes(0, 1)[::-1])


def _column_tops(occupied: np.ndarray) -> np.ndarray:
    """(nx, ny) z index of each column's highest occupied cell (nz - 1 where the column is empty)."""
    return occupied.shape[2] - 1 - np.argmax(occupied[..., ::-1], -1)


def _occupancy(density: np.ndarray, iso: float) -> tuple[np.ndarray, int]:
    """(occupied cells cut at the floor, with ground slabs where empty; ground level index)."""
    occupied = density >= iso
    filled = occupied.any(-1)
    top = np.where(filled, _column_tops(occupied), 0)
    ground_k = int(np.percentile(top[filled], GROUND_PERCENTILE)) if filled.any() else FLOOR_VOXELS
    floor = max(ground_k - FLOOR_VOXELS, 0)
    occupied[..., :floor] = False
    bare = ~occupied[..., floor:ground_k + 1].any(-1)
    occupied[..., floor:ground_k + 1] |= bare[..., None]
    return occupied, ground_k


def _kinds(occupied: np.ndarray, column_class: np.ndarray, owned: np.ndarray, ground_k: int,
           scheme: ClassScheme) -> np.ndarray:
    """(nx, ny, nz) uint8 SurfaceKind of every occupied cell, 0 where empty."""
    column_kind = scheme.kind_lut()[column_class]
    is_object = np.isin(column_kind, (SurfaceKind.BUILDING, SurfaceKind.VEGETATION)) & owned
    ground_kind = np.where(is_object | ~np.isin(column_kind, _GROUND_KINDS), SurfaceKind.TERRAIN, column_kind)
    above = np.arange(occupied.shape[2]) > ground_k + GROUND_VOXELS
    kind = np.where(is_object[..., None] & above, column_kind[..., None], ground_kind[..., None])
    return np.where(occupied, kind, 0).astype(np.uint8)


def _voxel_class(kind: np.ndarray, column_class: np.ndarray, scheme: ClassScheme) -> np.ndarray:
    """The column's class where the cell is of the column's kind, else the kind's canonical class."""
    canonical = np.zeros(256, np.uint8)
    for k in SurfaceKind:
        if k in scheme.kinds.values():
            canonical[k] = scheme.class_for_kind(k)
    same = scheme.kind_lut()[column_class] == kind
    return np.where(same, column_class, canonical[kind]).astype(np.uint8)


def _shell(kind: np.ndarray) -> np.ndarray:
    """Cells of a kind with at least one of their six neighbours not of that kind (or outside)."""
    shell = np.zeros(kind.shape, bool)
    for k in np.unique(kind[kind > 0]):
        solid = kind == k
        shell |= solid & ~ndimage.binary_erosion(solid, _SIX, border_value=0)
    return shell


def _normals_at(density: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """(N, 3) float32 unit outward normals at cells ``coords``: down the smoothed density's gradient,
    by central differences (one-sided at the grid's faces, as np.gradient takes them), computed only
    where asked instead of as three more volumes."""
    smooth = ndimage.gaussian_filter(density.astype(np.float32), 1.0)
    n = -np.stack([_gradient_at(smooth, coords, axis) for axis in range(3)], -1)
    length = np.linalg.norm(n, axis=-1, keepdims=True)
    return np.where(length > 1e-9, n / np.maximum(length, 1e-9), [0, 0, 1]).astype(np.float32)


def _gradient_at(field: np.ndarray, coords: np.ndarray, axis: int) -> np.ndarray:
    """d field / d axis at ``coords`` (cell units): (f[i+1] - f[i-1]) / 2 inside, one-sided at the ends."""
    last = field.shape[axis] - 1
    i = coords[:, axis]
    lo, hi = np.maximum(i - 1, 0), np.minimum(i + 1, last)
    at = lambda index: field[tuple(index if a == axis else coords[:, a] for a in range(3))]
    return (at(hi) - at(lo)) / np.where((i == 0) | (i == last), np.float32(1), np.float32(2))


def _column_normals(z: np.ndarray, size: float) -> np.ndarray:
    """(nx, ny, 3) normals of the top height field; a step of more than STEP_VOXELS (a wall) is no
    slope, so roof edges keep flat surfels."""
    def slope(axis: int) -> np.ndarray:
        lo, hi = (np.roll(z, shift, axis) for shift in (1, -1))
        d = (hi - lo) / (2 * size)
        return np.where(np.abs(hi - lo) > STEP_VOXELS * size, 0.0, d)

    n = np.stack([-slope(0), -slope(1), np.ones_like(z)], -1)
    return (n / np.linalg.norm(n, axis=-1, keepdims=True)).astype(np.float32)


def _top_splats(tile: Tile, kind: np.ndarray, column_class: np.ndarray, z0: float, size: float) -> Splats:
    """The orthophoto on the highest surface of every column, one surfel per photo pixel."""
    k_top = _column_tops(kind > 0)
    top_kind = np.take_along_axis(kind, k_top[..., None], -1)[..., 0]
    z = z0 + (k_top + 1) * size
    top = TopSurface(z=_north_up(z).astype(np.float32), kind=_north_up(top_kind),
                     class_id=_north_up(_voxel_class(top_kind, column_class, tile.scheme)),
                     normal=_north_up(_column_normals(z, size)), gsd=size)
    return top_surfels(top, tile.rgb, tile.image_valid)


def _side_splats(voxels: SparseVoxels, exposed: np.ndarray) -> Splats:
    """The volume's colour on exposed cells that face sideways or down: one surfel on the cell's
    outer face."""
    sel = exposed & (voxels.normal[:, 2] < SIDE_NZ)
    normal = voxels.normal[sel]
    helper = np.where(np.abs(normal[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    u = np.cross(helper, normal)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    n = int(sel.sum())
    return Splats(position=(voxels.centres()[sel] + normal * voxels.size / 2).astype(np.float32),
                  rotation=quaternions_from_frames(u, np.cross(normal, u), normal),
                  scale=np.full((n, 2), SIGMA * voxels.size, np.float32), opacity=np.ones(n, np.float32),
                  colour=voxels.colour[sel].astype(np.float32) / 255, class_id=voxels.class_id[sel],
                  kind=voxels.kind[sel])
