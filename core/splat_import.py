"""A Gaussian-splat scene (``inputs.splat_ply``) -> a Scene the converter meshes like any other.

1. **Placement.** ``Placement.up`` names the file's up axis (+z, -y, ...), ``metres_per_unit`` its
   scale; the scene is then centred on its footprint. ``georef`` (CRS, X, Y, Z of the file's origin)
   makes the tile georeferenced: its centre is the origin plus the centring offset.
2. **Clip** (optional): splats under MIN_OPACITY, and splats with fewer than MIN_NEIGHBOURS others
   within FLOATER_RADIUS_M (floaters), are dropped; the report says how many.
3. **Structure.** Splat centres (and points across each splat's disc) occupy a voxel grid of
   about twice the splat spacing. Per voxel column, the ground is the lowest occupied voxel after a
   grey opening of GROUND_WINDOW_M (buildings and trees are narrower than that); columns whose top
   stands more than OBJECT_M above it hold an object: a building, or vegetation where the splats
   there are mostly green. Each kind becomes one run of voxels per column (the column model), so
   the converter's walls, roofs and canopies follow; columns where occupied voxels leave a gap of
   more than GAP_M under the top (overhangs, bridges) are counted: the mesh keeps their top.
4. **Appearance.** The splats themselves, each given the kind of its column and height, are the
   scene's surfels: the bake evaluates them on roofs and walls alike.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .errors import InputError
from .georef import Georeference
from .inputs.splat_ply import SplatCloud
from .scene import Scene, SparseVoxels, Splats, quaternions_from_frames
from .schemes import OPENEARTHMAP_CLASS_FOR_KIND, SurfaceKind

MIN_OPACITY, FLOATER_RADIUS_M, MIN_NEIGHBOURS = 0.05, 1.0, 3
GROUND_WINDOW_M, OBJECT_M, GAP_M = 30.0, 1.5, 2.0
BASE_M = 1.0  # solids reach this far under the ground (the terrain's hidden underside, walls' feet)
UP_AXES = {"+z": (2, 1), "-z": (2, -1), "+y": (1, 1), "-y": (1, -1), "+x": (0, 1), "-x": (0, -1)}


@dataclass(frozen=True)
class Placement:
    up: str = "+z"
    metres_per_unit: float = 1.0
    georef: tuple[str, float, float, float] | None = None  # CRS, X, Y, Z of the file's origin
    clip: bool = False


def parse_georef(text: str) -> tuple[str, float, float, float]:
    """``CRS:X,Y[,Z]`` (the CRS may hold colons: EPSG:25832:500000,5700000)."""
    crs, _, numbers = text.rpartition(":")
    try:
        values = [float(v) for v in numbers.split(",")]
    except ValueError:
        values = []
    if not crs or len(values) not in (2, 3) or not all(np.isfinite(values)):
        raise InputError("--georef", f"cannot read {text!r}", "write CRS:X,Y[,Z], e.g. EPSG:25832:500000,5700000,40")
    return crs, values[0], values[1], values[2] if len(values) == 3 else 0.0


def placement_beside(ply: Path) -> tuple[str, float, float, float] | None:
    """The georeference in ``NAME.geo.json`` beside ``NAME.ply``: {"crs": "EPSG:...", "origin": [X, Y, Z]}
    (where the file's origin is), or None when there is no such file."""
    sidecar = ply.with_suffix(".geo.json")
    if not sidecar.is_file():
        return None
    try:
        data = json.loads(sidecar.read_text())
        x, y, *z = (float(v) for v in data["origin"])
        return str(data["crs"]), x, y, z[0] if z else 0.0
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(sidecar, "not a splat georeference", 'write {"crs": "EPSG:25832", "origin": [X, Y, Z]}') \
            from None


def check_placement(placement: Placement) -> None:
    if placement.up not in UP_AXES:
        raise InputError("--up", f"{placement.up!r}", f"use one of {', '.join(UP_AXES)}")
    if not (np.isfinite(placement.metres_per_unit) and 1e-6 <= placement.metres_per_unit <= 1e6):
        raise InputError("--scale", f"{placement.metres_per_unit} metres per unit", "use a positive number")


def splat_scene(cloud: SplatCloud, placement: Placement, source: str) -> tuple[Scene, dict]:
    """(the scene in the tile frame, what the import did: counts of clipped splats and overhangs)."""
    check_placement(placement)
    rotation = _up_rotation(placement.up)
    position = cloud.position @ (rotation * placement.metres_per_unit).T
    frames = np.einsum("ij,mjk->mik", rotation, cloud.frames)
    scale = cloud.scale * placement.metres_per_unit
    keep, report = _clip(position, cloud.opacity) if placement.clip else (np.ones(len(position), bool), {})
    if not keep.any():
        raise InputError(source, "every splat was clipped as a floater", "convert without --clip")
    position, frames, scale = position[keep], frames[keep], scale[keep]
    colour, opacity = cloud.colour[keep], cloud.opacity[keep]
    lo, hi = position.min(0), position.max(0)
    centre = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, 0.0])
    position = position - centre
    spacing = _spacing(position)
    voxels, kind, stats = _structure(position, colour, spacing)
    report.update(stats)
    splats = Splats(position=position.astype(np.float32),
                    rotation=quaternions_from_frames(frames[:, :, 0], frames[:, :, 1], frames[:, :, 2]),
                    scale=scale.astype(np.float32), opacity=opacity, colour=colour,
                    class_id=_class_of(kind), kind=kind,
                    sh1=None if cloud.sh1 is None else _rotate_sh1(cloud.sh1[keep], rotation))
    georef = _georef(placement, centre, hi - lo, voxels.size, source)
    provenance = {"splats": f"{cloud.layout}, SH degree {cloud.sh_degree}, {int(keep.sum())} splats",
                  "classes": "heuristic: height above the opened ground and colour (core/splat_import.py)"}
    return Scene(voxels=voxels, splats=splats, georef=georef, scheme="openearthmap", generator="splat-import/1.0",
                 seed=0, image_gsd=spacing, provenance=provenance), report


