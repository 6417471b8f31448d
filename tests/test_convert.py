"""Scene -> watertight per-kind meshes (core/convert).

The scenes here are synthesised: a few column layers (kind, footprint, top, bottom, class) are
turned into shell voxels plus up-facing top splats the way core/scene.py defines them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from satforge.core.georef import Georeference
from satforge.core.scene import Scene, SparseVoxels, Splats, quaternions_from_frames
from satforge.core.schemes import SurfaceKind

K = SurfaceKind
# earthcrafter25 ids
GRASS, WOODLAND, BUILDING, ROAD, WATER, VEHICLE = 3, 2, 4, 5, 8, 17


@dataclass
class Layer:
    kind: SurfaceKind
    mask: np.ndarray   # (nx, ny) bool, [i, j] = column i east, j north
    top: np.ndarray    # (nx, ny) float
    bottom: np.ndarray  # (nx, ny) float
    class_id: int


def grid_xy(nx: int, ny: int, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Column-centre coordinates, tile centred on the origin."""
    x = (np.arange(nx) + 0.5) * size - nx * size / 2
    y = (np.arange(ny) + 0.5) * size - ny * size / 2
    return np.meshgrid(x, y, indexing="ij")


def make_scene(layers: list[Layer], size: float, tilt: np.ndarray | None = None) -> Scene:
    """Shell voxels of every layer + 2x2 up-facing splats per column on the layer seen from above.

    Building walls also get splats with horizontal normals, which the converter must ignore.
    ``tilt`` (nx, ny, 3) optional top-surface normals (tree crowns).
    """
    nx, ny = layers[0].mask.shape
    base = np.floor(min(float(la.bottom[la.mask].min()) for la in layers) / size) * size
    origin = np.array([-nx * size / 2, -ny * size / 2, base])
    shells = [_shell(la, size, base) for la in layers]
    n = sum(len(c) for c in shells)
    voxels = SparseVoxels(
        coords=np.concatenate(shells).astype(np.int32), size=size, origin=origin,
        colour=np.full((n, 3), 128, np.uint8), normal=np.tile(np.float32([0, 0, 1]), (n, 1)),
        class_id=np.concatenate([np.full(len(c), la.class_id, np.uint8) for c, la in zip(shells, layers)]),
        kind=np.concatenate([np.full(len(c), int(la.kind), np.uint8) for c, la in zip(shells, layers)]))
    splats = Splats.concat([_top_splats(layers, size, tilt), _wall_splats(layers, size)])
    georef = Georeference(crs=None, easting=0.0, northing=0.0, elevation=0.0, width_m=nx * size,
                          height_m=ny * size, gsd=size)
    return Scene(voxels=voxels, splats=splats, georef=georef, scheme="earthcrafter25",
                 generator="test", seed=0, image_gsd=size / 2)


def _shell(la: Layer, size: float, base: float) -> np.ndarray:
    kb = np.where(la.mask, np.floor((la.bottom - base) / size + 1e-6), 0).astype(np.int64)
    kt = np.where(la.mask, np.maximum(kb, np.ceil((la.top - base) / size - 1e-6) - 1), -1).astype(np.int64)
    pb, pt = np.pad(kb, 1), np.pad(kt, 1, constant_values=-1)
    nx, ny = la.mask.shape
    out = []
    for k in range(int(kb[la.mask].min()), int(kt.max()) + 1):
        exposed = (kb == k) | (kt == k)
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            nb, nt = pb[1 + di:1 + di + nx, 1 + dj:1 + dj + ny], pt[1 + di:1 + di + nx, 1 + dj:1 + dj + ny]
            exposed |= (k < nb) | (k > nt)
        i, j = np.nonzero(exposed & (kb <= k) & (k <= kt))
        out.append(np.stack([i, j, np.full(len(i), k)], -1))
    return np.concatenate(out)


