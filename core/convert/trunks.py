"""Trunks: canopies stand on the ground instead of floating at their underside.

A canopy's solid spans [bottom, top] of its columns, its underside well above the ground (trees
are voxelised from CANOPY_BASE of their height up). Each crown gets one trunk from the ground into
the canopy (halfway between its underside and top). Crowns are the canopy's highest points within
CROWN_M of each other (one per tree, several across a wood); the trunk's side grows with the
canopy's height (TRUNK_PER_M), within TRUNK_SIDE_M. A trunk is a square box (12 triangles, its
bottom two hidden), or where boxes under every crown do not fit the faces allowed, under the
shorter trees a three-sided spike tapering into the crown (4 triangles, its bottom hidden): a
coarse LOD, drawn from afar, keeps a trunk under every crown instead of boxes under a few. The
trunks join the canopy's mesh (same kind and class).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..landcover import first_cells
from .columns import Columns
from .solids import ClosedMesh, Surface

CROWN_M = 5.0              # crowns closer than this share one trunk
MIN_CLEARANCE_M = 0.5      # a canopy whose underside is this close to the ground needs no trunk
HEAD_DEPTH_M = 0.1         # a trunk's head stays at least this far under the canopy's top
TRUNK_PER_M = 0.04         # trunk side per metre of canopy height ...
TRUNK_SIDE_M = (0.25, 0.8)  # ... within these
BARK = (0.30, 0.24, 0.18)  # sRGB albedo of trunks (no splat sees a trunk: they are painted)


@dataclass(frozen=True)
class _Shape:
    """A trunk in the unit cube (its footprint's centre at x = y = 0.5, ground z = 0, top z = 1),
    faces counter-clockwise seen from outside, the first ``bottom`` of them its hidden bottom."""
    corners: np.ndarray
    faces: np.ndarray
    bottom: int


BOX = _Shape(np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], float),
             np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
                       [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]]), 2)
_LOW = 0.5 - 3 ** 0.5 / 6  # an equilateral triangle of side 1 centred on (0.5, 0.5)
SPIKE = _Shape(np.array([[0, _LOW, 0], [1, _LOW, 0], [0.5, _LOW + 3 ** 0.5 / 2, 0], [0.5, 0.5, 1]]),
               np.array([[0, 2, 1], [0, 1, 3], [1, 2, 3], [2, 0, 3]]), 1)


def crown_cells(canopy: Columns, ground_top: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) of the column under each crown that needs a trunk: the highest of its neighbourhood
    (one cell per tie), and of every canopy without one, where the canopy floats more than
    MIN_CLEARANCE_M above the ground."""
    floats = canopy.mask & (canopy.bottom - ground_top > MIN_CLEARANCE_M)
    if not floats.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    top = np.where(floats, canopy.top, -np.inf)
    reach = max(3, int(round(CROWN_M / size)) | 1)
    peaks = floats & (top == ndimage.maximum_filter(top, size=reach, mode="constant", cval=-np.inf))
    # A small crown next to a taller one (closer than CROWN_M, not touching) is no peak of its
    # window, yet no other trunk holds it: every canopy gets at least its highest cell.
    canopies, count = ndimage.label(floats)
    bare = np.setdiff1d(np.arange(1, count + 1), canopies[peaks])
    if len(bare):
        peaks[tuple(np.array(ndimage.maximum_position(top, canopies, bare)).T)] = True
    labels, n = ndimage.label(peaks)
    return np.unravel_index(first_cells(labels, n), peaks.shape)  # one cell of each group of tied peaks


@dataclass
class Trunks:
    """Where trunks stand under crowns: their footprints' centres, feet and heads."""

    xy: np.ndarray        # (n, 2) float64 footprint centre
    foot: np.ndarray      # (n,) float64 z of the ground
    head: np.ndarray      # (n,) float64 z of the top, inside the crown
    height: np.ndarray    # (n,) float64 the tree's: from the ground to the crown's top
    class_id: np.ndarray  # (n,) uint8
    lattice: tuple[float, float, float] = (0.0, 0.0, 1.0)  # (x0, y0, size): the centres are its cells'

    @property
    def box_faces(self) -> int:
        """Faces of a box under every crown: the most these trunks take."""
        return len(self.xy) * len(BOX.faces)

    def subset(self, keep: np.ndarray) -> Trunks:
        return Trunks(self.xy[keep], self.foot[keep], self.head[keep], self.height[keep], self.class_id[keep],
                      self.lattice)

    def covered_by(self, top: Surface) -> Trunks:
        """Those ``top`` still covers, seen from above, their heads at least HEAD_DEPTH_M under
        it: a coarse LOD's simplifier may take a small crown away or lower it, and a trunk should
        neither stand alone nor pierce the canopy over it."""
        with np.errstate(divide="ignore", invalid="ignore"):
            over = _highest(self.xy, self.lattice, top.vertices[top.faces]) - HEAD_DEPTH_M
        kept = over > self.foot + MIN_CLEARANCE_M
        return dataclasses.replace(self.subset(kept), head=np.minimum(self.head, over)[kept])

    def solid(self, faces: int | None = None) -> ClosedMesh:
        """The trunks as closed solids within ``faces`` (default: no limit): boxes where all fit,
        else boxes under the tallest trees and spikes under the others, else spikes under as
        many of the tallest as fit; bottoms hidden."""
        n, box, spike = len(self.xy), len(BOX.faces), len(SPIKE.faces)
        if faces is None or n * box <= faces:
            boxes, spikes = n, 0
        elif n * spike <= faces:
            boxes = (faces - n * spike) // (box - spike)
            spikes = n - boxes
        else:
            boxes, spikes = 0, faces // spike
        order = np.argsort(-self.height, kind="stable")
        return _stacked([self.subset(np.sort(order[:boxes]))._shaped(BOX),
                         self.subset(np.sort(order[boxes:boxes + spikes]))._shaped(SPIKE)])

    def _shaped(self, shape: _Shape) -> ClosedMesh:
        """Every trunk as ``shape``, its side growing with the tree's height."""
        n, count = len(self.xy), len(shape.corners)
        side = np.clip(TRUNK_PER_M * self.height, *TRUNK_SIDE_M)
        low = np.column_stack([self.xy - side[:, None] / 2, self.foot])
        extent = np.column_stack([side, side, self.head - self.foot])
        vertices = (low[:, None] + shape.corners * extent[:, None]).reshape(-1, 3)
        faces = (shape.faces + count * np.arange(n)[:, None, None]).reshape(-1, 3)
        hidden = np.tile(np.arange(len(shape.faces)) < shape.bottom, n)
        return ClosedMesh(vertices, faces, np.repeat(self.class_id, count), hidden)


def trunks_under(canopy: Columns, ground_top: np.ndarray, x0: float, y0: float, size: float,
                 where: np.ndarray | None = None) -> Trunks:
    """A trunk per crown (``crown_cells``), in the columns' frame; with ``where``, (nx, ny) bool,
    only under the crowns whose cell it holds (crowns are found on the whole canopy)."""
    i, j = crown_cells(canopy, ground_top, size)
    if where is not None:
        i, j = i[where[i, j]], j[where[i, j]]
    ground, top, bottom = ground_top[i, j], canopy.top[i, j], canopy.bottom[i, j]
    return Trunks(np.column_stack([x0 + (i + 0.5) * size, y0 + (j + 0.5) * size]), ground, (top + bottom) / 2,
                  top - ground, canopy.class_id[i, j], (x0, y0, size))


def _stacked(meshes: list[ClosedMesh]) -> ClosedMesh:
    """Closed meshes as one (each still closed)."""
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    return ClosedMesh(np.concatenate([m.vertices for m in meshes]),
                      np.concatenate([m.faces + o for m, o in zip(meshes, offsets)]),
                      np.concatenate([m.class_id for m in meshes]), np.concatenate([m.hidden for m in meshes]))


def _highest(points: np.ndarray, lattice: tuple[float, float, float], triangles: np.ndarray) -> np.ndarray:
    """(P,) height of the highest of the (F, 3, 3) triangles over each of the (P, 2) points, cell
    centres of ``lattice`` (x0, y0, size), seen from above; -inf where none is. Each triangle is
    tested at the cells of its bounding box that hold a point only, so the cost follows the
    triangles' area, not points times triangles."""
    x0, y0, size = lattice
    top = np.full(len(points), -np.inf)
    if not len(points) or not len(triangles):
        return top
    # Coordinates in cells, cell centres on integers.
    u, v = (triangles[..., 0] - x0) / size - 0.5, (triangles[..., 1] - y0) / size - 0.5
    cells = np.round((points - [x0, y0]) / size - 0.5).astype(np.int64)
    low, rows = cells.min(0), int(np.ptp(cells[:, 1])) + 1
    keys = (cells[:, 0] - low[0]) * rows + cells[:, 1] - low[1]
    order = np.argsort(keys)
    i0, i1 = np.ceil(u.min(1) - 1e-9).astype(np.int64), np.floor(u.max(1) + 1e-9).astype(np.int64)
    j0, j1 = np.ceil(v.min(1) - 1e-9).astype(np.int64), np.floor(v.max(1) + 1e-9).astype(np.int64)
    w, h = np.maximum(i1 - i0 + 1, 0), np.maximum(j1 - j0 + 1, 0)
    face = np.repeat(np.arange(len(triangles)), w * h)
    local = np.arange(len(face)) - np.repeat(np.cumsum(w * h) - w * h, w * h)
    ci, cj = i0[face] + local % w[face], j0[face] + local // w[face]
    key = (ci - low[0]) * rows + cj - low[1]
    at = order[np.minimum(np.searchsorted(keys, key, sorter=order), len(keys) - 1)]
    hit = (keys[at] == key) & (cj >= low[1]) & (cj - low[1] < rows)
    face, ci, cj, at = face[hit], ci[hit], cj[hit], at[hit]
    a, b, c = (np.stack([u[face, k], v[face, k], triangles[face, k, 2]], 1) for k in range(3))
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    wb = ((ci - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (cj - a[:, 1])) / area
    wc = ((b[:, 0] - a[:, 0]) * (cj - a[:, 1]) - (ci - a[:, 0]) * (b[:, 1] - a[:, 1])) / area
    inside = (area != 0) & (wb >= 0) & (wc >= 0) & (wb + wc <= 1)
    z = a[:, 2] + wb * (b[:, 2] - a[:, 2]) + wc * (c[:, 2] - a[:, 2])
    np.maximum.at(top, at[inside], z[inside])
    return top


def with_trunks(solid: ClosedMesh, trunks: ClosedMesh) -> tuple[ClosedMesh, np.ndarray]:
    """(the canopy's solid and its trunks as one mesh, each still closed; (F, 3) float32 albedo of
    its faces painted rather than baked: the trunks' BARK, NaN on the canopy)."""
    joined = _stacked([solid, trunks])
    painted = np.full((len(joined.faces), 3), np.nan, np.float32)
    painted[len(solid.faces):] = BARK
    return joined, painted
