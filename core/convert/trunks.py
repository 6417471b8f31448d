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
from ..raster import Grid, heights
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
        over = self._canopy(top.vertices[top.faces]) - HEAD_DEPTH_M
        kept = over > self.foot + MIN_CLEARANCE_M  # NaN where nothing covers: not kept
        return dataclasses.replace(self.subset(kept), head=np.minimum(self.head, over)[kept])

    def _canopy(self, triangles: np.ndarray) -> np.ndarray:
        """(n,) height of the highest of the (F, 3, 3) triangles over each trunk's centre, NaN
        where none: seen from above on the trunks' lattice, over the cells they span."""
        x0, y0, size = self.lattice
        if not len(self.xy):
            return np.zeros(0)
        cells = np.round((self.xy - [x0, y0]) / size - 0.5).astype(np.int64)
        (west, south), (east, north) = cells.min(0), cells.max(0)
        grid = Grid(x0 + west * size, y0 + (north + 1) * size, size, size, east - west + 1, north - south + 1)
        return heights(triangles, grid)[north - cells[:, 1], cells[:, 0] - west]

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


def with_trunks(solid: ClosedMesh, trunks: ClosedMesh) -> tuple[ClosedMesh, np.ndarray]:
    """(the canopy's solid and its trunks as one mesh, each still closed; (F, 3) float32 albedo of
    its faces painted rather than baked: the trunks' BARK, NaN on the canopy)."""
    joined = _stacked([solid, trunks])
    painted = np.full((len(joined.faces), 3), np.nan, np.float32)
    painted[len(solid.faces):] = BARK
    return joined, painted
