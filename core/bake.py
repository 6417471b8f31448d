"""Bake the scene's colour into the atlas: rasterise charts in UV space, evaluate 2D Gaussian splats.

Image convention (the atlas UVs' glTF convention, see ``unwrap``): row r, column c of the returned
(H, W, 3) array is the texel whose centre is at uv ((c + 0.5) / W, (r + 0.5) / H), row 0 on top.

Steps:
1. Rasterise every triangle with non-zero UV area (hidden faces have none) conservatively: a texel
   is covered when its square overlaps the triangle, so bilinear sampling at a chart edge never
   reads background. A texel claimed by several triangles goes to the one its centre lies deepest
   in; a texel whose centre is outside its triangle takes the point of the triangle given by its
   clamped barycentrics as 3D position.
2. Colour each covered texel from the 2D Gaussian splats near its 3D position (2DGS surfels):
   weight = opacity * exp(-(du/su)^2/2 - (dv/sv)^2/2) * exp(-(dn/sn)^2/2) * max(0, n_splat . n_texel),
   with (du, dv, dn) the offset in the splat's frame and sn = max(su, sv); colour = sum(w c) / sum(w).
   The off-surface term and the normal term keep roof splats off wall texels (and back faces off
   each other). View-dependent colour (``sh1``) is ignored: an albedo has no view.
3. Where the splats' total weight is below 1e-3 (no splat on that surface nearby), the texel takes
   the colour of the nearest voxel centre of its mesh's kind instead: voxels cover every surface,
   splats may not.
   Texels of painted triangles (``TexturedMesh.painted``: trunks) take their colour instead.
4. Dilate: texels within ``dilate_px`` (chessboard distance) of a covered texel copy the nearest
   covered texel, so mip maps do not bleed background into charts; the rest of the background
   gets the mean colour of the charts.

Cost: the splat neighbour search dominates, so texels are handled in 2x2 blocks that share one
search around their centre (when they lie together on one surface), in chunks spread over the
given threads (default every core), voxel fall-backs included; the splats are stored cell by
cell so neighbours lie close in memory. Memory stays bounded by the chunk size apart from a few
per-texel atlas arrays.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from .arrays import ramps, to_u8
from .isolated import cores
from .scene import Scene, Splats
from .schemes import SurfaceKind
from .unwrap import Atlas

CANDIDATE_CHUNK = 1 << 20  # rasterisation candidates (texel, triangle) held at once
BLOCK_CHUNK = 1 << 14      # 2x2 texel blocks per task; tasks run on all cores
MATH_GROUPS = 1 << 10      # texel groups weighed at once, so their (texel, splat) pairs stay in cache
BLOCK_NEIGHBOURS = (12, 32)  # splats fetched for a 2x2 block at least, at most (``_block_neighbours``)
TEXEL_NEIGHBOURS = 8       # splats fetched for a lone texel
BLOCK_SPREAD = 1.5         # a block may share one search if its texels lie within this many texels
REACH_SIGMAS = 3.0         # splats farther than this many of the largest scale never count
MIN_WEIGHT = 1e-3          # below this total splat weight a texel falls back to the voxels
HEARTBEAT_S = 0.5          # progress is heard this often while the splats are still being arranged
FIELD_SLICE = 1 << 16      # splats arranged at once (bounds the temporaries)
ARRANGE_M = 2.0            # splats are stored in squares of this side (see ``splat_field``)
DILATE_ROWS = 256          # the atlas is dilated in strips of this many rows (see ``_dilate``)


@dataclass
class _Triangles:
    """Every baked triangle, in atlas pixel units (x = column, y = row).

    Barycentrics are affine in the pixel: b = origin + step_x * (x - lo_x) + step_y * (y - lo_y),
    with origin at the centre of texel ``lo``, so float32 stays exact to a millipixel anywhere.
    ``rows`` packs what a texel needs from its triangle, so one gather fetches it.
    """

    origin: np.ndarray   # (T, 3) float32 barycentrics at the centre of texel lo
    step: np.ndarray     # (T, 3, 2) float32 change of each barycentric per pixel in x and y
    margin: np.ndarray   # (T, 3) float32 half a texel's reach, in barycentric units
    grad: np.ndarray     # (T, 3) float32 pixels per barycentric unit (1 / |gradient|)
    lo: np.ndarray       # (T, 2) int64 first column, row of the bounding box
    size: np.ndarray     # (T, 2) int64 bounding box columns, rows
    rows: np.ndarray     # (T, 23) float32 origin, step (x then y), lo, corners xyz (3x3), normal
    painted: np.ndarray  # (T, 3) float32 sRGB albedo of painted triangles, NaN for baked ones
    kind: np.ndarray     # (T,) uint8 SurfaceKind of each triangle's mesh


@dataclass
class SplatField:
    """The splats, arranged for evaluating their weighted colour at many points.

    log(weight) without the facing term is a quadratic polynomial of the point p:
    log(opacity) - (p - m)^T Q (p - m) with Q = R diag(su, sv, sn)^-2 R^T / 2. ``poly`` holds its ten
    coefficients per splat (for the monomials of ``_monomials``), in float64 around ``origin`` so
    the expanded form loses nothing; one small matrix product then weighs many pairs at once.
    The last row of ``poly`` and ``rest`` is a pad splat of zero weight: cKDTree reports missing
    neighbours as index M.
    """

    tree: cKDTree
    origin: np.ndarray   # (3,) float64
    poly: np.ndarray     # (M + 1, 10) float64
    rest: np.ndarray     # (M + 1, 7) float32 normal (3), colour (3), 1 (to sum weights)
    reach: float         # metres: farther splats never count
    sigma: float         # median splat standard deviation, metres


@dataclass
class BakeField:
    """What a scene's texels are coloured from: its splats (``SplatField``, None without any) and,
    for texels no splat reaches, its voxels: per mesh kind, a k-d tree of the centres of that
    kind's voxels and their (n, 3) float32 colours in [0, 1] (so a canopy's lower band takes a
    canopy voxel's colour, not the ground's below it). Prepared once per scene (``bake_field``),
    in the background while the scene is meshed, and shared by every atlas baked from it (a
    world chunk's LODs)."""

    splats: SplatField | None
    voxels: dict[int, tuple[cKDTree, np.ndarray]]


def bake_field(scene: Scene) -> BakeField:
    v = scene.voxels
    kinds = np.where(v.kind == SurfaceKind.OTHER, SurfaceKind.TERRAIN, v.kind)  # the terrain mesh carries OTHER
    centres, voxels = v.centres(), {}
    for kind in np.unique(kinds):
        mine = kinds == kind
        voxels[int(kind)] = (cKDTree(centres[mine], balanced_tree=False, compact_nodes=False),
                             v.colour[mine].astype(np.float32) / 255)
    return BakeField(splats=splat_field(scene.splats), voxels=voxels)


def _triangles(atlas: Atlas) -> _Triangles:
    """All meshes' triangles that own UV area, with their barycentric maps in pixels."""
    size = np.array([atlas.width, atlas.height], np.float64)
    uv = np.concatenate([m.uvs[m.faces].astype(np.float64) for m in atlas.meshes]) * size
    xyz = np.concatenate([m.vertices[m.faces].astype(np.float64) for m in atlas.meshes])
    painted = np.concatenate([np.full((len(m.faces), 3), np.nan, np.float32) if m.painted is None else m.painted
                              for m in atlas.meshes])
    kind = np.concatenate([np.full(len(m.faces), m.kind, np.uint8) for m in atlas.meshes])
    # b_i at p is the area of (p, next corner, corner after) over the triangle's: edge functions.
    nxt, aft = np.roll(uv, -1, axis=1), np.roll(uv, -2, axis=1)
    area2 = np.cross(uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0])
    keep = np.abs(area2) > 1e-9  # hidden faces collapse onto one point: nothing to bake
    uv, xyz, nxt, aft, area2, painted, kind = (a[keep] for a in (uv, xyz, nxt, aft, area2, painted, kind))
    edge = aft - nxt
    step = np.stack([-edge[..., 1], edge[..., 0]], -1) / area2[:, None, None]
    limit = np.array([atlas.width - 1, atlas.height - 1])
    lo = np.clip(np.floor(uv.min(1)).astype(np.int64), 0, limit)
    hi = np.clip(np.floor(uv.max(1)).astype(np.int64), 0, limit)
    origin = ((lo[:, None] + 0.5 - nxt) * step).sum(2)
    normal = np.cross(xyz[:, 1] - xyz[:, 0], xyz[:, 2] - xyz[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-30)
    rows = np.column_stack([origin, step[..., 0], step[..., 1], lo, xyz.reshape(-1, 9), normal])
    return _Triangles(origin=origin.astype(np.float32), step=step.astype(np.float32),
                      margin=(0.5 * np.abs(step).sum(2)).astype(np.float32),
                      grad=(1 / np.linalg.norm(step, axis=2)).astype(np.float32),
                      lo=lo, size=hi - lo + 1, rows=rows.astype(np.float32), painted=painted, kind=kind)


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
    first = tris.lo[tri, 1] + ramps(count) * rows[tri]
    return tri, first, np.minimum(rows[tri], tris.lo[tri, 1] + h[tri] - first)


def _owners(tris: _Triangles, width: int, height: int) -> np.ndarray:
    """(H * W,) int32 index of the triangle owning each texel, -1 where none covers it.

    Boxes of one bucketed shape are evaluated as one dense array, so every per-texel value is a
    broadcast of per-triangle values (no per-texel gathers). A texel goes to the triangle whose
    edges its centre is farthest inside (signed distance in pixels), so interiors beat margins.
    """
    tri, y0, rows = _strips(tris)
    bw, bh = _bucket(tris.size[tri, 0]), _bucket(rows)
    order = np.lexsort((bh, bw))
    shape_starts = np.flatnonzero(np.diff(bw[order] * (height + 1) + bh[order], prepend=-1))
    best = np.full(width * height, -np.inf, np.float32)
    owner = np.full(width * height, -1, np.int32)
    for group in np.split(order, shape_starts)[1:]:  # [1:]: the empty piece before the first start
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


def _blocks(owner: np.ndarray, width: int, height: int) -> np.ndarray:
    """(B, 4) flat indices of the covered texels of every 2x2 block with any, -1 elsewhere."""
    h2, w2 = -(-height // 2), -(-width // 2)
    covered = np.zeros((2 * h2, 2 * w2), bool)
    covered[:height, :width] = (owner >= 0).reshape(height, width)
    quads = covered.reshape(h2, 2, w2, 2)
    by, bx = np.nonzero(quads.any((1, 3)))
    flat = (2 * (by * width + bx))[:, None] + np.array([0, 1, width, width + 1])
    return np.where(quads[by, :, bx, :].reshape(-1, 4), flat, -1)


def _surface_points(tris: _Triangles, owner: np.ndarray, flat: np.ndarray,
                    width: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) float32 positions (clamped onto the owning triangle) and normals of texels."""
    r = tris.rows[owner[flat]]
    dx = (flat % width - r[:, 9]).astype(np.float32)[:, None]
    dy = (flat // width - r[:, 10]).astype(np.float32)[:, None]
    b = np.maximum(r[:, 0:3] + r[:, 3:6] * dx + r[:, 6:9] * dy, 0)
    b /= b.sum(1, keepdims=True)
    return b[:, 0:1] * r[:, 11:14] + b[:, 1:2] * r[:, 14:17] + b[:, 2:3] * r[:, 17:20], r[:, 20:23]


def splat_field(splats: Splats) -> SplatField | None:
    """The splats arranged for ``_weigh`` (see ``SplatField``); None without splats."""
    if not len(splats):
        return None
    m = len(splats)
    # Stored cell by cell (ARRANGE_M squares, row by row), so a texel's neighbours lie close in
    # memory: the gathers of their coefficients miss the cache far less (20 % faster sums).
    cell = np.floor(splats.position[:, :2] / ARRANGE_M).astype(np.int64)
    order = np.lexsort((cell[:, 0], cell[:, 1]))
    origin = splats.position.astype(np.float64).mean(0)
    poly = np.zeros((m + 1, 10))
    rest = np.zeros((m + 1, 7), np.float32)
    for s in range(0, m, FIELD_SLICE):  # slices: the (n, 3, 3) float64 temporaries stay small
        sl = slice(s, min(s + FIELD_SLICE, m))
        poly[sl], rest[sl, 0:3] = _quadrics(splats.take(order[sl]), origin)
    rest[:m, 3:6] = splats.colour[order]
    rest[:m, 6] = 1
    return SplatField(tree=cKDTree(splats.position[order], balanced_tree=False, compact_nodes=False),
                      origin=origin, poly=poly, rest=rest,
                      reach=REACH_SIGMAS * float(splats.scale.max()),
                      sigma=float(np.median(np.maximum(splats.scale[:, 0], splats.scale[:, 1]))))


def _quadrics(splats: Splats, origin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, 10) float64 log-weight coefficients (see ``SplatField``) and (n, 3) normals of splats."""
    mu = (splats.position - origin).T                                  # (3, n)
    frames = splats.frames().astype(np.float64)                         # (n, 3, 3) columns u, v, n
    scale = np.maximum(splats.scale.astype(np.float64), 1e-6)
    half_inv_var = 0.5 / np.stack([scale[:, 0], scale[:, 1], np.maximum(scale[:, 0], scale[:, 1])]) ** 2  # u, v, n
    # Q = R diag(half_inv_var) R^T, entry by entry over all splats at once (batched 3x3 matrix
    # products cost far more than these few dozen array operations).
    axes = [[frames[:, i, k] for k in range(3)] for i in range(3)]      # axes[i][k]: row i of column k
    q = {(i, j): sum(axes[i][k] * half_inv_var[k] * axes[j][k] for k in range(3))
         for i in range(3) for j in range(i, 3)}
    entry = lambda i, j: q[min(i, j), max(i, j)]
    grad = [2 * sum(entry(i, j) * mu[j] for j in range(3)) for i in range(3)]
    poly = np.empty((len(scale), 10))
    poly[:, 0:3] = -np.column_stack([q[0, 0], q[1, 1], q[2, 2]])
    poly[:, 3:6] = -2 * np.column_stack([q[0, 1], q[0, 2], q[1, 2]])
    poly[:, 6:9] = np.column_stack(grad)
    poly[:, 9] = np.log(np.maximum(splats.opacity, 1e-30)) - 0.5 * sum(g * m for g, m in zip(grad, mu))
    return poly, frames[:, :, 2]


def _monomials(points: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """(G, 10, T) float64 monomials (x², y², z², xy, xz, yz, x, y, z, 1) of (G, T, 3) points."""
    x, y, z = np.moveaxis(points.astype(np.float64) - origin, 2, 0)
    return np.stack([x * x, y * y, z * z, x * y, x * z, y * z, x, y, z, np.ones_like(x)], 1)


def _weigh(field: SplatField, points: np.ndarray, normals: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(G, T, 4) weighted colour sums and total weights of texel groups (G, T) over splats idx (G, K)."""
    rest = field.rest[idx]                                                    # (G, K, 7)
    log_w = (field.poly[idx] @ _monomials(points, field.origin)).astype(np.float32)  # (G, K, T)
    facing = rest[..., 0:3] @ normals.transpose(0, 2, 1)
    w = np.exp(log_w) * np.maximum(facing, 0)
    return (rest[..., 3:7].transpose(0, 2, 1) @ w).transpose(0, 2, 1)


def _shade(field: SplatField, points: np.ndarray, normals: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """(G, T, 4) weighted colour sums and weights of texel groups (G, T) over their splats idx (G, K)."""
    out = np.empty(points.shape[:2] + (4,), np.float32)
    for s in range(0, len(points), MATH_GROUPS):
        sl = slice(s, s + MATH_GROUPS)
        out[sl] = _weigh(field, points[sl], normals[sl], idx[sl])
    return out


def _nearest(field: SplatField, centres: np.ndarray, k: int, bound: float) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices) (N, k) of the k nearest splats within ``bound`` of each centre."""
    k = min(k, len(field.poly) - 1)
    dist, idx = field.tree.query(centres, k=k, distance_upper_bound=bound)
    return dist.reshape(len(centres), k), idx.reshape(len(centres), k)


def _block_neighbours(field: SplatField, texel_m: float) -> int:
    """Splats to fetch for a 2x2 block: about how many lie within a block's texels' spread plus
    REACH_SIGMAS median sigmas of its centre (surfels lie about two sigmas apart), with a margin."""
    radius = BLOCK_SPREAD * texel_m / 2 + REACH_SIGMAS * field.sigma
    expected = np.pi * radius ** 2 / (2 * field.sigma) ** 2
    return int(np.clip(np.ceil(1.25 * expected), *BLOCK_NEIGHBOURS))


def _splat_sums(field: SplatField, points: np.ndarray, normals: np.ndarray,
                valid: np.ndarray, texel_m: float) -> np.ndarray:
    """(B, 4, 4) weighted colour sums and weights of 2x2 blocks of texels (B, 4, 3).

    A block whose texels lie close together shares one search for ``_block_neighbours`` splats
    around its centre when those hold every splat within REACH_SIGMAS median splat sigmas of its texels
    (what weighs on them but for the rare large splat): the farthest found lies beyond the texels'
    spread plus that (or fewer were found within it). Texels of the other blocks (straddling a
    chart border or a fold, or among splats too dense for the search) are searched one by one.
    Empty slots have a zero normal, so they weigh nothing.
    """
    centre = (points * valid[..., None]).sum(1) / valid.sum(1, keepdims=True)
    spread = np.where(valid, np.linalg.norm(points - centre[:, None], axis=2), 0).max(1)
    near = np.flatnonzero(spread <= BLOCK_SPREAD * texel_m)
    dist, idx = _nearest(field, centre[near], _block_neighbours(field, texel_m), field.reach + BLOCK_SPREAD * texel_m)
    holds_all = dist[:, -1] >= spread[near] + REACH_SIGMAS * field.sigma  # inf (fewer found) counts too
    shared = np.zeros(len(points), bool)
    shared[near[holds_all]] = True
    out = np.zeros(points.shape[:2] + (4,), np.float32)
    # Blocks and texels with no splat within reach weigh nothing: the voxels will colour them.
    reached = holds_all & np.isfinite(dist[:, 0])
    weighed = np.zeros(len(points), bool)
    weighed[near[reached]] = True
    out[weighed] = _shade(field, points[weighed], normals[weighed], idx[reached])
    lone = ~shared[:, None] & valid
    lone_dist, lone_idx = _nearest(field, points[lone], TEXEL_NEIGHBOURS, field.reach)
    found = np.isfinite(lone_dist[:, 0])
    lone[lone] = found
    out[lone] = _shade(field, points[lone][:, None], normals[lone][:, None], lone_idx[found])[:, 0]
    return out


def _bake_blocks(tris: _Triangles, owner: np.ndarray, blocks: np.ndarray, field: BakeField,
                 width: int, texel_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Texels of some blocks: (flat index, colour in [0, 1]), covered ones only: the splats'
    weighted colour, or the nearest voxel's where no splat weighs (see the module docstring)."""
    valid = blocks >= 0
    flat = blocks[valid]
    position, normal = _surface_points(tris, owner, flat, width)
    colour, weight = np.zeros((len(flat), 3), np.float32), np.zeros(len(flat), np.float32)
    if field.splats is not None:
        points = np.zeros(blocks.shape + (3,), np.float32)
        normals = np.zeros(blocks.shape + (3,), np.float32)
        points[valid], normals[valid] = position, normal
        sums = _splat_sums(field.splats, points, normals, valid, texel_m)[valid]
        colour, weight = sums[:, :3] / np.maximum(sums[:, 3:], 1e-30), sums[:, 3]
    bare = weight < MIN_WEIGHT
    if bare.any():
        colour[bare] = _voxel_colours(field, position[bare], tris.kind[owner[flat[bare]]])
    return flat, colour


def _voxel_colours(field: BakeField, points: np.ndarray, kinds: np.ndarray) -> np.ndarray:
    """(N, 3) float32 colours in [0, 1] of the voxels nearest to points among those of the
    points' mesh ``kinds`` (among all where the scene has none of a kind; mid grey without voxels)."""
    out = np.full((len(points), 3), 0.5, np.float32)
    best = np.full(len(points), np.inf)
    unmatched = ~np.isin(kinds, list(field.voxels))
    for kind, (tree, colour) in field.voxels.items():
        at = np.flatnonzero((kinds == kind) | unmatched)
        dist, nearest = tree.query(points[at])
        closer = dist < best[at]
        out[at[closer]], best[at[closer]] = colour[nearest[closer]], dist[closer]
    return out


def _dilate(image: np.ndarray, covered: np.ndarray, background: np.ndarray, dilate_px: int,
            map_: Callable = map) -> np.ndarray:
    """Copy the nearest covered texel into uncovered ones within ``dilate_px``; ``background`` beyond.

    Nearest in the chessboard metric, which is what a bilinear footprint reaches; it is also a
    third of the cost of the Euclidean transform on large atlases. Done in strips of DILATE_ROWS
    rows (with ``dilate_px`` rows either side, so every texel within reach is seen): the
    transform over a whole large atlas is three times slower than over its strips. ``map_`` runs
    the strips (a thread pool's map: each writes only its own uncovered texels and reads only
    covered ones).
    """
    if covered.all() or not covered.any():
        return image
    height = covered.shape[0]

    def strip(top: int) -> None:
        lo, bottom = max(top - dilate_px, 0), min(top + DILATE_ROWS, height)
        hi = min(bottom + dilate_px, height)
        rows = image[top:bottom]
        if not covered[lo:hi].any():
            rows[...] = background
            return
        dist, (ri, ci) = ndimage.distance_transform_cdt(~covered[lo:hi], metric="chessboard", return_indices=True)
        own = slice(top - lo, bottom - lo)
        dist, ri, ci = dist[own], ri[own], ci[own]
        near = (dist > 0) & (dist <= dilate_px)
        rows[near] = image[ri[near] + lo, ci[near]]
        rows[dist > dilate_px] = background

    for _ in map_(strip, range(0, height, DILATE_ROWS)):
        pass
    return image


def bake_albedo(atlas: Atlas, scene: Scene, dilate_px: int = 8, threads: int | None = None,
                progress: Callable[[float, str], None] | None = None,
                field: Future[BakeField] | None = None) -> np.ndarray:
    """(H, W, 3) uint8 sRGB albedo of the atlas, row 0 at v = 0 (see the module docstring).

    ``threads``: how many threads to use (default every core); callers that already run one bake
    per core pass 1, so they do not oversubscribe. The image does not depend on it.
    ``progress(fraction, message)`` hears how far the texels are. ``field``: ``bake_field(scene)``
    being prepared (or done) elsewhere, for callers that start it early or bake several atlases of
    one scene (a chunk's LODs); by default it is prepared here while the charts are rasterised.
    """
    threads = threads or cores()
    width, height = atlas.width, atlas.height
    texel_m = 1 / atlas.texels_per_metre
    image = np.zeros((height * width, 3), np.uint8)
    # Chunks are independent and numpy / cKDTree release the GIL, so threads use every core.
    with ThreadPoolExecutor(threads) as pool:
        field = field or pool.submit(bake_field, scene)
        tris = _triangles(atlas)
        owner = _owners(tris, width, height)
        if progress is not None:
            progress(0.0, "charts rasterised")
        painted = np.flatnonzero(owner >= 0)
        painted = painted[np.isfinite(tris.painted[owner[painted], 0])]
        image[painted] = to_u8(tris.painted[owner[painted]])
        baked = owner.copy()
        baked[painted] = -1
        blocks = _blocks(baked, width, height)
        while not wait([field], timeout=HEARTBEAT_S).done:
            if progress is not None:
                progress(0.0, "arranging splats")
        sources = field.result()
        chunks = [blocks[s:s + BLOCK_CHUNK] for s in range(0, len(blocks), BLOCK_CHUNK)]
        for done, (flat, colour) in enumerate(pool.map(
                lambda c: _bake_blocks(tris, owner, c, sources, width, texel_m), chunks), 1):
            image[flat] = to_u8(colour)
            if progress is not None:
                progress(done / len(chunks), f"{done}/{len(chunks)} texel blocks")
        covered = owner >= 0
        # The background colour: the mean of a regular sample of the covered texels is plenty.
        background = image[np.flatnonzero(covered)[::97]].mean(0).round() if covered.any() else 0
        return _dilate(image.reshape(height, width, 3), covered.reshape(height, width), background, dilate_px,
                       pool.map)