def _up_rotation(up: str) -> np.ndarray:
    """The rotation taking the file's up axis to +z (right-handed, x kept where it can be)."""
    axis, sign = UP_AXES[up]
    if axis == 2:
        return np.diag([1.0, sign, sign])
    if axis == 1:  # y up: (x, y, z) -> (x, -z, y) for +y
        return np.array([[1.0, 0, 0], [0, 0, -sign], [0, sign, 0]])
    return np.array([[0, 0, -sign], [0, 1.0, 0], [sign, 0, 0]])  # x up: (x, y, z) -> (-z, y, x) for +x


def _rotate_sh1(sh1: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Degree-1 SH coefficients (basis, channel) after rotating the scene. The basis is
    (-y, z, -x) times a constant, so a channel's coefficients a are the gradient g = (-a2, -a0, a1)
    of a linear function of the view direction, and g turns with the scene: g' = R g."""
    g = np.stack([-sh1[:, 2], -sh1[:, 0], sh1[:, 1]], 1)           # (M, 3 xyz, 3 channels)
    g = np.einsum("ij,mjc->mic", rotation, g)
    return np.stack([-g[:, 1], g[:, 2], -g[:, 0]], 1).astype(np.float32)


def _clip(position: np.ndarray, opacity: np.ndarray) -> tuple[np.ndarray, dict]:
    faint = opacity < MIN_OPACITY
    counts = cKDTree(position).query_ball_point(position, FLOATER_RADIUS_M, return_length=True)
    isolated = (counts - 1) < MIN_NEIGHBOURS
    keep = ~faint & ~isolated
    return keep, {"clipped": {"faint": int(faint.sum()), "isolated": int((isolated & ~faint).sum()),
                              "kept": int(keep.sum())}}


def _spacing(position: np.ndarray) -> float:
    """Median distance between neighbouring splat centres, metres (at least 1 cm)."""
    sample = position[:: max(1, len(position) // 20000)]
    distance, _ = cKDTree(position).query(sample, k=2)
    return max(float(np.median(distance[:, 1])), 0.01)


def _structure(position: np.ndarray, colour: np.ndarray, spacing: float) -> tuple[SparseVoxels, np.ndarray, dict]:
    """Column-model voxels of terrain and objects, each splat's kind, and the overhang count."""
    size = float(np.clip(2 * spacing, 0.1, 2.0))
    origin = np.floor(position.min(0) / size) * size
    ijk = np.floor((position - origin) / size).astype(np.int64)
    shape = tuple(int(v) for v in ijk[:, :2].max(0) + 1)
    flat = ijk[:, 0] * shape[1] + ijk[:, 1]
    low = np.full(shape[0] * shape[1], np.iinfo(np.int64).max)
    high = np.full(shape[0] * shape[1], -1)
    np.minimum.at(low, flat, ijk[:, 2])
    np.maximum.at(high, flat, ijk[:, 2])
    seen = (high >= 0).reshape(shape)
    window = max(3, int(GROUND_WINDOW_M / size) | 1)
    lowest = np.where(seen, low.reshape(shape), np.iinfo(np.int32).max).astype(np.float64)
    ground = ndimage.grey_opening(_fill(lowest, seen), size=(window, window))
    top = high.reshape(shape)
    obj = seen & (top - ground > OBJECT_M / size)
    green = _green_share(flat, colour, shape) > 0.5
    object_kind = np.where(green, SurfaceKind.VEGETATION, SurfaceKind.BUILDING)
    # Splats: the kind of their column when above the ground band, else terrain.
    col_ground = ground.ravel()[flat]
    above = obj.ravel()[flat] & (ijk[:, 2] - col_ground > OBJECT_M / size / 2)
    kind = np.where(above, object_kind.ravel()[flat], SurfaceKind.TERRAIN).astype(np.uint8)
    gaps = _gap_columns(flat, ijk[:, 2], top.ravel(), obj.ravel(), size)
    voxels = _column_voxels(seen, obj, ground.astype(np.int64), top, object_kind, size, origin, flat, colour)
    overhangs = {"columns": int(gaps), "share_of_objects": round(gaps / max(int(obj.sum()), 1), 4),
                 "kept": "the top surface of each column"}
    return voxels, kind, {"overhangs": overhangs, "voxel_size_m": size}


def _fill(values: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Unseen columns take the nearest seen column's value."""
    near = ndimage.distance_transform_edt(~seen, return_distances=False, return_indices=True)
    return values[near[0], near[1]]


def _green_share(flat: np.ndarray, colour: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    r, g, b = colour.T
    green = ((g > r * 1.08) & (g > b * 1.08)).astype(np.float64)
    n = shape[0] * shape[1]
    count = np.bincount(flat, minlength=n)
    return (np.bincount(flat, green, minlength=n) / np.maximum(count, 1)).reshape(shape)


def _gap_columns(flat: np.ndarray, k: np.ndarray, top: np.ndarray, obj: np.ndarray, size: float) -> int:
    """Object columns with occupied voxels under a gap of more than GAP_M below their top."""
    levels = int(top.max()) + 2
    occupied = np.unique(flat * levels + k)
    column, level = occupied // levels, occupied % levels
    step = np.diff(level)
    same = column[1:] == column[:-1]
    gap_cols = np.unique(column[1:][same & (step > GAP_M / size)])
    return int(obj[gap_cols].sum())


def _column_voxels(seen, obj, ground, top, object_kind, size, origin, flat, colour) -> SparseVoxels:
    """The voxels the column model reads: per seen column terrain at the ground and BASE_M under it
    (a solid slab: an underside on the ground itself would fight with the top), per object column
    its kind from BASE_M under the ground (walls reach into the terrain) up to its top."""
    n = seen.size
    mean = np.stack([np.bincount(flat, colour[:, c], minlength=n) for c in range(3)], 1) / \
        np.maximum(np.bincount(flat, minlength=n), 1)[:, None]
    below = max(1, int(np.ceil(BASE_M / size)))
    i, j = np.nonzero(seen)
    oi, oj = np.nonzero(obj)
    coords = np.concatenate([np.stack([i, j, ground[i, j]], 1), np.stack([i, j, ground[i, j] - below], 1),
                             np.stack([oi, oj, ground[oi, oj] - below], 1),
                             np.stack([oi, oj, top[oi, oj]], 1)]).astype(np.int32)
    kinds = np.concatenate([np.full(2 * len(i), SurfaceKind.TERRAIN),
                            np.tile(object_kind[oi, oj], 2)]).astype(np.uint8)
    cells = np.concatenate([np.tile(i * seen.shape[1] + j, 2), np.tile(oi * seen.shape[1] + oj, 2)])
    normal = np.zeros((len(coords), 3), np.float32)
    normal[:, 2] = 1
    return SparseVoxels(coords=coords, size=size, origin=origin.astype(np.float64),
                        colour=np.clip(mean[cells] * 255 + 0.5, 0, 255).astype(np.uint8),
                        class_id=_class_of(kinds), kind=kinds, normal=normal)


def _class_of(kind: np.ndarray) -> np.ndarray:
    lut = np.zeros(256, np.uint8)
    for k, cid in OPENEARTHMAP_CLASS_FOR_KIND.items():
        lut[int(k)] = cid
    return lut[kind]


def _georef(placement: Placement, centre: np.ndarray, extent: np.ndarray, gsd: float, source: str) -> Georeference:
    if placement.georef is None:
        return Georeference(crs=None, easting=0.0, northing=0.0, elevation=0.0, width_m=float(extent[0]),
                            height_m=float(extent[1]), gsd=gsd, source=f"{source} (no georeference)")
    crs, x, y, z = placement.georef
    return Georeference(crs=crs, easting=x + float(centre[0]), northing=y + float(centre[1]), elevation=z,
                        width_m=float(extent[0]), height_m=float(extent[1]), gsd=gsd, source=f"{source} (--georef)")
