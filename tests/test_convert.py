"""Scene -> watertight per-kind meshes (core/convert).

The scenes here are synthesised: a few column layers (kind, footprint, top, bottom, class) are
turned into shell voxels plus up-facing top splats the way core/scene.py defines them.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest
import trimesh
from scipy import ndimage

from satforge.core.convert import BudgetError, scene_to_meshes
from satforge.core.convert.columns import ColumnGrid, Columns, scene_columns, splat_normal_z
from satforge.core.convert.simplify import simplify_to_budget
from satforge.core.convert.solids import Cut, Joins, close, kind_surface, prism_surface
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
    return Splats(position=pos.astype(np.float32),
                  rotation=quaternions_from_frames(u, np.cross(normal, u), normal),
                  scale=np.full((n, 2), 0.1, np.float32), opacity=np.ones(n, np.float32),
                  colour=np.full((n, 3), 0.5, np.float32), class_id=cls.astype(np.uint8),
                  kind=kind.astype(np.uint8))


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
            mid = (la.top[i, j] + la.bottom[i, j]) / 2
            pos = np.stack([x[i, j] + di * size / 2, y[i, j] + dj * size / 2, mid], -1)
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
    """A synthetic town on rolling ground: a road grid, blocks of flat and gable-roof buildings
    (some rotated, so their walls are staircases), round tree crowns and ponds. For scale and
    timing; n x n columns of SIZE metres."""
    rng = np.random.default_rng(seed)
    x, y = grid_xy(n, n, SIZE)
    ground = 3 * np.sin(x / 40) * np.cos(y / 55) + rng.normal(0, 0.02, x.shape)
    kind = np.full((n, n), int(K.TERRAIN))
    top, base = ground.copy(), ground.copy()
    for _ in range(n * n // 20000 + 1):
        win, r = _disc(rng, n, 4, 12)
        kind[win][r < 1] = int(K.WATER)
    for _ in range(n * n // 800):
        win, r = _disc(rng, n, 2, 6)
        height = rng.uniform(5, 15)
        on = (r < 1) & (kind[win] != int(K.WATER))
        crown = ground[win] + height * (0.5 + 0.5 * np.sqrt(np.clip(1 - r * r, 0, 1)))
        kind[win][on] = int(K.VEGETATION)
        top[win][on] = np.maximum(top[win], crown)[on]
        base[win][on] = ground[win][on] + 0.4 * height
    road = (np.arange(n)[:, None] % 64 < 8) | (np.arange(n)[None, :] % 64 < 8)
    kind[road], top[road] = int(K.ROAD), ground[road] + 0.05
    for bi in range(n // 64):
        for bj in range(n // 64):
            for _ in range(rng.integers(1, 4)):
                _add_building(rng, x, y, ground, kind, top, (bi * 64, bj * 64))
    water = kind == int(K.WATER)
    full = np.ones((n, n), bool)
    layers = [
        Layer(K.TERRAIN, full, np.where(water, ground - 0.5, ground), np.full((n, n), ground.min() - 1.5),
              GRASS),
        Layer(K.ROAD, kind == int(K.ROAD), ground + 0.05, ground - 0.3, ROAD),
        Layer(K.WATER, water, ground + 0.05, ground - 0.3, WATER),
        Layer(K.BUILDING, kind == int(K.BUILDING), top, np.full((n, n), ground.min() - 0.5), BUILDING),
        Layer(K.VEGETATION, kind == int(K.VEGETATION), top, base, WOODLAND),
    ]
    return [la for la in layers if la.mask.any()], np.broadcast_to([0.0, 0, 1], (n, n, 3))


def _disc(rng: np.random.Generator, n: int, r_min: float,
          r_max: float) -> tuple[tuple[slice, slice], np.ndarray]:
    """A random disc: the window of columns around it and each column's distance / radius."""
    radius = rng.uniform(r_min, r_max)
    ci, cj = rng.uniform(0, n, 2)
    reach = int(radius / SIZE) + 2
    win = tuple(slice(max(int(c) - reach, 0), min(int(c) + reach, n)) for c in (ci, cj))
    i, j = np.mgrid[win]
    return win, np.hypot(i + 0.5 - ci, j + 0.5 - cj) * SIZE / radius


