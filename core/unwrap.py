"""UV unwrapping: our own planar charts, packed by xatlas into one atlas shared by all kinds.

xatlas' own chart search takes minutes on a 40k-triangle heightfield, so charts are made here
and xatlas only packs them (``use_input_mesh_uvs``, scaling metres by texels per metre):

1. Faces are binned by normal: up (nz > 0.7), down (nz < -0.7), else one of eight 45 degree
   azimuth bins. Edge-connected faces of one bin (and visibility) form charts, cut by 32 m
   blocks of the face centroids (roofs and ground in columns only) so no chart is huge; the few
   faces a block border cuts off join a neighbouring chart instead of costing a padded chart each.
2. Every chart is projected orthographically onto a plane: its own mean plane when all its faces
   are within ~25 degrees of it (a flat roof, wall or slope keeps its true size), else its bin's
   plane: (x, y) for up, (x, -y) for down (mirrored so downward faces stay counter-clockwise),
   and for azimuth bin angle a: (-sin a * x + cos a * y, z). Every face is then at most ~49
   degrees off the projection axis: no triangle flips, and texel density varies by at most 1.5x.
   Charts facing down (a canopy's underside) are scaled by DOWN_DENSITY: a quarter of the texels
   per metre where only a glance from below sees them.
3. Vertices are split per chart, so normals (area-weighted within the chart) are sharp at chart
   seams: roof/wall edges are sharp, a rounded canopy is smooth inside its charts.

UV convention (glTF, as ``TexturedMesh`` says): (0, 0) is the top-left of the image. Texel
(row r, column c) of the atlas covers u in [c/W, (c+1)/W], v in [r/H, (r+1)/H]. xatlas works in
that convention already (its v grows with the image row), so its UVs are used unchanged.

Hidden faces (undersides) get no chart: all their vertices map to the centre of one tiny
reserved chart, so together they cost one padded texel and have zero UV area.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xatlas
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .isolated import run_isolated
from .meshes import KindMesh, TexturedMesh
from .schemes import SurfaceKind

BLOCK_M = 32.0          # chart size limit: charts never span two cells of this size
UP_NZ = 0.7             # |normal z| above this projects from above (or below)
ROUNDED_UP_NZ = 0.2     # the same for rounded surfaces (canopies)
PLANE_COS = 0.9         # a chart whose faces all lie within acos(0.9) ~ 25 degrees of its mean normal
                        # is projected onto its own plane instead of its bin's
MIN_CHART_FACES = 16    # smaller pieces cut off by block borders join a neighbouring chart
UTILIZATION = 0.75      # expected share of atlas texels that charts cover, to size the atlas
SIDE_FACTOR = 1.5       # an atlas side may reach this times sqrt(max_texels)
MAX_PACKS = 6           # repacks allowed while shrinking texels per metre to fit the budget

UP, DOWN = 0, 1         # bins 2..9 are azimuth bins of 45 degrees, angle (bin - 2) * 45
DOWN_DENSITY = 0.25     # charts facing down (seen from below, in shade) get this share of texels per metre


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
    faces: np.ndarray     # (F, 3) split-vertex indices, same face order as the KindMesh
    uvs: np.ndarray       # (V, 2) float32 planar projection, metres, each chart moved apart
    normals: np.ndarray   # (V, 3) float32 unit, averaged within the vertex's chart
    hidden: np.ndarray    # (F,) bool
    visible_area: float   # m^2 of visible faces, at their charts' texel density (DOWN_DENSITY squared facing down)
    density: np.ndarray   # (V,) share of the texels per metre of each vertex's chart


def _face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3) float64 cross products: direction = normal, length = twice the area."""
    p = vertices.astype(np.float64)[faces]
    return np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-30)


def _normal_bins(normals: np.ndarray, rounded: bool) -> np.ndarray:
    """(F,) int bin per face: UP, DOWN, or 2 + nearest 45 degree azimuth of the normal.

    ``rounded`` surfaces (canopies: a top and an underside meeting at a rim) project from above or
    below down to |nz| = ROUNDED_UP_NZ: azimuth bins would cut every canopy into dozens of one-face
    charts, each costing padding and packing time; steep faces are stretched instead, which
    foliage hides. Any face with nz > 0 keeps its winding when projected onto (x, y).
    """
    unit = _unit(normals)
    up_nz = ROUNDED_UP_NZ if rounded else UP_NZ
    azimuth = np.arctan2(unit[:, 1], unit[:, 0])
    bins = 2 + np.round(azimuth / (np.pi / 4)).astype(np.int64) % 8
    bins[unit[:, 2] > up_nz] = UP
    bins[unit[:, 2] < -up_nz] = DOWN
    return bins


