"""Trunks: canopies stand on the ground instead of floating at their underside.

A canopy's solid spans [bottom, top] of its columns, its underside well above the ground (trees
are voxelised from CANOPY_BASE of their height up). Each crown gets one trunk from the ground into
the canopy (halfway between its underside and top). Crowns are the canopy's highest points within
CROWN_M of each other (one per tree, several across a wood); the trunk's side grows with the
canopy's height (TRUNK_PER_M), within TRUNK_SIDE_M. A trunk is a square box (12 triangles, its
bottom two hidden) where every crown's box fits the faces allowed, else a three-sided spike
tapering into the crown (4 triangles, its bottom hidden): a coarse LOD, drawn from afar, keeps a
trunk under every crown instead of boxes under a few. The trunks join the canopy's mesh (same kind
and class).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..landcover import first_cells
from .columns import Columns
from .solids import ClosedMesh, Surface

CROWN_M = 5.0              # crowns closer than this share one trunk
MIN_CLEARANCE_M = 0.5      # a canopy whose underside is this close to the ground needs no trunk
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
    """Trunks to stand under crowns, all of one shape: their footprints' centres, feet and heads."""

    xy: np.ndarray        # (n, 2) float64 footprint centre
    foot: np.ndarray      # (n,) float64 z of the ground
    head: np.ndarray      # (n,) float64 z of the top, inside the crown
    height: np.ndarray    # (n,) float64 the tree's: from the ground to the crown's top
    class_id: np.ndarray  # (n,) uint8
    shape: _Shape = BOX

    @property
    def face_count(self) -> int:
        return len(self.xy) * len(self.shape.faces)

    def subset(self, keep: np.ndarray) -> Trunks:
        return Trunks(self.xy[keep], self.foot[keep], self.head[keep], self.height[keep], self.class_id[keep],
                      self.shape)

    def covered_by(self, top: Surface) -> Trunks:
        """Those whose head ``top`` still covers, seen from above: a coarse LOD's simplifier may
        take a small crown away, and its trunk should neither stand there alone nor pierce a lower
        canopy left there."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.subset(_highest(self.xy, top.vertices[top.faces]) >= self.head)

    def tallest(self, faces: int) -> Trunks:
        """Those under the tallest trees that fit in ``faces``, in their order."""
        most = faces // len(self.shape.faces)
        if len(self.xy) <= most:
            return self
        return self.subset(np.sort(np.argsort(-self.height, kind="stable")[:most]))

    def solid(self) -> ClosedMesh:
        """Every trunk as a closed solid of its shape, its side growing with the tree's height,
        bottoms hidden."""
        n, count = len(self.xy), len(self.shape.corners)
        side = np.clip(TRUNK_PER_M * self.height, *TRUNK_SIDE_M)
        low = np.column_stack([self.xy - side[:, None] / 2, self.foot])
        extent = np.column_stack([side, side, self.head - self.foot])
        vertices = (low[:, None] + self.shape.corners * extent[:, None]).reshape(-1, 3)
        faces = (self.shape.faces + count * np.arange(n)[:, None, None]).reshape(-1, 3)
        hidden = np.tile(np.arange(len(self.shape.faces)) < self.shape.bottom, n)
        return ClosedMesh(vertices, faces, np.repeat(self.class_id, count), hidden)


def trunks_under(canopy: Columns, ground_top: np.ndarray, x0: float, y0: float, size: float,
                 where: np.ndarray | None = None, faces: int | None = None) -> Trunks:
    """One trunk per crown (``crown_cells``), in the columns' frame: boxes where every crown's fits
    in ``faces`` (default: no limit), else spikes; with ``where``, (nx, ny) bool, only under the
    crowns whose cell it holds (crowns are found on the whole canopy)."""
    i, j = crown_cells(canopy, ground_top, size)
    if where is not None:
        i, j = i[where[i, j]], j[where[i, j]]
    ground, top, bottom = ground_top[i, j], canopy.top[i, j], canopy.bottom[i, j]
    shape = BOX if faces is None or len(i) * len(BOX.faces) <= faces else SPIKE
    return Trunks(np.column_stack([x0 + (i + 0.5) * size, y0 + (j + 0.5) * size]), ground, (top + bottom) / 2,
                  top - ground, canopy.class_id[i, j], shape)


def _highest(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(P,) height of the highest of the (F, 3, 3) triangles over each of the (P, 2) points seen
    from above, -inf where none is."""
    lo, hi = triangles[:, :, :2].min(1), triangles[:, :, :2].max(1)
    near = ((points[:, None] >= lo[None]) & (points[:, None] <= hi[None])).all(2)  # bounding boxes first
    p, f = np.nonzero(near)
    a, b, c = (triangles[f, k] for k in range(3))
    q = points[p]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    wb = ((q[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (q[:, 1] - a[:, 1])) / area
    wc = ((b[:, 0] - a[:, 0]) * (q[:, 1] - a[:, 1]) - (q[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])) / area
    inside = (area != 0) & (wb >= 0) & (wc >= 0) & (wb + wc <= 1)
    z = a[:, 2] + wb * (b[:, 2] - a[:, 2]) + wc * (c[:, 2] - a[:, 2])
    top = np.full(len(points), -np.inf)
    np.maximum.at(top, p[inside], z[inside])
    return top


def with_trunks(solid: ClosedMesh, trunks: ClosedMesh) -> tuple[ClosedMesh, np.ndarray]:
    """(the canopy's solid and its trunks as one mesh, each still closed; (F, 3) float32 albedo of
    its faces painted rather than baked: the trunks' BARK, NaN on the canopy)."""
    offset = len(solid.vertices)
    joined = ClosedMesh(np.concatenate([solid.vertices, trunks.vertices]),
                        np.concatenate([solid.faces, trunks.faces + offset]),
                        np.concatenate([solid.class_id, trunks.class_id]),
                        np.concatenate([solid.hidden, trunks.hidden]))
    painted = np.full((len(joined.faces), 3), np.nan, np.float32)
    painted[len(solid.faces):] = BARK
    return joined, painted