def _add_building(rng, x, y, ground, kind, top, corner) -> None:
    """A rectangle, axis-aligned or rotated, flat or with a gable roof, inside a 64-column block."""
    win = (slice(corner[0] + 8, corner[0] + 64), slice(corner[1] + 8, corner[1] + 64))
    cx, cy = x[win].mean() + rng.uniform(-8, 8), y[win].mean() + rng.uniform(-8, 8)
    length, width = rng.uniform(8, 24), rng.uniform(6, 14)
    angle = rng.choice([0.0, rng.uniform(0, np.pi)])
    u = (x[win] - cx) * np.cos(angle) + (y[win] - cy) * np.sin(angle)
    v = -(x[win] - cx) * np.sin(angle) + (y[win] - cy) * np.cos(angle)
    on = (np.abs(u) < length / 2) & (np.abs(v) < width / 2)
    if not on.any():
        return
    eave = ground[win][on].max() + rng.uniform(4, 25)
    slope = 0.6 if rng.random() < 0.3 else 0.0
    kind[win][on] = int(K.BUILDING)
    top[win][on] = (eave + (width / 2 - np.abs(v)) * slope)[on]


def height_map(mesh, n: int) -> np.ndarray:
    """(n, n) z where a vertical ray from above each column centre of an n x n SIZE grid (centred
    on the origin) first meets the mesh; NaN where it misses."""
    tri = mesh.vertices[mesh.faces].astype(np.float64)
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    keep = np.abs(det) > 1e-12  # vertical faces have no extent seen from above
    a, b, c, det, tri = a[keep], b[keep], c[keep], det[keep], tri[keep]
    # Candidate (face, column) pairs: the columns whose centres lie in each face's bounding box.
    lo = np.clip(np.ceil((tri[:, :, :2].min(1) + n * SIZE / 2) / SIZE - 0.5), 0, n).astype(np.int64)
    hi = np.clip(np.floor((tri[:, :, :2].max(1) + n * SIZE / 2) / SIZE - 0.5), -1, n - 1).astype(np.int64)
    span = np.maximum(hi - lo + 1, 0)
    count = span[:, 0] * span[:, 1]
    face = np.repeat(np.arange(len(tri)), count)
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    i = lo[face, 0] + k // span[face, 1]
    j = lo[face, 1] + k % span[face, 1]
    px, py = (i + 0.5) * SIZE - n * SIZE / 2, (j + 0.5) * SIZE - n * SIZE / 2
    a, b, c, det = a[face], b[face], c[face], det[face]
    u = ((b[:, 0] - px) * (c[:, 1] - py) - (c[:, 0] - px) * (b[:, 1] - py)) / det
    v = ((c[:, 0] - px) * (a[:, 1] - py) - (a[:, 0] - px) * (c[:, 1] - py)) / det
    w = 1 - u - v
    inside = (u >= -1e-9) & (v >= -1e-9) & (w >= -1e-9)
    out = np.full(n * n, -np.inf)
    np.maximum.at(out, (i * n + j)[inside], (u * a[:, 2] + v * b[:, 2] + w * c[:, 2])[inside])
    return np.where(np.isfinite(out), out, np.nan).reshape(n, n)


def normals(mesh) -> np.ndarray:
    """(F, 3) unit face normals (zero for degenerate faces)."""
    tri = mesh.vertices[mesh.faces].astype(np.float64)
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.divide(n, length, out=np.zeros_like(n), where=length > 0)


def edge_face_counts(faces: np.ndarray) -> np.ndarray:
    """How many faces share each undirected edge."""
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    return np.unique(edges, axis=0, return_counts=True)[1]


# --- tests ------------------------------------------------------------------------------------

FULL = 10 ** 9  # a budget that never simplifies
BUDGETS = (FULL, 20000, 3000)


@cache
def town() -> Scene:
    return town_scene()


@cache
def town_meshes(budget: int) -> dict[SurfaceKind, object]:
    return {m.kind: m for m in scene_to_meshes(town(), budget)}


@cache
def town_atlas():
    from satforge.core.unwrap import unwrap

    return unwrap(scene_to_meshes(town(), 20000), 8.0, 1 << 20)


@cache
def city() -> Scene:
    layers, tilt = city_layers(256)
    return make_scene(layers, SIZE, tilt)


def test_splat_normal_z_is_the_frames_normal():
    splats = town().splats
    assert np.allclose(splat_normal_z(splats), splats.frames()[:, 2, 2], atol=1e-6)


