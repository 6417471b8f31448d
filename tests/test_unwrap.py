"""UV unwrapping (core/unwrap): planar charts packed by xatlas into one atlas.

Shapes are built here (a box, a heightfield, a faceted cylinder, a gable roof); test_bake reuses
them. Overlap and coverage are checked by sampling every texel centre of the atlas.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

from satforge.core.meshes import KindMesh
from satforge.core.schemes import SurfaceKind
from satforge.core.unwrap import Atlas, unwrap

K = SurfaceKind


def kind_mesh(vertices, faces, kind: SurfaceKind, hidden=None) -> KindMesh:
    faces = np.asarray(faces, np.int32)
    return KindMesh(kind=kind, vertices=np.asarray(vertices, np.float32), faces=faces,
                    class_id=np.full(len(vertices), int(kind), np.uint8),
                    hidden=np.zeros(len(faces), bool) if hidden is None else np.asarray(hidden, bool))


def box(lo, hi, kind: SurfaceKind = K.BUILDING) -> KindMesh:
    """Closed box, counter-clockwise from outside; its two bottom faces are hidden."""
    (x0, y0, z0), (x1, y1, z1) = lo, hi
    v = [[x0, y0, z0], [x1, y0, z0], [x1, y1, z0], [x0, y1, z0],
         [x0, y0, z1], [x1, y0, z1], [x1, y1, z1], [x0, y1, z1]]
    f = [[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4], [1, 2, 6], [1, 6, 5],
         [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]]
    return kind_mesh(v, f, kind, hidden=[True, True] + [False] * 10)


def heightfield(n: int, size: float, amplitude: float = 3.0, kind: SurfaceKind = K.TERRAIN) -> KindMesh:
    """Open n x n vertex heightfield centred on the origin: 2 (n - 1)^2 triangles."""
    xs = np.linspace(-size / 2, size / 2, n)
    x, y = np.meshgrid(xs, xs)
    z = amplitude * np.sin(x / 7.0) * np.cos(y / 5.0)
    i = np.arange(n * n).reshape(n, n)
    a, b, c, d = i[:-1, :-1].ravel(), i[:-1, 1:].ravel(), i[1:, 1:].ravel(), i[1:, :-1].ravel()
    faces = np.concatenate([np.column_stack([a, b, c]), np.column_stack([a, c, d])])
    return kind_mesh(np.column_stack([x.ravel(), y.ravel(), z.ravel()]), faces, kind)


def cylinder(radius: float, height: float, sides: int, kind: SurfaceKind = K.VEGETATION) -> KindMesh:
    """Closed prism with ``sides`` wall facets; its bottom fan is hidden."""
    t = np.arange(sides) * 2 * np.pi / sides
    ring = np.column_stack([radius * np.cos(t), radius * np.sin(t)])
    v = np.concatenate([np.column_stack([ring, np.zeros(sides)]),
                        np.column_stack([ring, np.full(sides, height)]),
                        [[0, 0, 0], [0, 0, height]]])
    faces, hidden = [], []
    for k in range(sides):
        k1 = (k + 1) % sides
        faces += [[k, k1, sides + k1], [k, sides + k1, sides + k], [2 * sides, k1, k],
                  [2 * sides + 1, sides + k, sides + k1]]
        hidden += [False, False, True, False]
    return kind_mesh(v, faces, kind, hidden)


def gable_roof(width: float, depth: float, rise: float) -> KindMesh:
    """Two roof planes meeting at a ridge along y (open mesh, enough for density checks)."""
    v = [[0, 0, 0], [width / 2, 0, rise], [width, 0, 0],
         [0, depth, 0], [width / 2, depth, rise], [width, depth, 0]]
    return kind_mesh(v, [[0, 1, 4], [0, 4, 3], [1, 2, 5], [1, 5, 4]], K.BUILDING)


def texel_hits(atlas: Atlas, eps: float = 1e-4) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every (texel, visible triangle) pair whose texel centre lies strictly inside the triangle.

    Returns flat texel index, mesh index, face index and barycentrics of each hit. Triangles
    sharing an edge both claim a centre that lies on it only within ``eps`` (not counted).
    """
    hits = []
    for mi, m in enumerate(atlas.meshes):
        uv = m.uvs[m.faces].astype(np.float64) * [atlas.width, atlas.height]
        area2 = np.cross(uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0])
        face = np.flatnonzero(np.abs(area2) > 1e-9)
        lo = np.floor(uv[face].min(1)).astype(int)
        hi = np.ceil(uv[face].max(1)).astype(int)
        w, h = (hi - lo).T
        tri = np.repeat(np.arange(len(face)), w * h)
        off = np.arange(len(tri)) - np.repeat(np.cumsum(w * h) - w * h, w * h)
        x, y = lo[tri, 0] + off % w[tri], lo[tri, 1] + off // w[tri]
        p = np.column_stack([x + 0.5, y + 0.5])
        a, b, c = (uv[face[tri], i] for i in range(3))
        bary = np.column_stack([np.cross(c - b, p - b), np.cross(a - c, p - c), np.cross(b - a, p - a)])
        bary /= area2[face[tri], None]
        inside = (bary > eps).all(1) & (x >= 0) & (y >= 0) & (x < atlas.width) & (y < atlas.height)
        hits.append((y[inside] * atlas.width + x[inside], np.full(inside.sum(), mi),
                     face[tri[inside]], bary[inside]))
    return tuple(np.concatenate(parts) for parts in zip(*hits))