def _splats(pos: np.ndarray, normal: np.ndarray, kind: np.ndarray, cls: np.ndarray) -> Splats:
    helper = np.where(np.abs(normal[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    u = np.cross(helper, normal)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    n = len(pos)
    return Splats(position=pos.astype(np.float32), rotation=quaternions_from_frames(u, np.cross(normal, u), normal),
                  scale=np.full((n, 2), 0.1, np.float32), opacity=np.ones(n, np.float32),
                  colour=np.full((n, 3), 0.5, np.float32), class_id=cls.astype(np.uint8), kind=kind.astype(np.uint8))


def _top_splats(layers: list[Layer], size: float, tilt: np.ndarray | None) -> Splats:
    nx, ny = layers[0].mask.shape
    tops = np.stack([np.where(la.mask, la.top, -np.inf) for la in layers])
    seen = tops.argmax(0)
    x, y = grid_xy(nx, ny, size)
    kind = np.array([int(la.kind) for la in layers])[seen]
    cls = np.array([la.class_id for la in layers])[seen]
    normal = np.broadcast_to([0.0, 0, 1], (nx, ny, 3)) if tilt is None else tilt
    parts = []
    for dx, dy in ((-0.25, -0.25), (0.25, -0.25), (-0.25, 0.25), (0.25, 0.25)):
        pos = np.stack([x + dx * size, y + dy * size, tops.max(0)], -1)
        parts.append(_splats(pos.reshape(-1, 3), normal.reshape(-1, 3), kind.ravel(), cls.ravel()))
    return Splats.concat(parts)


def _wall_splats(layers: list[Layer], size: float) -> Splats:
    nx, ny = layers[0].mask.shape
    x, y = grid_xy(nx, ny, size)
    parts = [_splats(np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0))]
    for la in layers:
        if la.kind != K.BUILDING:
            continue
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            outside = ~np.pad(la.mask, 1)[1 + di:1 + di + nx, 1 + dj:1 + dj + ny]
            i, j = np.nonzero(la.mask & outside)
            pos = np.stack([x[i, j] + di * size / 2, y[i, j] + dj * size / 2, (la.top[i, j] + la.bottom[i, j]) / 2], -1)
            normal = np.tile([float(di), float(dj), 0.0], (len(i), 1))
            parts.append(_splats(pos, normal, np.full(len(i), int(K.BUILDING)), np.full(len(i), BUILDING)))
    return Splats.concat(parts)


SIZE = 0.5
TREE_CENTRE, TREE_RADIUS, TREE_TOP = (12.0, -16.0), 5.0, 8.0
FLAT_ROOF = (-20.0, -8.0, 4.0, 16.0)  # x0, x1, y0, y1; 10 m flat roof
GABLE = (4.0, 18.0, 6.0, 16.0)        # ridge along x at y = 11, 6 m ridge, 3 m eaves


def _box(x: np.ndarray, y: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    return (x >= box[0]) & (x < box[1]) & (y >= box[2]) & (y < box[3])


def gable_height(y: np.ndarray) -> np.ndarray:
    return 6.0 - 3.0 * np.abs(y - 11.0) / 5.0


def town_layers(n: int = 128) -> tuple[list[Layer], np.ndarray]:
    """Flat ground at 0 with a 10 m flat-roof building, a 6 m gable-roof building, a road strip,
    a pond, an 8 m tree crown and a parked vehicle (OTHER); plus the crown's top normals."""
    x, y = grid_xy(n, n, SIZE)
    full = np.ones((n, n), bool)
    flat, gable = _box(x, y, FLAT_ROOF), _box(x, y, GABLE)
    road = (y >= -6) & (y < -2)
    pond = np.hypot(x + 12, y + 16) < 6
    r = np.hypot(x - TREE_CENTRE[0], y - TREE_CENTRE[1]) / TREE_RADIUS
    tree = r < 1
    crown = 4.0 + 4.0 * np.sqrt(np.clip(1 - r * r, 0, 1))
    car = _box(x, y, (-4.0, 0.0, 20.0, 22.0))
    roofs = np.where(flat, 10.0, gable_height(y))
    layers = [
        Layer(K.TERRAIN, full, np.where(pond, -0.5, 0.0), np.full((n, n), -1.5), GRASS),
        Layer(K.ROAD, road, np.full((n, n), 0.05), np.full((n, n), -0.3), ROAD),
        Layer(K.WATER, pond, np.full((n, n), 0.05), np.full((n, n), -0.3), WATER),
        Layer(K.BUILDING, flat | gable, roofs, np.full((n, n), -0.5), BUILDING),
        Layer(K.VEGETATION, tree, crown, np.full((n, n), 3.0), WOODLAND),
        Layer(K.OTHER, car, np.full((n, n), 1.5), np.zeros((n, n)), VEHICLE),
    ]
    # Crown normals of the dome z = 4 + 4 sqrt(1 - r^2): tilted towards the rim.
    dx, dy = (x - TREE_CENTRE[0]) / TREE_RADIUS, (y - TREE_CENTRE[1]) / TREE_RADIUS
    s = np.sqrt(np.clip(1 - r * r, 0.05, 1))
    tilt = np.stack([dx * 4 / TREE_RADIUS, dy * 4 / TREE_RADIUS, s], -1)
    tilt = np.where(tree[..., None], tilt / np.linalg.norm(tilt, axis=-1, keepdims=True), [0.0, 0, 1])
    return layers, tilt


def town_scene(n: int = 128) -> Scene:
    layers, tilt = town_layers(n)
    return make_scene(layers, SIZE, tilt)


def city_layers(n: int, seed: int = 0) -> tuple[list[Layer], np.ndarray]:
    """A synthetic town on rolling ground: a road grid, blocks of rotated flat and gable-roof
    buildings, round tree crowns and ponds. For scale and timing tests."""
    rng = np.random.default_rng(seed)
    x, y = grid_xy(n, n, SIZE)
    ground = 3 * np.sin(x / 40) * np.cos(y / 55) + rng.normal(0, 0.02, x.shape)
    kind = np.full((n, n), int(K.TERRAIN))
    top = ground.copy()
    crown_base = np.zeros((n, n))
    for _ in range(n * n // 20000 + 1):
        cx, cy = rng.uniform(x.min(), x.max(), 2)
        kind[np.hypot(x - cx, y - cy) < rng.uniform(4, 12)] = int(K.WATER)
    for _ in range(n * n // 800):
        cx, cy = rng.uniform(x.min(), x.max(), 2)
        radius, height = rng.uniform(2, 6), rng.uniform(5, 15)
        r = np.hypot(x - cx, y - cy) / radius
        crown = ground + height * (0.5 + 0.5 * np.sqrt(np.clip(1 - r * r, 0, 1)))
        on = (r < 1) & (kind != int(K.WATER))
        kind[on], top[on], crown_base[on] = int(K.VEGETATION), np.maximum(top[on], crown[on]), ground[on] + 0.4 * height
    road = (np.arange(n)[:, None] % 64 < 8) | (np.arange(n)[None, :] % 64 < 8)
    kind[road], top[road] = int(K.ROAD), ground[road] + 0.05
    for bi in range(n // 64):
        for bj in range(n // 64):
            for _ in range(rng.integers(1, 4)):
                _add_building(rng, x, y, ground, kind, top, (bi * 64 + 10, bj * 64 + 10))
    water = kind == int(K.WATER)
    layers = [
        Layer(K.TERRAIN, np.ones((n, n), bool), np.where(water, ground - 0.5, ground), np.full((n, n), ground.min() - 1.5), GRASS),
        Layer(K.ROAD, kind == int(K.ROAD), ground + 0.05, ground - 0.3, ROAD),
        Layer(K.WATER, water, ground + 0.05, ground - 0.3, WATER),
        Layer(K.BUILDING, kind == int(K.BUILDING), top, np.full((n, n), ground.min() - 0.5), BUILDING),
        Layer(K.VEGETATION, kind == int(K.VEGETATION), top, crown_base, WOODLAND),
    ]
    return [la for la in layers if la.mask.any()], np.broadcast_to([0.0, 0, 1], (n, n, 3))


def _add_building(rng, x, y, ground, kind, top, corner) -> None:
    size = SIZE
    i0, j0 = corner
    cx, cy = x[i0, 0] + rng.uniform(4, 24), y[0, j0] + rng.uniform(4, 24)
    length, width = rng.uniform(8, 24), rng.uniform(6, 14)
    angle = rng.choice([0.0, rng.uniform(0, np.pi)])
    u = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
    v = -(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)
    on = (np.abs(u) < length / 2) & (np.abs(v) < width / 2) & (kind != int(K.ROAD))
    if not on.any():
        return
    eave = ground[on].max() + rng.uniform(4, 25)
    gable = rng.random() < 0.3
    roof = eave + (width / 2 - np.abs(v)) * 0.6 if gable else np.full(x.shape, eave)
    kind[on], top[on] = int(K.BUILDING), np.round(roof[on] / size * 8) * size / 8 if not gable else roof[on]