def test_columns_take_heights_from_up_facing_splats():
    grid = scene_columns(town())
    x, y = grid_xy(128, 128, SIZE)
    bld = grid.kinds[K.BUILDING]
    flat, gable = _box(x, y, FLAT_ROOF), _box(x, y, GABLE)
    # Wall splats (horizontal normals) next to the roofs must not pull the heights.
    assert np.allclose(bld.top[flat], 10.0) and np.allclose(bld.top[gable], gable_height(y[gable]), atol=1e-5)
    assert (bld.mask == (flat | gable)).all()
    ter = grid.kinds[K.TERRAIN]
    assert ter.mask.all(), "terrain spans every column, under buildings too"
    assert VEHICLE in ter.class_id and K.OTHER not in grid.kinds
    assert grid.x0 == -32.0 and grid.y0 == -32.0 and grid.size == SIZE


@pytest.mark.parametrize("budget", BUDGETS)
def test_one_watertight_mesh_per_kind(budget):
    meshes = town_meshes(budget)
    assert list(meshes) == [K.TERRAIN, K.ROAD, K.BUILDING, K.VEGETATION, K.WATER]
    for kind, m in meshes.items():
        assert m.vertices.dtype == np.float32 and m.faces.dtype == np.int32
        assert m.class_id.shape == (len(m.vertices),) and m.hidden.shape == (len(m.faces),)
        assert (edge_face_counts(m.faces) == 2).all(), kind
        tm = trimesh.Trimesh(m.vertices, m.faces, process=False)
        assert tm.is_watertight and tm.is_winding_consistent, kind
        assert tm.volume > 0, f"{kind} faces point inwards"
    assert VEHICLE in meshes[K.TERRAIN].class_id, "OTHER keeps its class inside terrain"


@pytest.mark.parametrize("budget", BUDGETS[1:])
def test_total_faces_within_budget(budget):
    assert sum(len(m.faces) for m in town_meshes(budget).values()) <= budget


def test_city_within_budget_and_watertight():
    for budget in (40000, 8000):
        meshes = scene_to_meshes(city(), budget)
        assert sum(len(m.faces) for m in meshes) <= budget
        for m in meshes:
            assert trimesh.Trimesh(m.vertices, m.faces, process=False).is_watertight, m.kind


def test_undersides_are_hidden_and_only_they():
    """Every underside is hidden but a canopy's (it floats on its trunk, seen from the side): those
    are the only faces that look down."""
    for kind, m in town_meshes(20000).items():
        n = normals(m)
        if kind == K.VEGETATION:
            assert (n[m.hidden, 2] < -0.999).all() and m.hidden.sum() == 2, "only the trunk's bottom"
            assert (n[:, 2] < -1e-3).sum() > 0.3 * (n[:, 2] > 1e-3).sum(), "the canopy's underside is seen"
            continue
        assert (n[m.hidden, 2] < 0).all() and (n[~m.hidden, 2] > -1e-3).all(), kind
        if kind in (K.TERRAIN, K.BUILDING):
            assert (n[m.hidden, 2] < -0.999).all(), "flat undersides"


@pytest.mark.parametrize("budget", BUDGETS)
def test_roofs_keep_their_heights(budget):
    x, y = grid_xy(128, 128, SIZE)
    bld = town_meshes(budget)[K.BUILDING]
    for box, truth in ((FLAT_ROOF, lambda y: np.full_like(y, 10.0)), (GABLE, gable_height)):
        inside = _box(x, y, box)
        err = np.abs(height_map(bld, 128)[inside] - truth(y[inside]))
        assert np.median(err) < 0.1, (box, budget)
        # Only the ridge line is rounded off by half a cell of slope.
        assert np.quantile(err, 0.9) < 0.2, (box, budget)


@pytest.mark.parametrize("budget", BUDGETS)
def test_building_walls_are_vertical_and_there(budget):
    bld = town_meshes(budget)[K.BUILDING]
    n = normals(bld)
    walls = np.abs(n[:, 2]) < 1e-3
    roofs = n[:, 2] > 0.4
    assert (walls | roofs | bld.hidden).all(), "every face is a wall, a roof or the underside"
    tri = bld.vertices[bld.faces[walls]].astype(np.float64)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    # Flat-roof block: 48 m round, 10.5 m tall (its underside is at -0.5 m).
    x = tri[:, :, 0].mean(1)
    assert abs(area[x < -5].sum() - 48 * 10.5) < 1.0


