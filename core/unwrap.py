"""UV unwrapping: our own planar charts, packed by xatlas into one atlas shared by all kinds.

xatlas' own chart search takes minutes on a 40k-triangle heightfield, so charts are made here:
faces are grouped by normal direction (up, down, or one of eight 45 degree azimuth bins), split
into edge-connected components inside 32 m blocks (so no chart is huge), and every chart is
projected onto its bin's plane. Those UVs, in metres, go to xatlas with ``use_input_mesh_uvs``,
so xatlas only packs them (scaling metres by texels per metre).

Every bin's projection keeps the triangles' counter-clockwise winding, and a face inside a bin
is at most 45 degrees (up/down) or ~49 degrees (walls) off the projection axis, so no triangle
flips and texel density varies by at most ~1.5x.

UV convention (glTF, as ``TexturedMesh`` says): (0, 0) is the top-left of the image. Texel
(row r, column c) of the atlas covers u in [c/W, (c+1)/W], v in [r/H, (r+1)/H]. xatlas works in
that convention already (its v grows with the image row), so its UVs are used unchanged.

Hidden faces (undersides) get no chart: all their vertices map to the centre of one tiny
reserved chart, so they cost about one padded texel in total and have zero UV area.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xatlas
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .meshes import KindMesh, TexturedMesh

BLOCK_M = 32.0          # chart size limit: charts never span two cells of this size
UP_NZ = 0.7             # |normal z| above this projects from above (or below)
UTILIZATION = 0.75      # expected share of atlas texels that charts cover, to size the atlas
SIDE_FACTOR = 1.5       # an atlas side may reach this times sqrt(max_texels)
MAX_PACKS = 6           # repacks allowed while shrinking texels per metre to fit the budget

UP, DOWN = 0, 1         # bins 2..9 are azimuth bins of 45 degrees, angle (bin - 2) * 45


@dataclass
class Atlas:
    meshes: list[TexturedMesh]  # one per input KindMesh, same order
    width: int
    height: int
    texels_per_metre: float     # the density actually used (may be below the one asked for)


@dataclass
class _Charted:
    """One KindMesh split along chart seams, before packing."""

    src: np.ndarray       # (V,) index of each split vertex in the KindMesh
    faces: np.ndarray     # (F,) x 3 split-vertex indices, same face order as the KindMesh
    uvs: np.ndarray       # (V, 2) float32 planar projection, metres
    normals: np.ndarray   # (V, 3) float32 unit, averaged within the vertex's chart
    hidden: np.ndarray    # (F,) bool
    visible_area: float   # m^2


def _face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3) float64 cross products: direction = normal, length = twice the area."""
    p = vertices.astype(np.float64)[faces]
    return np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])


def _normal_bins(normals: np.ndarray) -> np.ndarray:
    """(F,) int bin per face: UP, DOWN, or 2 + nearest 45 degree azimuth of the normal."""
    unit = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-30)
    azimuth = np.arctan2(unit[:, 1], unit[:, 0])
    bins = 2 + np.round(azimuth / (np.pi / 4)).astype(np.int64) % 8
    bins[unit[:, 2] > UP_NZ] = UP
    bins[unit[:, 2] < -UP_NZ] = DOWN
    return bins


def _chart_ids(vertices: np.ndarray, faces: np.ndarray, bins: np.ndarray,
               hidden: np.ndarray) -> np.ndarray:
    """(F,) chart id per face: edge-connected faces sharing bin, visibility and block."""
    n_faces = len(faces)
    block = np.floor(vertices.astype(np.float64)[faces].mean(1) / BLOCK_M).astype(np.int64)
    block -= block.min(0, initial=0)
    group = np.ravel_multi_index((bins, hidden, *block.T), (10, 2, *(block.max(0, initial=0) + 1)))
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2).astype(np.int64), axis=1)
    key = edges[:, 0] * (int(faces.max(initial=0)) + 1) + edges[:, 1]
    order = np.argsort(key, kind="stable")
    # Consecutive equal keys are the same edge; chaining them links every face on that edge.
    same = key[order[1:]] == key[order[:-1]]
    f1, f2 = order[:-1][same] // 3, order[1:][same] // 3
    keep = group[f1] == group[f2]
    graph = coo_matrix((np.ones(keep.sum(), np.int8), (f1[keep], f2[keep])), shape=(n_faces, n_faces))
    return connected_components(graph, directed=False)[1]