def face_density(atlas: Atlas, mesh_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per face: texel area, 3D area (m^2) and unit normal z."""
    m = atlas.meshes[mesh_index]
    uv = m.uvs[m.faces].astype(np.float64) * [atlas.width, atlas.height]
    texels = np.abs(np.cross(uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0])) / 2
    p = m.vertices[m.faces].astype(np.float64)
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    area = np.linalg.norm(n, axis=1) / 2
    return texels, area, n[:, 2] / np.maximum(2 * area, 1e-12)


@pytest.fixture(scope="module")
def scene_meshes() -> list[KindMesh]:
    return [box((0, 0, 0), (10, 6, 8)), heightfield(40, 60.0), cylinder(3.0, 5.0, 16)]


@pytest.fixture(scope="module")
def atlas(scene_meshes) -> Atlas:
    return unwrap(scene_meshes, texels_per_metre=4.0, max_texels=1 << 22)


def test_every_visible_face_gets_uvs_in_the_atlas(scene_meshes, atlas):
    assert atlas.texels_per_metre == 4.0
    for i, (src, m) in enumerate(zip(scene_meshes, atlas.meshes)):
        assert m.kind == src.kind and len(m.faces) == len(src.faces)
        assert m.vertices.dtype == np.float32 and m.faces.dtype == np.int32
        assert m.uvs.dtype == np.float32 and m.normals.dtype == np.float32
        assert (m.uvs >= 0).all() and (m.uvs <= 1).all()
        texels, area, _ = face_density(atlas, i)
        # No face is more than ~49 degrees off its chart's projection axis.
        assert (texels[~src.hidden] / area[~src.hidden] > 0.65 * 16.0).all()
        # Split vertices keep their source positions: the surface is unchanged.
        np.testing.assert_allclose(m.vertices[m.faces], src.vertices[src.faces], atol=1e-6)


def test_visible_triangles_never_share_a_texel(atlas):
    flat, _, _, _ = texel_hits(atlas)
    assert len(flat) > 0
    assert np.bincount(flat).max() == 1


def test_walls_get_the_texel_density_of_roofs(atlas):
    for i in range(len(atlas.meshes)):
        texels, area, nz = face_density(atlas, i)
        visible = texels > 0
        wall, flat = visible & (np.abs(nz) < 0.01), visible & (np.abs(nz) > 0.99)
        if wall.any() and flat.any():
            wall_density = texels[wall].sum() / area[wall].sum()
            flat_density = texels[flat].sum() / area[flat].sum()
            assert wall_density >= 0.9 * flat_density
            # 4 texels per metre, squared; xatlas stretches each chart to whole texels (<= 1 texel).
            assert 16.0 * 0.999 <= flat_density <= 16.0 * 1.15


def test_a_pitched_roof_keeps_its_true_size():
    atlas = unwrap([gable_roof(8.0, 10.0, 3.0)], texels_per_metre=4.0, max_texels=1 << 20)
    texels, area, _ = face_density(atlas, 0)
    assert (texels / area >= 16.0 * 0.999).all() and (texels / area <= 16.0 * 1.03).all()


def test_hidden_faces_get_no_texels(scene_meshes, atlas):
    for i, (src, m) in enumerate(zip(scene_meshes, atlas.meshes)):
        texels, _, _ = face_density(atlas, i)
        assert (texels[src.hidden] == 0).all()
        if src.hidden.any():
            assert len(np.unique(m.uvs[m.faces[src.hidden]].reshape(-1, 2), axis=0)) == 1


def test_box_normals_are_sharp_and_axis_aligned(atlas):
    m = atlas.meshes[0]
    assert np.allclose(np.abs(m.normals).max(1), 1.0) and np.allclose(np.abs(m.normals).sum(1), 1.0)
    p = m.vertices[m.faces].astype(np.float64)
    face_normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    face_normal /= np.linalg.norm(face_normal, axis=1, keepdims=True)
    np.testing.assert_allclose(m.normals[m.faces], np.repeat(face_normal[:, None], 3, 1), atol=1e-6)


def test_cylinder_normals_are_smooth_within_charts_and_sharp_between(atlas):
    m = atlas.meshes[2]
    walls = np.abs(m.normals[:, 2]) < 0.5
    # Facet normals point at odd multiples of 11.25 degrees; vertices inside a chart of two
    # facets average them, vertices on a chart border keep their facet's normal.
    phase = np.mod(np.degrees(np.arctan2(m.normals[walls, 1], m.normals[walls, 0])), 22.5)
    sharp = np.abs(phase - 11.25) < 0.01
    assert sharp.any() and not sharp.all()


def test_uv_winding_is_consistent(atlas):
    for i, m in enumerate(atlas.meshes):
        uv = m.uvs[m.faces].astype(np.float64)
        sign = np.sign(np.cross(uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]))
        assert len(np.unique(sign[face_density(atlas, i)[0] > 0])) == 1


def test_texel_budget_lowers_the_density():
    meshes = [heightfield(30, 100.0), box((0, 0, 0), (20, 20, 30))]
    max_texels = 200_000
    atlas = unwrap(meshes, texels_per_metre=10.0, max_texels=max_texels)
    assert atlas.texels_per_metre < 10.0
    assert atlas.width * atlas.height <= max_texels
    assert max(atlas.width, atlas.height) <= 1.5 * np.sqrt(max_texels)
    texels, area, _ = face_density(atlas, 1)
    flat = texels > 0
    assert texels[flat].sum() / area[flat].sum() == pytest.approx(atlas.texels_per_metre ** 2, rel=0.03)


def test_unwrap_is_deterministic(scene_meshes, atlas):
    again = unwrap(scene_meshes, texels_per_metre=4.0, max_texels=1 << 22)
    assert (again.width, again.height) == (atlas.width, atlas.height)
    for a, b in zip(atlas.meshes, again.meshes):
        for name in ("vertices", "faces", "uvs", "normals", "class_id"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_a_40k_triangle_heightfield_unwraps_within_a_second():
    mesh = heightfield(142, 200.0)
    assert len(mesh.faces) >= 39_000
    best = min(_timed(lambda: unwrap([mesh], texels_per_metre=5.0, max_texels=1 << 22)) for _ in range(3))
    assert best < 1.0


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