def test_tree_is_a_rounded_crown_on_a_trunk_not_a_prism():
    for budget in BUDGETS:
        tree = town_meshes(budget)[K.VEGETATION]
        n = normals(tree)
        walls = np.abs(n[:, 2]) <= 1e-2
        # The only walls are the trunk's four sides: a box under the crown's centre, on the ground.
        trunk = tree.vertices[np.unique(tree.faces[walls])]
        assert walls.sum() == 8, budget
        assert np.ptp(trunk[:, 0]) < 0.8 and np.ptp(trunk[:, 1]) < 0.8
        assert np.hypot(*(trunk[:, :2].mean(0) - TREE_CENTRE)) < 1.0
        assert trunk[:, 2].min() == pytest.approx(0.0, abs=0.05) and trunk[:, 2].max() > 3.0
        x, y = grid_xy(128, 128, SIZE)
        centre = np.hypot(x - TREE_CENTRE[0], y - TREE_CENTRE[1]) < 0.5
        assert np.abs(height_map(tree, 128)[centre] - TREE_TOP).max() < 0.1, budget
        # The rim is halfway between the crown's top and its 3 m base, not at either.
        v = tree.vertices
        r = np.hypot(v[:, 0] - TREE_CENTRE[0], v[:, 1] - TREE_CENTRE[1])
        rim = v[r > r.max() - 0.3, 2]
        assert 3.3 < rim.min() and rim.max() < 6.0, budget


def test_a_small_tree_beside_a_taller_one_gets_its_own_trunk():
    """Two crowns a cell apart (their tops closer than one crown's reach): each gets a trunk under
    its own top, the small one too (it was no peak of its taller neighbour's window)."""
    from satforge.core.convert.trunks import crown_cells, trunks_under

    size, n = 0.5, 40
    x, y = np.meshgrid((np.arange(n) + 0.5) * size, (np.arange(n) + 0.5) * size, indexing="ij")
    top, mask = np.zeros((n, n)), np.zeros((n, n), bool)
    centres = [(7.0, 10.0), (11.0, 10.0)]
    for (cx, cy), radius, height in zip(centres, (2.5, 0.8), (12.0, 6.0)):
        r = np.hypot(x - cx, y - cy) / radius
        mask |= r < 1
        top = np.where(r < 1, height - 2 * r, top)
    canopy = Columns(SurfaceKind.VEGETATION, mask, top, np.where(mask, 3.0, 0.0), np.full((n, n), 3, np.uint8), mask)
    i, j = crown_cells(canopy, np.zeros((n, n)), size)
    assert ndimage.label(mask)[1] == 2
    found = np.column_stack([(i + 0.5) * size, (j + 0.5) * size])
    assert len(found) == 2 and all(np.hypot(*(found - c).T).min() <= 0.5 for c in centres), found
    boxes = trunks_under(canopy, np.zeros((n, n)), 0.0, 0.0, size).solid()
    assert len(boxes.faces) == 2 * 12 and boxes.vertices[:, 2].min() == 0.0


def test_trunks_are_baked_bark_not_canopy():
    """No splat sees a trunk: its faces are painted bark, and its texels in the baked atlas are
    bark-coloured, while the crown's keep the splats' colour."""
    from satforge.core.bake import bake_albedo
    from satforge.core.convert.trunks import BARK

    atlas = town_atlas()
    image = bake_albedo(atlas, town(), threads=1).astype(np.float32) / 255
    tree = next(m for m in atlas.meshes if m.kind == K.VEGETATION)
    bark = np.isfinite(tree.painted[:, 0])
    n = normals(tree)
    sides = np.flatnonzero(bark & (np.abs(n[:, 2]) <= 1e-2))
    assert bark.sum() == 12 and len(sides) == 8  # and its bottom and top (inside the crown)

    def colour_at(faces: np.ndarray) -> np.ndarray:
        uv = tree.uvs[tree.faces[faces]].mean(1) * [atlas.width, atlas.height]
        return image[uv[:, 1].astype(int), uv[:, 0].astype(int)]

    assert np.abs(colour_at(sides) - BARK).max() < 2 / 255
    crown = np.flatnonzero(~bark & (n[:, 2] > 0.5))
    assert (np.abs(colour_at(crown) - BARK).max(1) > 0.1).all()  # the splats' colour


