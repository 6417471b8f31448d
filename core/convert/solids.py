"""Columns -> the top surface of each kind's solid, and any top surface -> its closed solid.

Grid corner (a, b) lies at (x0 + a*size, y0 + b*size). Masked cells that meet at a corner share
its vertex when they are joined around it through their common sides; cells touching only
diagonally, or across a side cut by a roof step, get a vertex each, so every edge of the closed
solid has exactly two faces. Faces are counter-clockwise seen from outside.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..schemes import SurfaceKind
from .columns import ColumnGrid, Columns

CANOPY_ROUNDING = 1.5  # metres over which a canopy rounds off towards its rim
UNDERSIDE_SMOOTHING_M = 2.0  # a canopy's underside is smoothed over this many metres
# A jump between neighbouring roof cells above this many metres, or cell widths, is a wall,
# not a slope: steeper than about 56 degrees and at least a metre.
STEP_METRES, STEP_CELLS = 1.0, 1.5


@dataclass
class Surface:
    """The top of one kind's solid; its walls and underside follow from it (see ``close``).

    Prism kinds get a vertical wall under every boundary edge, down to ``under``, and an
    underside mirroring the top at ``under``. Canopies (``lens``) have no walls: their boundary
    vertices are the rim, shared by the top and the underside (their ``under`` is unused).
    """

    kind: SurfaceKind
    vertices: np.ndarray  # (V, 3) float64
    faces: np.ndarray     # (F, 3) int64, counter-clockwise seen from above
    under: np.ndarray     # (V,) float64 z of the underside below each vertex
    class_id: np.ndarray  # (V,) uint8
    locked: np.ndarray | None = None  # (V,) bool: on a cut (see ``Cut``), kept where it is by ``simplify``

    @property
    def lens(self) -> bool:
        return self.kind == SurfaceKind.VEGETATION

    @cached_property
    def rim(self) -> np.ndarray:
        """(B, 2) boundary edges of the top, counter-clockwise round it seen from above."""
        return boundary_edges(self.faces)

    @property
    def closed_face_count(self) -> int:
        """Faces of ``close(self)``: top, underside and two per wall edge."""
        return 2 * len(self.faces) + (0 if self.lens else 2 * len(self.rim))


@dataclass
class ClosedMesh:
    """A closed solid: every edge has exactly two faces."""

    vertices: np.ndarray  # (V, 3) float64
    faces: np.ndarray     # (F, 3) int64
    class_id: np.ndarray  # (V,) uint8
    hidden: np.ndarray    # (F,) bool: underside faces


@dataclass
class CellCorners:
    """The masked cells and the vertex of each of their corners."""

    i: np.ndarray       # (n,) cell index east
    j: np.ndarray       # (n,) cell index north
    ids: np.ndarray     # (n, 4) vertex of the SW, SE, NE, NW corner
    corner: np.ndarray  # (V, 2) grid corner (a, b) of each vertex


@dataclass
class Joins:
    """Which neighbouring cells share their common side (and so its corner vertices)."""

    east: np.ndarray   # (nx, ny) bool: cell (i, j) with (i + 1, j)
    north: np.ndarray  # (nx, ny) bool: cell (i, j) with (i, j + 1)

    @classmethod
    def of_mask(cls, mask: np.ndarray) -> Joins:
        east, north = np.zeros_like(mask), np.zeros_like(mask)
        east[:-1] = mask[:-1] & mask[1:]
        north[:, :-1] = mask[:, :-1] & mask[:, 1:]
        return cls(east, north)


@dataclass(frozen=True)
class Cut:
    """Where a world chunk cuts solids that go on beyond its square: the columns of those solids
    just past the square (``context``). They are meshed with the rest, so everything that depends
    on neighbouring columns (a corner's height, a roof step, a canopy's rounding and smoothed
    underside) comes out as the neighbouring chunk computes it, then their faces are dropped:
    the two chunks' surfaces meet on the square's side. With ``locked`` its vertices there stay
    at full resolution (``Surface.locked``), the same in both chunks; without (a coarser LOD,
    whose geometric error covers it), they are simplified like a rim's."""

    context: np.ndarray  # (rows, cols) bool, row 0 north, cells of ``gsd`` metres
    west: float          # tile-frame x of the raster's west edge
    north: float         # tile-frame y of its north edge
    gsd: float
    locked: bool = True

    def kept(self, grid: ColumnGrid, shape: tuple[int, int]) -> np.ndarray:
        """(nx, ny) bool: the columns of the grid that are not context."""
        col = np.floor((grid.x0 + (np.arange(shape[0]) + 0.5) * grid.size - self.west) / self.gsd).astype(np.int64)
        row = np.floor((self.north - grid.y0 - (np.arange(shape[1]) + 0.5) * grid.size) / self.gsd).astype(np.int64)
        rows, cols = self.context.shape
        inside = ((col >= 0) & (col < cols))[:, None] & ((row >= 0) & (row < rows))[None, :]
        return ~(inside & self.context[np.clip(row, 0, rows - 1)[None, :], np.clip(col, 0, cols - 1)[:, None]])