def _project(points: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """(N, 2) planar UVs in metres of points in charts of the given bins; keeps CCW winding."""
    x, y, z = points.astype(np.float64).T
    angle = (bins - 2) * (np.pi / 4)
    uv = np.column_stack([-np.sin(angle) * x + np.cos(angle) * y, z])
    up, down = bins == UP, bins == DOWN
    uv[up] = np.column_stack([x[up], y[up]])
    uv[down] = np.column_stack([-x[down], y[down]])  # mirrored so a downward face stays CCW
    return uv


def _vertex_normals(faces: np.ndarray, face_normals: np.ndarray, n_vertices: int) -> np.ndarray:
    """(V, 3) float32 unit area-weighted normals; split vertices make them sharp at seams."""
    corner = faces.ravel()
    weights = np.repeat(face_normals, 3, axis=0)
    summed = np.column_stack([np.bincount(corner, weights[:, k], n_vertices) for k in range(3)])
    length = np.linalg.norm(summed, axis=1, keepdims=True)
    return np.where(length > 0, summed / np.maximum(length, 1e-30), [0.0, 0.0, 1.0]).astype(np.float32)


def _chart(mesh: KindMesh) -> _Charted:
    """Split one mesh into planar charts with their metre-scale UVs and per-chart normals."""
    faces = mesh.faces.astype(np.int64)
    hidden = np.asarray(mesh.hidden, bool)
    face_normals = _face_normals(mesh.vertices, faces)
    bins = _normal_bins(face_normals)
    charts = _chart_ids(mesh.vertices, faces, bins, hidden)
    # A vertex used by k charts becomes k vertices: unique (chart, vertex) pairs, sorted.
    n_src = len(mesh.vertices)
    keys, new_faces = np.unique(np.repeat(charts, 3) * n_src + faces.ravel(), return_inverse=True)
    new_faces = new_faces.reshape(-1, 3)
    src, vertex_chart = keys % n_src, keys // n_src
    chart_bin = np.zeros(charts.max(initial=-1) + 1, np.int64)
    chart_bin[charts] = bins
    return _Charted(
        src=src, faces=new_faces,
        uvs=_project(mesh.vertices[src], chart_bin[vertex_chart]).astype(np.float32),
        normals=_vertex_normals(new_faces, face_normals, len(src)), hidden=hidden,
        visible_area=float(np.linalg.norm(face_normals[~hidden], axis=1).sum() / 2))


def _visible_part(charted: _Charted) -> tuple[np.ndarray, np.ndarray]:
    """(vertex ids used by visible faces, visible faces re-indexed into that list)."""
    used, local = np.unique(charted.faces[~charted.hidden], return_inverse=True)
    return used, local.reshape(-1, 3)


def _pack(meshes: list[KindMesh], charted: list[_Charted], tpm: float,
          padding: int) -> tuple[xatlas.Atlas, list[int], int]:
    """Pack all visible charts (plus the reserved hidden-face chart) with xatlas.

    Returns the atlas, each mesh's xatlas mesh index (-1 when it has no visible face) and the
    index of the reserved chart's mesh (-1 when no face is hidden).
    """
    atlas = xatlas.Atlas()
    index = []
    for mesh, c in zip(meshes, charted):
        used, local = _visible_part(c)
        if len(local) == 0:
            index.append(-1)
            continue
        index.append(len(index) - index.count(-1))
        atlas.add_mesh(np.ascontiguousarray(mesh.vertices[c.src[used]], np.float32),
                       local.astype(np.uint32), c.normals[used], c.uvs[used])
    reserved = -1
    if any(c.hidden.any() for c in charted):
        # A right triangle one texel across: xatlas gives it a padded spot of its own.
        tri = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32) / np.float32(tpm)
        reserved = len(index) - index.count(-1)
        atlas.add_mesh(tri, np.array([[0, 1, 2]], np.uint32), None, np.ascontiguousarray(tri[:, :2]))
    chart_options = xatlas.ChartOptions()
    chart_options.use_input_mesh_uvs = True
    pack_options = xatlas.PackOptions()
    pack_options.padding = padding
    pack_options.texels_per_unit = tpm
    pack_options.bilinear = True
    pack_options.rotate_charts = True
    atlas.generate(chart_options, pack_options)
    return atlas, index, reserved