def test_canopy_undersides_get_a_quarter_of_the_texel_density():
    """A crown's underside is seen (it floats on its trunk) but only from below: it gets texels,
    at DOWN_DENSITY of the top's texels per metre."""
    from satforge.core.unwrap import DOWN_DENSITY

    atlas = town_atlas()
    tree = next(m for m in atlas.meshes if m.kind == K.VEGETATION)
    n = normals(tree)
    p = tree.vertices[tree.faces].astype(np.float64)
    uv = tree.uvs[tree.faces].astype(np.float64) * [atlas.width, atlas.height]
    area = np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1)
    texels = np.abs(np.cross(uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]))

    def density(faces: np.ndarray) -> float:
        return float(np.sqrt(texels[faces].sum() / area[faces].sum()))

    down, up = n[:, 2] < -0.7, n[:, 2] > 0.7
    assert down.sum() > 10
    assert density(down) == pytest.approx(DOWN_DENSITY * density(up), rel=0.2)


def test_terrain_covers_the_whole_tile_from_above():
    for budget in BUDGETS:
        z = height_map(town_meshes(budget)[K.TERRAIN], 128)
        assert np.isfinite(z).all(), budget
    x, y = grid_xy(128, 128, SIZE)
    open_ground = (np.abs(x) > 24) & (y > 24)
    assert np.allclose(height_map(town_meshes(20000)[K.TERRAIN], 128)[open_ground], 0.0, atol=0.02)


def test_deterministic():
    a, b = scene_to_meshes(town(), 3000), scene_to_meshes(town_scene(), 3000)
    for ma, mb in zip(a, b):
        for name in ("vertices", "faces", "class_id", "hidden"):
            assert getattr(ma, name).tobytes() == getattr(mb, name).tobytes()


def test_budget_too_small_is_an_error():
    with pytest.raises(BudgetError):
        scene_to_meshes(town(), 40)


def test_a_budget_below_the_solids_floor_gets_the_fewest_faces_reached():
    """A budget is a target: where locked cut vertices keep the solids above it (a world chunk's
    finest LOD on a budget), the rest still shrinks, as lean as the simplifier gets it, closed, if
    that is within ``most``; BudgetError beyond."""
    n = 40
    top = 6.0 + np.sin(np.arange(n)[:, None] * 0.7) * np.cos(np.arange(n)[None, :] * 0.5)
    full = np.ones((n, n), bool)
    roof = kind_surface(Columns(K.BUILDING, full, top, np.zeros_like(top), np.ones(full.shape, np.uint8), full),
                        ColumnGrid(0.0, 0.0, 0.5, {}))
    roof = dataclasses.replace(roof, locked=roof.vertices[:, 0] <= 2.0)  # a cut along the west side
    with pytest.raises(BudgetError, match="too small for this scene"):
        simplify_to_budget([roof], 500)
    lean = simplify_to_budget([roof], 500, most=roof.closed_face_count)[0]
    assert 500 < lean.closed_face_count < 0.25 * roof.closed_face_count
    assert (lean.locked.sum(), lean.vertices[lean.locked].tobytes()) == (
        roof.locked.sum(), roof.vertices[roof.locked].tobytes()), "the cut stays where it was"
    solid = close(lean)
    assert (edge_face_counts(solid.faces) == 2).all()
    assert trimesh.Trimesh(solid.vertices, solid.faces, process=False).volume > 0


def test_awkward_footprints_close():
    """Diagonal touches, one-cell strips and holes, with and without cut roof sides."""
    rng = np.random.default_rng(7)
    grid = ColumnGrid(0.0, 0.0, 0.5, {})
    for _ in range(60):
        mask = rng.random((int(rng.integers(1, 10)), int(rng.integers(1, 10)))) < rng.uniform(0.2, 0.9)
        if not mask.any():
            continue
        top = rng.uniform(2, 5, mask.shape) + np.where(rng.random(mask.shape) < 0.3, 4.0, 0.0)
        bottom = rng.uniform(0, 1, mask.shape)
        surfaces = [kind_surface(Columns(kind, mask, top, bottom, np.ones(mask.shape, np.uint8), mask), grid)
                    for kind in (K.BUILDING, K.VEGETATION, K.ROAD)]
        joins = Joins.of_mask(mask)
        cut = Joins(joins.east & (rng.random(mask.shape) < 0.6), joins.north & (rng.random(mask.shape) < 0.6))
        cls = np.ones(mask.shape, np.uint8)
        surfaces.append(prism_surface(K.BUILDING, mask, cut, top, bottom, cls, grid))
        for s in surfaces:
            solid = close(s)
            assert (edge_face_counts(solid.faces) == 2).all(), (s.kind, mask.astype(int))
            assert trimesh.Trimesh(solid.vertices, solid.faces, process=False).volume > 0