def kind_surface(cols: Columns, grid: ColumnGrid, cut: Cut | None = None) -> Surface:
    """``cut``: where a world chunk cuts solids (see ``Cut``)."""
    keep = None if cut is None else cut.kept(grid, cols.mask.shape)
    lens = cols.kind == SurfaceKind.VEGETATION
    surface = lens_surface(cols, grid, keep) if lens else _prism(cols, grid, keep)
    return surface if cut is None or cut.locked else dataclasses.replace(surface, locked=None)


def _prism(cols: Columns, grid: ColumnGrid, keep: np.ndarray | None) -> Surface:
    joins = Joins.of_mask(cols.mask)
    bottom = cols.bottom
    if cols.kind == SurfaceKind.BUILDING:
        joins = roof_joins(joins, cols.top, max(STEP_METRES, STEP_CELLS * grid.size))
        # One flat underside per building: hidden anyway, and cheap to simplify.
        parts = _components(cols.mask, joins)
        lows = ndimage.minimum(cols.bottom, parts, np.arange(1, parts.max() + 1))
        bottom = np.concatenate([[0.0], np.atleast_1d(lows)])[parts]
    return prism_surface(cols.kind, cols.mask, joins, cols.top, bottom, cols.class_id, grid, keep)


def roof_joins(joins: Joins, top: np.ndarray, step: float) -> Joins:
    """Cut the sides across which the roof jumps by more than ``step``: a tower on a podium or
    two buildings of different heights get a vertical wall there instead of a steep slope."""
    east, north = joins.east.copy(), joins.north.copy()
    east[:-1] &= np.abs(top[1:] - top[:-1]) <= step
    north[:, :-1] &= np.abs(top[:, 1:] - top[:, :-1]) <= step
    return Joins(east, north)


def _components(mask: np.ndarray, joins: Joins) -> np.ndarray:
    """(nx, ny) label (1..n) of the cells connected through joined sides, 0 off the mask."""
    idx = np.full(mask.shape, -1, np.int64)
    idx[mask] = np.arange(mask.sum())
    ie, jn = np.nonzero(joins.east), np.nonzero(joins.north)
    rows = np.concatenate([idx[ie], idx[jn]])
    cols = np.concatenate([idx[ie[0] + 1, ie[1]], idx[jn[0], jn[1] + 1]])
    n = int(mask.sum())
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    labels = np.zeros(mask.shape, np.int64)
    labels[mask] = connected_components(graph, directed=False)[1] + 1
    return labels


def cell_corners(mask: np.ndarray, joins: Joins) -> CellCorners:
    """Corner vertices of the masked cells.

    Around each grid corner the four cells (SW, SE, NE, NW) form a cycle; a run of consecutive
    cells joined across the sides between them shares one vertex. Cells touching only
    diagonally, or across a cut side, are separate runs and get a vertex each.
    """
    p = np.pad(mask, 1)
    around = np.stack([p[:-1, :-1], p[1:, :-1], p[1:, 1:], p[:-1, 1:]])  # SW, SE, NE, NW of each corner
    je, jn = np.pad(joins.east, 1), np.pad(joins.north, 1)
    # Side between each cell and the next one round: SW|SE, SE|NE, NE|NW, NW|SW.
    joined = np.stack([je[:-1, :-1], jn[1:, :-1], je[:-1, 1:], jn[:-1, :-1]])
    start = around & ~np.roll(joined, 1, axis=0)
    runs = start.sum(0)
    run = np.cumsum(start, 0) - 1
    # Cells before the first start belong to the run that wraps round; four cells all joined
    # have no start at all and one run.
    run = np.where(run < 0, np.maximum(runs - 1, 0), run)
    count = np.where(around.any(0), np.maximum(runs, 1), 0)
    first = np.cumsum(count.ravel()).reshape(count.shape) - count
    vid = first + run
    i, j = np.nonzero(mask)
    ids = np.stack([vid[2, i, j], vid[3, i + 1, j], vid[0, i + 1, j + 1], vid[1, i, j + 1]], -1)
    corner = np.repeat(np.argwhere(np.ones(count.shape, bool)), count.ravel(), axis=0)
    return CellCorners(i, j, ids, corner)