def _face_links(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of faces sharing an edge."""
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    key = edges[:, 0] * (int(faces.max(initial=0)) + 1) + edges[:, 1]
    order = np.argsort(key, kind="stable")
    # Consecutive equal keys are the same edge; chaining them links every face on that edge.
    same = key[order[1:]] == key[order[:-1]]
    return order[:-1][same] // 3, order[1:][same] // 3


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n,) connected component label of each node of the undirected graph with edges a-b."""
    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _merge_slivers(labels: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Merge charts under MIN_CHART_FACES faces into an edge-adjacent chart of the same bin.

    Block borders cut components along a staircase of face centroids, which can leave a few faces
    cut off; each would cost a padded chart. ``a``-``b`` links only faces of one bin and
    visibility, so any neighbour is a valid host. A chart merges only into a bigger one (ties:
    lower label), so merges form chains, never cycles.
    """
    size = np.bincount(labels)
    la, lb = np.concatenate([labels[a], labels[b]]), np.concatenate([labels[b], labels[a]])
    bigger = (size[lb] > size[la]) | ((size[lb] == size[la]) & (lb < la))
    pick = bigger & (size[la] < MIN_CHART_FACES)
    la, lb = la[pick], lb[pick]
    order = np.lexsort((-lb, size[lb], la))  # per small chart, its biggest neighbour comes last
    host = np.arange(len(size))
    host[la[order]] = lb[order]
    while not np.array_equal(host[host], host):
        host = host[host]
    return np.unique(host[labels], return_inverse=True)[1]


def _chart_ids(vertices: np.ndarray, faces: np.ndarray, bins: np.ndarray,
               hidden: np.ndarray) -> np.ndarray:
    """(F,) chart id per face: edge-connected faces sharing bin, visibility and block."""
    surface = bins * 2 + hidden
    corner = vertices.min(0) if len(vertices) else np.zeros(3)
    block = np.floor((vertices.astype(np.float64)[faces].mean(1) - corner) / BLOCK_M).astype(np.int64)
    block[bins <= DOWN, 2] = 0  # roofs and ground are cut into columns, never by height
    group = np.ravel_multi_index((surface, *block.T), (20, *(block.max(0, initial=0) + 1)))
    a, b = _face_links(faces)
    same_surface = surface[a] == surface[b]
    a, b = a[same_surface], b[same_surface]
    same_block = group[a] == group[b]
    return _merge_slivers(_components(len(faces), a[same_block], b[same_block]), a, b)


def _chart_frames(face_normals: np.ndarray, charts: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """(C, 2, 3) orthonormal tangents (t1, t2) with t1 x t2 = the chart's projection normal."""
    n_charts = int(charts.max(initial=-1)) + 1
    mean = _unit(np.column_stack([np.bincount(charts, face_normals[:, k], n_charts) for k in range(3)]))
    unit = _unit(face_normals)
    # Degenerate faces (no normal) do not veto a chart's own plane.
    cos = np.where(np.any(unit != 0, axis=1), (unit * mean[charts]).sum(1), 1.0)
    flat = np.ones(n_charts)
    np.minimum.at(flat, charts, cos)
    chart_bin = np.zeros(n_charts, np.int64)
    chart_bin[charts] = bins
    angle = (chart_bin - 2) * (np.pi / 4)
    axis = np.column_stack([np.cos(angle), np.sin(angle), np.zeros(n_charts)])
    axis[chart_bin == UP] = [0, 0, 1]
    axis[chart_bin == DOWN] = [0, 0, -1]
    normal = np.where((flat >= PLANE_COS)[:, None], mean, axis)
    # Walls keep v vertical (t2 = up along the wall); roofs and ground keep u along x.
    wall = (chart_bin > DOWN)[:, None]
    ref = np.where(wall, [0.0, 0.0, 1.0], [1.0, 0.0, 0.0])
    along = _unit(ref - (ref * normal).sum(1, keepdims=True) * normal)
    t1 = np.where(wall, np.cross(along, normal), along)
    t2 = np.where(wall, along, np.cross(normal, along))
    return np.stack([t1, t2], 1)


def _stage(uvs: np.ndarray, vertex_chart: np.ndarray) -> np.ndarray:
    """Move every chart into its own cell of a grid, so no two charts share a UV point.

    xatlas welds vertices with equal UVs into one chart, which would undo the chart split where
    neighbouring charts share a projection (blocks of one bin). It packs from scratch anyway.
    """
    n = int(vertex_chart.max(initial=-1)) + 1
    lo = np.full((n, 2), np.inf)
    hi = np.full((n, 2), -np.inf)
    np.minimum.at(lo, vertex_chart, uvs)
    np.maximum.at(hi, vertex_chart, uvs)
    cell = float((hi - lo).max(initial=0)) + 1.0
    cols = max(1, int(np.ceil(np.sqrt(n))))
    corner = np.column_stack([np.arange(n) % cols, np.arange(n) // cols]) * cell
    return uvs - lo[vertex_chart] + corner[vertex_chart]


def _vertex_normals(faces: np.ndarray, face_normals: np.ndarray, n_vertices: int) -> np.ndarray:
    """(V, 3) float32 unit area-weighted normals; split vertices make them sharp at seams."""
    weights = np.repeat(face_normals, 3, axis=0)
    summed = np.column_stack([np.bincount(faces.ravel(), weights[:, k], n_vertices) for k in range(3)])
    length = np.linalg.norm(summed, axis=1, keepdims=True)
    return np.where(length > 0, summed / np.maximum(length, 1e-30), [0.0, 0.0, 1.0]).astype(np.float32)


def _chart(mesh: KindMesh) -> _Charted:
    """Split one mesh into planar charts with their metre-scale UVs and per-chart normals."""
    faces = mesh.faces.astype(np.int64)
    hidden = np.asarray(mesh.hidden, bool)
    face_normals = _face_normals(mesh.vertices, faces)
    bins = _normal_bins(face_normals, rounded=mesh.kind == SurfaceKind.VEGETATION)
    charts = _chart_ids(mesh.vertices, faces, bins, hidden)
    # A vertex used by k charts becomes k vertices: unique (chart, vertex) pairs, sorted.
    n_src = len(mesh.vertices)
    keys, new_faces = np.unique(np.repeat(charts, 3) * n_src + faces.ravel(), return_inverse=True)
    new_faces = new_faces.reshape(-1, 3)
    src, vertex_chart = keys % n_src, keys // n_src
    frame = _chart_frames(face_normals, charts, bins)[vertex_chart]       # (V, 2, 3)
    uvs = (frame @ mesh.vertices[src].astype(np.float64)[:, :, None])[:, :, 0]
    # Charts seen from below (a canopy's underside) get DOWN_DENSITY of the texels per metre.
    chart_scale = np.ones(int(charts.max(initial=-1)) + 1)
    chart_scale[charts[bins == DOWN]] = DOWN_DENSITY
    area = np.linalg.norm(face_normals, axis=1) / 2 * chart_scale[charts] ** 2
    return _Charted(src=src, faces=new_faces, uvs=_stage(uvs, vertex_chart).astype(np.float32),
                    normals=_vertex_normals(new_faces, face_normals, len(src)), hidden=hidden,
                    visible_area=float(area[~hidden].sum()), density=chart_scale[vertex_chart])


def _visible_part(charted: _Charted) -> tuple[np.ndarray, np.ndarray]:
    """(split-vertex ids used by visible faces, visible faces re-indexed into that list)."""
    used, local = np.unique(charted.faces[~charted.hidden], return_inverse=True)
    return used, local.reshape(-1, 3)


@dataclass
class _Packed:
    """xatlas' answer as plain arrays: the atlas size, and per packed mesh (vmapping, indices, uvs)."""

    width: int
    height: int
    meshes: list[tuple[np.ndarray, np.ndarray, np.ndarray]]


def _pack(meshes: list[KindMesh], charted: list[_Charted], tpm: float,
          padding: int) -> tuple[_Packed, list[int], int]:
    """Pack all visible charts, plus the reserved hidden-face chart, with xatlas (in a forked
    child: see core.isolated).

    Returns the packing, each mesh's packed mesh index (-1 when it has no visible face) and the
    reserved chart's mesh index (-1 when no face is hidden).
    """
    inputs, index = [], []
    for mesh, c in zip(meshes, charted):
        used, local = _visible_part(c)
        index.append(len(inputs) if len(local) else -1)
        if len(local):
            # xatlas scales each chart to its surface area: shrinking a chart's positions shrinks its texels.
            positions = mesh.vertices[c.src[used]] * c.density[used, None]
            inputs.append((np.ascontiguousarray(positions, np.float32), local.astype(np.uint32),
                           np.ascontiguousarray(c.uvs[used])))
    reserved = -1
    if any(c.hidden.any() for c in charted):
        # A right triangle one texel across: xatlas gives it a padded spot of its own.
        tri = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32) / np.float32(tpm)
        reserved = len(inputs)
        inputs.append((tri, np.array([[0, 1, 2]], np.uint32), np.ascontiguousarray(tri[:, :2])))
    return run_isolated(_xatlas_pack, inputs, tpm, padding), index, reserved


def _xatlas_pack(inputs: list[tuple[np.ndarray, np.ndarray, np.ndarray]], tpm: float, padding: int) -> _Packed:
    atlas = xatlas.Atlas()
    for vertices, faces, uvs in inputs:
        atlas.add_mesh(vertices, faces, None, uvs)
    chart_options = xatlas.ChartOptions()
    chart_options.use_input_mesh_uvs = True
    pack_options = xatlas.PackOptions()
    pack_options.padding = padding
    pack_options.texels_per_unit = tpm
    pack_options.bilinear = True
    pack_options.rotate_charts = False  # xatlas "rotates" by transposing: a mirror that flips winding
    if inputs:  # xatlas refuses to pack nothing
        atlas.generate(chart_options, pack_options)
    return _Packed(int(atlas.width), int(atlas.height), [atlas[i] for i in range(len(inputs))])


def _textured(mesh: KindMesh, c: _Charted, packed: _Packed, index: int,
              hidden_uv: np.ndarray) -> TexturedMesh:
    """One output mesh: packed visible vertices, then hidden vertices at the reserved texel."""
    hidden_ids = np.unique(c.faces[c.hidden])
    faces = np.empty_like(c.faces)
    vis_src, uvs = np.zeros(0, np.int64), np.zeros((0, 2), np.float32)
    if index >= 0:
        used, _ = _visible_part(c)
        vmapping, indices, uvs = packed.meshes[index]
        vis_src = used[vmapping.astype(np.int64)]  # xatlas may split vertices further
        faces[~c.hidden] = indices.reshape(-1, 3)  # xatlas keeps the face order
    slot = np.zeros(len(c.src), np.int64)
    slot[hidden_ids] = len(vis_src) + np.arange(len(hidden_ids))
    faces[c.hidden] = slot[c.faces[c.hidden]]
    split = np.concatenate([vis_src, hidden_ids])
    all_uvs = np.concatenate([uvs, np.broadcast_to(hidden_uv, (len(hidden_ids), 2))])
    return TexturedMesh(kind=mesh.kind, vertices=mesh.vertices[c.src[split]].astype(np.float32),
                        faces=faces.astype(np.int32), uvs=all_uvs.astype(np.float32),
                        normals=c.normals[split], class_id=mesh.class_id[c.src[split]], painted=mesh.painted)


def unwrap(meshes: list[KindMesh], texels_per_metre: float, max_texels: int,
           padding: int = 4, progress: Callable[[float, str], None] | None = None) -> Atlas:
    """Chart every mesh and pack all of them into one atlas of at most ``max_texels`` texels.

    ``texels_per_metre`` is lowered when the visible area would not fit ``max_texels`` at the
    expected packing utilisation (0.75), and again (repacking) while the packed atlas has more
    than ``max_texels`` texels or a side longer than 1.5 * sqrt(max_texels).
    """
    charted = [_chart(m) for m in meshes]
    if progress is not None:
        progress(0.3, "charts")
    area = sum(c.visible_area for c in charted)
    tpm = float(texels_per_metre)
    if area * tpm ** 2 / UTILIZATION > max_texels:
        tpm = float(np.sqrt(max_texels * UTILIZATION / area))
    side_cap = SIDE_FACTOR * np.sqrt(max_texels)
    for attempt in range(MAX_PACKS):
        packed, index, reserved = _pack(meshes, charted, tpm, padding)
        if progress is not None:
            progress(0.3 + 0.7 * (attempt + 1) / MAX_PACKS, f"packed at {tpm:.3g} texels per metre")
        w, h = packed.width, packed.height
        shrink = min(1.0, np.sqrt(max_texels / max(w * h, 1)), side_cap / max(w, h, 1))
        if shrink >= 1.0:
            break
        # Padding does not shrink with the density, so aim a little below the ratio.
        tpm *= 0.97 * shrink
    else:
        raise RuntimeError(f"the charts do not pack into {max_texels} texels even at "
                           f"{tpm:.3g} texels per metre: too many charts for the texel budget")
    hidden_uv = packed.meshes[reserved][2].mean(0) if reserved >= 0 else np.zeros(2, np.float32)
    out = [_textured(m, c, packed, i, hidden_uv) for m, c, i in zip(meshes, charted, index)]
    return Atlas(meshes=out, width=max(int(w), 1), height=max(int(h), 1), texels_per_metre=tpm)