def test_city_tile_converts_quickly():
    # 256 x 256 columns (full resolution ~480k faces); the target is 3 s on 2 cores, with slack
    # here for a busy test machine.
    scene = city()
    start = time.perf_counter()
    scene_to_meshes(scene, 40000)
    assert time.perf_counter() - start < 9.0


def test_a_long_pass_in_strips_at_once_is_sound_and_the_same_on_any_cores(monkeypatch):
    """A 1024² tile's first pass runs in strips, one forked child per core: the city's 480k faces
    cut into four strips as 4M faces would be. Closed solids within the budget, roofs where the
    whole pass puts them, and the same bytes whether one core or two did it."""
    from satforge.core.convert import simplify

    whole = {m.kind: m for m in scene_to_meshes(city(), 40000)}
    monkeypatch.setattr(simplify, "LONG_PASS", 1 << 17)
    one, two = scene_to_meshes(city(), 40000, threads=1), scene_to_meshes(city(), 40000, threads=2)
    assert sum(len(m.faces) for m in two) <= 40000
    for a, b in zip(one, two):
        assert a.vertices.tobytes() == b.vertices.tobytes() and a.faces.tobytes() == b.faces.tobytes()
        assert trimesh.Trimesh(b.vertices, b.faces, process=False).is_watertight, b.kind
    strips = {m.kind: m for m in two}
    assert strips[K.BUILDING].faces.tobytes() != whole[K.BUILDING].faces.tobytes(), "the strips ran"
    roofs = height_map(strips[K.BUILDING], 256), height_map(whole[K.BUILDING], 256)
    both = np.isfinite(roofs[0]) & np.isfinite(roofs[1])
    assert both.sum() > 0.9 * np.isfinite(roofs[1]).sum()
    assert np.median(np.abs(roofs[0] - roofs[1])[both]) < 0.05


