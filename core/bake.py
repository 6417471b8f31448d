"""Bake the scene's colour into the atlas: rasterise charts in UV space, evaluate 2D Gaussian splats.

Image convention (the atlas UVs' glTF convention, see ``unwrap``): row r, column c of the returned
(H, W, 3) array is the texel whose centre is at uv ((c + 0.5) / W, (r + 0.5) / H), row 0 on top.

Steps:
1. Rasterise every triangle with non-zero UV area (hidden faces have none) conservatively: a texel
   is covered when its square overlaps the triangle, so bilinear sampling at a chart edge never
   reads background. A texel claimed by several triangles goes to the one its centre lies deepest
   in; texels whose centre is outside their triangle take the nearest point on it (clamped
   barycentrics) as 3D position.
2. Colour each covered texel from the 2D Gaussian splats near its 3D position (2DGS surfels):
   weight = opacity * exp(-(du/su)^2/2 - (dv/sv)^2/2) * exp(-(dn/sn)^2/2) * max(0, n_splat . n_texel),
   with (du, dv, dn) the offset in the splat's frame and sn = max(su, sv). The off-surface term
   and the normal term keep roof splats off wall texels (and back faces off each other).
3. Where the splats' total weight is below 1e-3 (no splat on that surface nearby), the texel takes
   the colour of the nearest voxel centre instead: voxels cover every surface, splats may not.
4. Dilate: texels within ``dilate_px`` of a covered texel copy the nearest covered texel, so mip
   maps do not bleed background into charts; the remaining background gets the mean colour.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .scene import Scene, Splats
from .unwrap import Atlas

CANDIDATE_CHUNK = 1 << 20  # rasterisation candidates (texel, triangle) held at once
QUERY_CHUNK = 1 << 16      # texel groups per nearest-splat query
PAIR_CHUNK = 1 << 16       # (texel, splat) pairs weighed at once: small enough to stay in cache
BLOCK_NEIGHBOURS = 16      # splats fetched for a 2x2 texel block (enough for its four texels)
TEXEL_NEIGHBOURS = 8       # splats fetched for a lone texel
BLOCK_SPREAD = 1.5         # a block shares its splats when its texels lie this many texels of its centre
REACH_SIGMAS = 3.0         # splats farther than this many of the largest scale never count
MIN_WEIGHT = 1e-3          # below this total splat weight a texel falls back to the voxels


@dataclass
class _Triangles:
    """Every baked triangle, in atlas pixel units (x = column, y = row).

    Barycentrics are affine in the pixel: b = origin + step @ (x - lo_x, y - lo_y), with origin
    taken at the centre of texel ``lo``, so float32 keeps sub-millipixel precision in any atlas.
    """

    origin: np.ndarray   # (T, 3) float32 barycentrics at the centre of texel lo
    step: np.ndarray     # (T, 3, 2) float32 change of each barycentric per pixel in x and y
    margin: np.ndarray   # (T, 3) float32 half a texel's reach in barycentric units
    grad: np.ndarray     # (T, 3) float32 pixels per barycentric unit (1 / |gradient|)
    lo: np.ndarray       # (T, 2) int64 first column, row of the bounding box
    size: np.ndarray     # (T, 2) int64 bounding box columns, rows
    xyz: np.ndarray      # (T, 3, 3) float32 corner positions, metres
    normal: np.ndarray   # (T, 3) float32 unit face normal


def _triangles(atlas: Atlas) -> _Triangles:
    """Gather all meshes' triangles that own UV area, with their barycentric maps in pixels."""
    size = np.array([atlas.width, atlas.height], np.float64)
    uv = np.concatenate([m.uvs[m.faces].astype(np.float64) for m in atlas.meshes]) * size
    xyz = np.concatenate([m.vertices[m.faces].astype(np.float64) for m in atlas.meshes])
    corners = np.concatenate([uv, np.ones((len(uv), 3, 1))], axis=2)  # rows (x, y, 1)
    keep = np.abs(np.linalg.det(corners)) > 1e-9  # hidden faces collapse onto a point: nothing to bake
    uv, xyz, corners = uv[keep], xyz[keep], corners[keep]
    bary = np.linalg.inv(corners).transpose(0, 2, 1)  # corners @ inv = I, so row i maps to b_i
    limit = np.array([atlas.width - 1, atlas.height - 1])
    lo = np.clip(np.floor(uv.min(1)).astype(np.int64), 0, limit)
    hi = np.clip(np.floor(uv.max(1)).astype(np.int64), 0, limit)
    origin = np.einsum("tij,tj->ti", bary, np.column_stack([lo + 0.5, np.ones(len(lo))]))
    normal = np.cross(xyz[:, 1] - xyz[:, 0], xyz[:, 2] - xyz[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-30)
    step = bary[:, :, :2]
    return _Triangles(
        origin=origin.astype(np.float32), step=step.astype(np.float32),
        margin=(0.5 * np.abs(step).sum(2)).astype(np.float32),
        grad=(1 / np.linalg.norm(step, axis=2)).astype(np.float32), lo=lo, size=hi - lo + 1,
        xyz=xyz.astype(np.float32), normal=normal.astype(np.float32))


def _bucket(n: np.ndarray) -> np.ndarray:
    """Round box sides up to four steps per octave: few distinct shapes, at most 25% waste."""
    step = 2 ** np.maximum(0, np.floor(np.log2(np.maximum(n, 1))).astype(np.int64) - 2)
    return -(-n // step) * step


def _strips(tris: _Triangles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bounding boxes cut into row strips of at most CANDIDATE_CHUNK texels: (tri, first row, rows)."""
    w, h = tris.size.T
    rows = np.maximum(1, CANDIDATE_CHUNK // _bucket(w))
    count = -(-h // rows)
    tri = np.repeat(np.arange(len(w)), count)
    first = tris.lo[tri, 1] + (np.arange(len(tri)) - np.repeat(np.cumsum(count) - count, count)) * rows[tri]
    return tri, first, np.minimum(rows[tri], tris.lo[tri, 1] + h[tri] - first)


def _owners(tris: _Triangles, width: int, height: int) -> np.ndarray:
    """(H * W,) int64 index of the triangle owning each texel, -1 where none covers it.

    Boxes of one bucketed shape are evaluated as one dense array, so every per-texel value is a
    broadcast of per-triangle values (no per-texel gathers). A texel goes to the triangle whose
    edges its centre is farthest inside (signed distance in pixels), so interiors beat margins.
    """
    tri, y0, rows = _strips(tris)
    bw, bh = _bucket(tris.size[tri, 0]), _bucket(rows)
    order = np.lexsort((bh, bw))
    shape_starts = np.flatnonzero(np.diff(bw[order] * (height + 1) + bh[order], prepend=-1))
    best = np.full(width * height, -np.inf, np.float32)
    owner = np.full(width * height, -1, np.int64)
    for group in np.split(order, shape_starts[1:]):
        box_w, box_h = int(bw[group[0]]), int(bh[group[0]])
        ax = np.arange(box_w, dtype=np.float32)
        ay = np.arange(box_h, dtype=np.float32)[:, None]
        for jobs in np.array_split(group, -(-len(group) * box_w * box_h // CANDIDATE_CHUNK)):
            t, top = tri[jobs], y0[jobs]
            step = tris.step[t][:, :, :, None, None]
            origin = tris.origin[t] + tris.step[t, :, 1] * (top - tris.lo[t, 1]).astype(np.float32)[:, None]
            b = origin[:, :, None, None] + step[:, :, 0] * ax + step[:, :, 1] * ay  # (J, 3, h, w)
            # The texel square overlaps the triangle iff, per edge, its most inside corner is inside.
            inside = ((b + tris.margin[t][:, :, None, None] >= 0).all(1)
                      & (ax < tris.size[t, 0, None, None]) & (ay < rows[jobs, None, None]))
            score = (b * tris.grad[t][:, :, None, None]).min(1)[inside]
            j, y, x = np.nonzero(inside)
            flat = (top[j] + y) * width + tris.lo[t[j], 0] + x
            np.maximum.at(best, flat, score)
            won = score == best[flat]
            owner[flat[won]] = t[j[won]]
    return owner


def _surface_points(tris: _Triangles, owner: np.ndarray, flat: np.ndarray,
                    width: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) float32 3D positions (clamped onto the owning triangle) and normals of texels."""
    t = owner[flat]
    dx = (flat % width - tris.lo[t, 0]).astype(np.float32)[:, None]
    dy = (flat // width - tris.lo[t, 1]).astype(np.float32)[:, None]
    b = np.maximum(tris.origin[t] + tris.step[t, :, 0] * dx + tris.step[t, :, 1] * dy, 0)
    b /= b.sum(1, keepdims=True)
    return np.einsum("ni,nij->nj", b, tris.xyz[t]), tris.normal[t]


def _blocks(owner: np.ndarray, width: int, height: int) -> np.ndarray:
    """(B, 4) flat texel indices of the covered texels of every 2x2 block with any, -1 elsewhere."""
    h2, w2 = -(-height // 2), -(-width // 2)
    index = np.full((2 * h2, 2 * w2), -1, np.int64)
    index[:height, :width] = np.where(owner >= 0, np.arange(width * height), -1).reshape(height, width)
    blocks = index.reshape(h2, 2, w2, 2).transpose(0, 2, 1, 3).reshape(-1, 4)
    return blocks[(blocks >= 0).any(1)]


def _splat_table(splats: Splats) -> np.ndarray:
    """(16, M + 1) float32 per-splat columns, with a pad splat of zero weight last.

    Rows: centre (3); the quadratic form Q (xx, yy, zz, 2xy, 2xz, 2yz) whose value at the offset
    d is half the Gaussian's exponent, Q = R diag(su, sv, sn)^-2 R^T / 2; normal (3);
    log opacity; colour (3). cKDTree reports missing neighbours as index M: the pad splat.
    """
    frames = splats.frames().astype(np.float64)
    scale = np.maximum(splats.scale.astype(np.float64), 1e-6)
    inv_var = 1 / np.stack([scale[:, 0], scale[:, 1], scale.max(1)], 1) ** 2
    q = np.einsum("mik,mk,mjk->mij", frames, inv_var, frames) / 2
    table = np.column_stack([
        splats.position, q[:, 0, 0], q[:, 1, 1], q[:, 2, 2], 2 * q[:, 0, 1], 2 * q[:, 0, 2],
        2 * q[:, 1, 2], frames[:, :, 2], np.log(np.maximum(splats.opacity, 1e-30)), splats.colour])
    pad = np.zeros((1, 16))
    pad[0, 12] = -np.inf
    return np.ascontiguousarray(np.concatenate([table, pad]).T, np.float32)


def _weigh(table: np.ndarray, points: np.ndarray, normals: np.ndarray,
           idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Splat weights of texels (G, T) against their group's candidates (G, K).

    Returns the weighted colour sum (G, T, 3) and the total weight (G, T).
    """
    g = table[:, idx][:, :, None, :]                          # (16, G, 1, K)
    dx, dy, dz = (points[:, :, i, None] - g[i] for i in range(3))
    exponent = (g[3] * dx * dx + g[4] * dy * dy + g[5] * dz * dz
                + g[6] * dx * dy + g[7] * dx * dz + g[8] * dy * dz)
    facing = normals[:, :, 0, None] * g[9] + normals[:, :, 1, None] * g[10] + normals[:, :, 2, None] * g[11]
    w = np.exp(g[12] - exponent) * np.maximum(facing, 0)      # (G, T, K)
    return np.stack([(w * g[13 + c]).sum(2) for c in range(3)], -1), w.sum(2)


def _shade(table: np.ndarray, tree: cKDTree, points: np.ndarray, normals: np.ndarray,
           centres: np.ndarray, k: int, reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Weighted colour sums (G, T, 3) and weights (G, T) of texel groups sharing k nearest splats."""
    colour = np.zeros(points.shape, np.float32)
    weight = np.zeros(points.shape[:2], np.float32)
    per_math = max(1, PAIR_CHUNK // (points.shape[1] * k))
    for s in range(0, len(points), QUERY_CHUNK):
        _, idx = tree.query(centres[s:s + QUERY_CHUNK], k=k, distance_upper_bound=reach, workers=-1)
        idx = idx.reshape(-1, k)
        for m in range(0, len(idx), per_math):
            sl = slice(s + m, s + m + per_math)
            colour[sl], weight[sl] = _weigh(table, points[sl], normals[sl], idx[m:m + per_math])
    return colour, weight


def _splat_colours(splats: Splats, blocks: np.ndarray, points: np.ndarray, normals: np.ndarray,
                   texel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Weighted colour sums (N, 3) and total weights (N,) of texels given in block order.

    Neighbour search dominates the cost, so the four texels of a 2x2 block share one search for
    BLOCK_NEIGHBOURS splats around their centroid when they lie close together on one surface;
    texels of blocks that straddle a chart border or a fold are searched one by one.
    """
    colour = np.zeros(points.shape, np.float32)
    weight = np.zeros(len(points), np.float32)
    if len(splats) == 0:
        return colour, weight
    table = _splat_table(splats)
    tree = cKDTree(splats.position, balanced_tree=False, compact_nodes=False)
    reach = REACH_SIGMAS * float(splats.scale.max())
    valid = blocks >= 0
    slot = np.cumsum(valid.ravel()).reshape(valid.shape) - 1  # row of each covered slot in points
    p = np.where(valid[..., None], points[np.maximum(slot, 0)], 0)
    centre = p.sum(1) / valid.sum(1, keepdims=True)
    p = np.where(valid[..., None], p, centre[:, None]).astype(np.float32)
    spread = np.linalg.norm(p - centre[:, None], axis=2).max(1)
    shared = spread <= BLOCK_SPREAD * texel_m
    n = np.where(valid[..., None], normals[np.maximum(slot, 0)], 0).astype(np.float32)
    c, w = _shade(table, tree, p[shared], n[shared], centre[shared],
                  min(BLOCK_NEIGHBOURS, len(splats)), reach + BLOCK_SPREAD * texel_m)
    rows = slot[shared][valid[shared]]
    colour[rows], weight[rows] = c[valid[shared]], w[valid[shared]]
    rows = slot[~shared][valid[~shared]]
    c, w = _shade(table, tree, points[rows, None], normals[rows, None], points[rows],
                  min(TEXEL_NEIGHBOURS, len(splats)), reach)
    colour[rows], weight[rows] = c[:, 0], w[:, 0]
    return colour, weight


def _dilate(image: np.ndarray, covered: np.ndarray, dilate_px: int) -> np.ndarray:
    """Copy the nearest covered texel into uncovered ones within ``dilate_px``; mean colour beyond."""
    if not covered.any():
        return image
    dist, (ri, ci) = ndimage.distance_transform_edt(~covered, return_indices=True)
    out = np.where((dist <= dilate_px)[..., None], image[ri, ci], image[covered].mean(0))
    return np.where(covered[..., None], image, out).astype(image.dtype)


def bake_albedo(atlas: Atlas, scene: Scene, dilate_px: int = 8) -> np.ndarray:
    """(H, W, 3) uint8 sRGB albedo of the atlas, row 0 at v = 0 (see the module docstring)."""
    width, height = atlas.width, atlas.height
    tris = _triangles(atlas)
    owner = _owners(tris, width, height)
    blocks = _blocks(owner, width, height)
    flat = blocks[blocks >= 0]
    points, normals = _surface_points(tris, owner, flat, width)
    colour, weight = _splat_colours(scene.splats, blocks, points, normals, 1 / atlas.texels_per_metre)
    colour /= np.maximum(weight, 1e-30)[:, None]
    bare = weight < MIN_WEIGHT
    if bare.any() and len(scene.voxels):
        _, nearest = cKDTree(scene.voxels.centres()).query(points[bare], workers=-1)
        colour[bare] = scene.voxels.colour[nearest] / 255.0
    image = np.zeros((height * width, 3), np.uint8)
    image[flat] = np.round(np.clip(colour, 0, 1) * 255)
    covered = np.zeros(height * width, bool)
    covered[flat] = True
    return _dilate(image.reshape(height, width, 3), covered.reshape(height, width), dilate_px)