def _textured(mesh: KindMesh, c: _Charted, packed: xatlas.Atlas, index: int,
              hidden_uv: np.ndarray) -> TexturedMesh:
    """Assemble one output mesh: packed visible vertices, then hidden vertices at the reserved texel."""
    hidden_ids = np.unique(c.faces[c.hidden])
    faces = np.empty_like(c.faces)
    if index >= 0:
        used, _ = _visible_part(c)
        vmapping, indices, uvs = packed[index]
        vis_src = used[vmapping.astype(np.int64)]  # xatlas may split vertices further
        faces[~c.hidden] = indices.reshape(-1, 3)
    else:
        vis_src, uvs = np.zeros(0, np.int64), np.zeros((0, 2), np.float32)
    slot = np.zeros(len(c.src), np.int64)
    slot[hidden_ids] = len(vis_src) + np.arange(len(hidden_ids))
    faces[c.hidden] = slot[c.faces[c.hidden]]
    split = np.concatenate([vis_src, hidden_ids])
    all_uvs = np.concatenate([uvs, np.broadcast_to(hidden_uv, (len(hidden_ids), 2))])
    return TexturedMesh(kind=mesh.kind, vertices=mesh.vertices[c.src[split]].astype(np.float32),
                        faces=faces.astype(np.int32), uvs=all_uvs.astype(np.float32),
                        normals=c.normals[split], class_id=mesh.class_id[c.src[split]])


def unwrap(meshes: list[KindMesh], texels_per_metre: float, max_texels: int,
           padding: int = 4) -> Atlas:
    """Chart every mesh and pack all of them into one atlas of at most ``max_texels`` texels.

    ``texels_per_metre`` is lowered when the visible area would not fit ``max_texels`` at the
    expected packing utilisation, and again (repacking) while the packed atlas has more texels
    than ``max_texels`` or a side longer than 1.5 * sqrt(max_texels).
    """
    charted = [_chart(m) for m in meshes]
    area = sum(c.visible_area for c in charted)
    tpm = float(texels_per_metre)
    if area * tpm ** 2 / UTILIZATION > max_texels:
        tpm = float(np.sqrt(max_texels * UTILIZATION / area))
    side_cap = SIDE_FACTOR * np.sqrt(max_texels)
    for _ in range(MAX_PACKS):
        packed, index, reserved = _pack(meshes, charted, tpm, padding)
        w, h = packed.width, packed.height
        shrink = min(1.0, np.sqrt(max_texels / max(w * h, 1)), side_cap / max(w, h, 1))
        if shrink >= 1.0:
            break
        # Padding does not shrink with the density, so aim a little lower than the ratio says.
        tpm *= 0.97 * shrink
    else:
        raise RuntimeError(f"atlas {w}x{h} does not fit {max_texels} texels after {MAX_PACKS} packs")
    hidden_uv = packed[reserved][2].mean(0) if reserved >= 0 else np.zeros(2, np.float32)
    out = [_textured(m, c, packed, i, hidden_uv) for m, c, i in zip(meshes, charted, index)]
    return Atlas(meshes=out, width=int(w), height=int(h), texels_per_metre=tpm)