def test_a_canopy_cut_by_a_chunk_border_keeps_its_height_there():
    """A world chunk's cut: the canopy is shaped with the columns past the cut (its context), so it
    rounds off at its own rim, not where the chunk cuts it, and the part kept is the whole
    canopy's; its vertices on the cut are locked and survive simplification where they are."""
    mask = np.ones((12, 12), bool)
    top = 10.0 + np.add.outer(np.arange(12), np.arange(12)) % 3 * 0.2  # a little relief to simplify
    cols = Columns(kind=SurfaceKind.VEGETATION, mask=mask, top=top, bottom=np.full(mask.shape, 4.0),
                   class_id=np.full(mask.shape, 5, np.uint8), measured=mask)
    grid = ColumnGrid(x0=-3.0, y0=-3.0, size=0.5, kinds={})
    context = np.zeros((12, 12), bool)
    context[:, 8:] = True  # the columns east of x = 1 (raster rows run north, columns east)
    whole = kind_surface(cols, grid)
    cut = kind_surface(cols, grid, Cut(context, west=-3.0, north=3.0, gsd=0.5))
    assert cut.vertices[:, 0].max() == pytest.approx(1.0)
    on_cut = np.isclose(cut.vertices[:, 0], 1.0)
    np.testing.assert_array_equal(cut.locked, on_cut)
    inner = on_cut & (np.abs(cut.vertices[:, 1]) < 1.5)
    assert cut.vertices[inner, 2].min() > 9.9, "full height on the cut, no rim"
    same = {tuple(v) for v in whole.vertices.round(9)}
    assert all(tuple(v) in same for v in cut.vertices.round(9)), "the kept part is the whole canopy's"
    simplified = simplify_to_budget([cut], 2 * len(cut.faces) // 4)[0]
    assert len(simplified.faces) < len(cut.faces) // 2
    kept = {tuple(v) for v in simplified.vertices.round(9)}
    assert all(tuple(v) in kept for v in cut.vertices[on_cut].round(9)), "the cut is kept at full resolution"
    assert np.isclose(simplified.vertices[:, 0], 1.0).sum() == on_cut.sum()


def test_a_roof_step_that_meets_a_cut_gets_a_wall_corner_each_side():
    """Two roofs 1.2 m apart (a wall between them) meet a chunk's cut where the roof just past it,
    between the two heights, joins both: the chunk keeps a vertex for each roof on that corner, so
    its solid closes (no corner with two boundary loops, which the simplifier could not repair)."""
    from satforge.core.convert.simplify import defects

    west = np.arange(12)[:, None] < 6
    top = np.where(west, 10.0, 11.2) * np.ones((12, 12))  # (x, y): the west roof, the east roof
    top[:, 11] = np.where(west[:, 0], 10.4, 10.8)  # past the cut: joined to both and to each other
    mask = np.ones((12, 12), bool)
    cols = Columns(kind=SurfaceKind.BUILDING, mask=mask, top=top, bottom=np.zeros((12, 12)),
                   class_id=np.full((12, 12), 8, np.uint8), measured=mask)
    context = np.zeros((12, 12), bool)
    context[0] = True  # the raster's north row: y from 2.5 to 3 m
    grid = ColumnGrid(x0=-3.0, y0=-3.0, size=0.5, kinds={})
    cut = kind_surface(cols, grid, Cut(context, west=-3.0, north=3.0, gsd=0.5))
    corner = np.flatnonzero(np.isclose(cut.vertices[:, 0], 0) & np.isclose(cut.vertices[:, 1], 2.5))
    assert len(corner) == 2 and cut.locked[corner].all()
    assert sorted(cut.vertices[corner, 2]) == pytest.approx([(10 + 10.4 + 10.8 + 11.2) / 4] * 2)
    assert not len(defects(cut.faces, cut.vertices, lens=False))
    solid = close(cut)
    assert trimesh.Trimesh(solid.vertices, solid.faces, process=False).is_watertight
    assert len(simplify_to_budget([cut], 200)[0].faces) < len(cut.faces) // 2


def test_a_kind_a_cut_drops_entirely_gets_no_mesh():
    """The town's buildings all stand north of y = 0: a chunk whose square ends there sees them
    only as context, so it has no building mesh (and the other kinds still simplify)."""
    context = np.zeros((128, 128), bool)
    context[:64] = True  # rows run south from y = 32 m
    meshes = scene_to_meshes(town(), 3000, Cut(context, west=-32.0, north=32.0, gsd=0.5))
    assert [m.kind for m in meshes] == [K.TERRAIN, K.ROAD, K.VEGETATION, K.WATER]
    assert sum(len(m.faces) for m in meshes) <= 3000


def test_compacting_faces_is_what_unique_gives():
    from satforge.core.convert.simplify import _compacted

    faces = np.random.default_rng(1).integers(0, 500, (300, 3))
    used, local = _compacted(faces, 600)
    expect_used, expect_local = np.unique(faces, return_inverse=True)
    np.testing.assert_array_equal(used, expect_used)
    np.testing.assert_array_equal(local, expect_local.reshape(faces.shape))


def test_a_coarser_lod_starts_from_the_finer_lods_tops():
    """A world chunk's coarser LOD simplifies the finer LOD's tops (Tops.coarser), not the full
    resolution again: its meshes are watertight, within its budget, and lie on the finest LOD's
    shape (heights from above within a few decimetres on average)."""
    from satforge.core.convert import mesh_source
    from satforge.world.surface import Grid, heights

    source = mesh_source(town())
    fine, tops = source.meshes(8000)
    coarse, _ = tops.coarser().meshes(4000)
    assert sum(len(m.faces) for m in coarse) <= 4000 < sum(len(m.faces) for m in fine)
    assert sum(len(s.faces) for s in tops.surfaces) < sum(len(s.faces) for s in source.surfaces) // 4
    for m in coarse:
        assert trimesh.Trimesh(m.vertices, m.faces, process=False).is_watertight, m.kind
    grid = Grid(west=-32.0, north=32.0, dx=0.25, dy=0.25, cols=256, rows=256)
    top = lambda meshes: heights(np.concatenate([m.vertices[m.faces] for m in meshes]).astype(np.float64), grid)
    assert np.sqrt(np.mean((top(coarse) - top(fine)) ** 2)) < 0.5