def _vertex_mean(cc: CellCorners, values: np.ndarray) -> np.ndarray:
    """Mean over the cells sharing each vertex of a per-cell value."""
    n = len(cc.corner)
    flat = cc.ids.ravel()
    return np.bincount(flat, np.repeat(values, 4), minlength=n) / np.bincount(flat, minlength=n)


def _split_quads(ids: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Two counter-clockwise triangles per quad (SW, SE, NE, NW), cut along its flatter diagonal."""
    sw, se, ne, nw = ids.T
    along_sw_ne = (np.abs(z[sw] - z[ne]) <= np.abs(z[se] - z[nw]))[:, None]
    a = np.where(along_sw_ne, np.stack([sw, se, ne], -1), np.stack([sw, se, nw], -1))
    b = np.where(along_sw_ne, np.stack([sw, ne, nw], -1), np.stack([se, ne, nw], -1))
    return np.concatenate([a, b])


def prism_surface(kind: SurfaceKind, mask: np.ndarray, joins: Joins, top: np.ndarray,
                  bottom: np.ndarray, cls: np.ndarray, grid: ColumnGrid, keep: np.ndarray | None = None) -> Surface:
    """Each corner at the mean height of the cells sharing its vertex: roofs follow the column
    heights while the walls under the boundary (and under cut sides) stay vertical. ``keep``:
    (nx, ny) bool, the cells whose faces are kept (see ``Cut``); default all."""
    cc = cell_corners(mask, joins)
    xy = np.array([grid.x0, grid.y0]) + cc.corner * grid.size
    z = _vertex_mean(cc, top[cc.i, cc.j])
    vcls = np.zeros(len(cc.corner), np.uint8)
    np.maximum.at(vcls, cc.ids.ravel(), np.repeat(cls[cc.i, cc.j], 4))
    vertices, under = np.column_stack([xy, z]), _vertex_mean(cc, bottom[cc.i, cc.j])
    if keep is None:
        return Surface(kind, vertices, _split_quads(cc.ids, z), under, vcls)
    ids, vertex = _unpinched(cc, mask, joins, keep)
    surface = Surface(kind, vertices[vertex], _split_quads(ids, z[vertex]), under[vertex], vcls[vertex])
    face_cell = np.tile(np.arange(len(cc.i)), 2)  # _split_quads: one triangle of every quad, then the other
    return _trimmed(surface, keep[cc.i, cc.j][face_cell], vertex)


def _unpinched(cc: CellCorners, mask: np.ndarray, joins: Joins, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the cells' corner ids, the vertex of ``cc`` each id stands for) once the cells off ``keep``
    are dropped: kept cells that shared a vertex only through dropped ones (joined round a corner
    through the context, not to each other) get a vertex each, a copy at the end, so no corner is
    left with two boundary loops through it. Elsewhere the ids are ``cc``'s."""
    kept = keep[cc.i, cc.j]
    both_east, both_north = keep.copy(), keep.copy()
    both_east[:-1] &= keep[1:]
    both_north[:, :-1] &= keep[:, 1:]
    kept_joins = Joins(joins.east & both_east, joins.north & both_north)
    runs = cell_corners(mask & keep, kept_joins).ids  # the kept cells, in cc's order
    full = cc.ids[kept]
    span = int(runs.max(initial=0)) + 1
    pairs, inverse = np.unique(full * span + runs, return_inverse=True)
    vertex = pairs // span
    copy = np.zeros(len(pairs), bool)
    copy[1:] = vertex[1:] == vertex[:-1]  # a second (third, ...) run round one vertex
    new_id = np.where(copy, len(cc.corner) + np.cumsum(copy) - 1, vertex)
    ids = cc.ids.copy()
    ids[kept] = new_id[inverse.reshape(full.shape)]
    return ids, np.concatenate([np.arange(len(cc.corner)), vertex[copy]])


def _trimmed(surface: Surface, kept: np.ndarray, source: np.ndarray | None = None) -> Surface:
    """The surface's ``kept`` faces (a (F,) bool mask); vertices that dropped faces used as well lie
    on the cut and are locked, and so do their copies (``source``: the vertex each vertex copies,
    see ``_unpinched``; default none)."""
    n = len(surface.vertices)
    used, dropped = np.zeros(n, bool), np.zeros(n, bool)
    used[surface.faces[kept]] = True
    dropped[surface.faces[~kept]] = True
    if source is not None:
        dropped = dropped[source]
    index = np.cumsum(used) - 1
    return Surface(surface.kind, surface.vertices[used], index[surface.faces[kept]], surface.under[used],
                   surface.class_id[used], dropped[used])


@dataclass
class LensPoints:
    lattice: np.ndarray  # (P, 2) position in half-cell steps: corners even/even, centres odd/odd
    point: np.ndarray    # (Q,) point of each (point, cell) pair: a point averages its cells
    cell: np.ndarray     # (Q,) index into the masked cells
    fans: np.ndarray     # (F, 3) top triangles, counter-clockwise from above


def lens_surface(cols: Columns, grid: ColumnGrid, keep: np.ndarray | None = None) -> Surface:
    """A rounded canopy: halfway between top and bottom on the rim, pulled towards the full
    top and bottom by a quarter-circle profile of the distance to the rim. ``keep``: (nx, ny)
    bool, the cells whose faces are kept (see ``Cut``); default all."""
    cc = cell_corners(cols.mask, Joins.of_mask(cols.mask))
    kept = np.ones(len(cc.i), bool) if keep is None else keep[cc.i, cc.j]
    pts = _lens_points(cols.mask, cc, kept)
    n = len(pts.lattice)
    top = _point_mean(pts, cols.top[cc.i, cc.j], n)
    under = _point_mean(pts, _smoothed(cols.bottom, cols.mask, grid.size)[cc.i, cc.j], n)
    u, v = pts.lattice.T
    depth = _rim_distance(cols.mask, grid.size)[u, v] / CANOPY_ROUNDING
    shape = np.sqrt(1 - (1 - np.minimum(depth, 1)) ** 2)  # 0 on the rim, 1 from CANOPY_ROUNDING in
    half = (top + under) / 2
    xy = np.array([grid.x0, grid.y0]) + pts.lattice * (grid.size / 2)
    cls = np.zeros(n, np.uint8)
    np.maximum.at(cls, pts.point, cols.class_id[cc.i, cc.j][pts.cell])
    surface = Surface(cols.kind, np.column_stack([xy, half + (top - half) * shape]), pts.fans,
                      half + (under - half) * shape, cls)
    face_cell = pts.fans[:, 2] - len(cc.corner)  # every fan ends at its cell's centre
    return surface if keep is None else _trimmed(surface, kept[face_cell])


def _smoothed(values: np.ndarray, mask: np.ndarray, size: float) -> np.ndarray:
    """``values`` averaged over the masked cells within UNDERSIDE_SMOOTHING_M: a canopy's underside
    comes from whole voxels, and without this it is a staircase seen from below."""
    cells = max(3, int(round(UNDERSIDE_SMOOTHING_M / size)) | 1)
    weight = ndimage.uniform_filter(mask.astype(np.float64), cells, mode="constant")
    total = ndimage.uniform_filter(np.where(mask, values, 0.0), cells, mode="constant")
    return np.where(mask, total / np.maximum(weight, 1e-12), values)


def _lens_points(mask: np.ndarray, cc: CellCorners, kept: np.ndarray) -> LensPoints:
    """Corners, cell centres and the midpoints of chords: inner cell sides whose two ends both
    lie on the rim. Each cell is a fan around its centre, split at chord midpoints: a chord
    would otherwise be an edge of both the top and the underside (four faces on one edge).
    ``kept``: (n,) bool, the cells whose faces are kept (the rim is theirs)."""
    n_corner, n_cell = len(cc.corner), len(cc.i)
    cell_of = np.full(np.add(mask.shape, 2), -1, np.int64)  # padded: -1 off the mask
    cell_of[cc.i + 1, cc.j + 1] = np.arange(n_cell)
    rim = np.bincount(cc.ids[kept].ravel(), minlength=n_corner) < 4
    east, north = cell_of[cc.i + 2, cc.j + 1], cell_of[cc.i + 1, cc.j + 2]
    kept = np.append(kept, False)  # cell -1: none
    chord_e = kept[:-1] & kept[east] & rim[cc.ids[:, 1]] & rim[cc.ids[:, 2]]
    chord_n = kept[:-1] & kept[north] & rim[cc.ids[:, 2]] & rim[cc.ids[:, 3]]
    first_mid = n_corner + n_cell
    mid_e = np.full(n_cell + 1, -1, np.int64)  # the extra last entry answers cell index -1
    mid_e[:n_cell][chord_e] = first_mid + np.arange(chord_e.sum())
    mid_n = np.full(n_cell + 1, -1, np.int64)
    mid_n[:n_cell][chord_n] = first_mid + chord_e.sum() + np.arange(chord_n.sum())
    south, west = cell_of[cc.i + 1, cc.j], cell_of[cc.i, cc.j + 1]
    side_mid = np.stack([mid_n[south], mid_e[:n_cell], mid_n[:n_cell], mid_e[west]], -1)
    centre = n_corner + np.arange(n_cell)
    cells = np.arange(n_cell)
    ij = np.column_stack([cc.i, cc.j])
    lattice = np.concatenate([2 * cc.corner, 2 * ij + 1, 2 * ij[chord_e] + [2, 1], 2 * ij[chord_n] + [1, 2]])
    me, mn = mid_e[:n_cell][chord_e], mid_n[:n_cell][chord_n]
    point = np.concatenate([cc.ids.ravel(), centre, me, me, mn, mn])
    cell = np.concatenate([np.repeat(cells, 4), cells, cells[chord_e], east[chord_e], cells[chord_n],
                           north[chord_n]])
    return LensPoints(lattice, point, cell, _fans(cc.ids, centre, side_mid))


def _fans(ids: np.ndarray, centre: np.ndarray, side_mid: np.ndarray) -> np.ndarray:
    """Triangles from each cell side (split at its midpoint where it has one) to the cell centre."""
    tris = []
    for s in range(4):
        a, b, m = ids[:, s], ids[:, (s + 1) % 4], side_mid[:, s]
        whole = m < 0
        tris += [np.stack([a, b, centre], -1)[whole], np.stack([a, m, centre], -1)[~whole],
                 np.stack([m, b, centre], -1)[~whole]]
    return np.concatenate(tris)


def _point_mean(pts: LensPoints, values: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(pts.point, values[pts.cell], minlength=n) / np.bincount(pts.point, minlength=n)


def _rim_distance(mask: np.ndarray, size: float) -> np.ndarray:
    """Distance, metres, from each half-cell lattice point to the nearest point off the canopy.

    A lattice point is inside when every cell touching it is masked; the rim is then at 0.
    """
    p = np.pad(mask, 1)
    u = np.arange(2 * mask.shape[0] + 1)
    v = np.arange(2 * mask.shape[1] + 1)
    lo_u, hi_u, lo_v, hi_v = (u + 1) // 2, u // 2 + 1, (v + 1) // 2, v // 2 + 1
    inside = p[np.ix_(lo_u, lo_v)] & p[np.ix_(lo_u, hi_v)] & p[np.ix_(hi_u, lo_v)] & p[np.ix_(hi_u, hi_v)]
    return ndimage.distance_transform_edt(np.pad(inside, 1), sampling=size / 2)[1:-1, 1:-1]


def boundary_edges(faces: np.ndarray) -> np.ndarray:
    """(B, 2) directed edges of ``faces`` that no other face shares, in face order."""
    edges, _, either = edge_counts(faces)
    return edges[either == 1]


def edge_counts(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(E, 2) directed edges of ``faces`` in face order, how often each occurs as it is, and how
    often either way round. A sparse matrix sums duplicate edges in linear time, where sorting
    the edges (the obvious way) costs five times as much."""
    edges = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    if not len(edges):
        return edges, np.zeros(0, np.int32), np.zeros(0, np.int32)
    n = int(faces.max()) + 1
    directed = coo_matrix((np.ones(len(edges), np.int32), (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    either = (directed + directed.T).tocsr()
    a, b = edges[:, 0], edges[:, 1]
    return edges, np.asarray(directed[a, b]).ravel(), np.asarray(either[a, b]).ravel()


def close(surface: Surface) -> ClosedMesh:
    """The closed solid under a top surface: walls (or a shared rim) and the underside, hidden
    but for a canopy's (trees stand on trunks, so it is seen from the side)."""
    top = surface.faces
    n = len(surface.vertices)
    rim = surface.rim
    twin = np.ones(n, bool)
    if surface.lens:
        twin[rim[:, 0]] = False  # rim vertices are their own underside
    under_id = np.arange(n)
    under_id[twin] = n + np.arange(twin.sum())
    a, b = rim[:, 0], rim[:, 1]
    walls = [] if surface.lens else [np.stack([under_id[a], under_id[b], b], -1),
                                     np.stack([under_id[a], b, a], -1)]
    faces = np.concatenate([top, under_id[top][:, ::-1], *walls])
    hidden = np.zeros(len(faces), bool)
    hidden[len(top):2 * len(top)] = not surface.lens  # a canopy's underside floats on trunks: seen
    lower = np.column_stack([surface.vertices[:, :2], surface.under])[twin]
    return ClosedMesh(np.concatenate([surface.vertices, lower]), faces,
                      np.concatenate([surface.class_id, surface.class_id[twin]]), hidden)
