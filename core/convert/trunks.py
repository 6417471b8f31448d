"""Trunks: canopies stand on the ground instead of floating at their underside.

A canopy's solid spans [bottom, top] of its columns, its underside well above the ground (trees
are voxelised from CANOPY_BASE of their height up). Each crown gets one trunk: a square box from
the ground into the canopy (halfway between its underside and top). Crowns are the canopy's
highest points within CROWN_M of each other (one per tree, several across a wood); the trunk's
side grows with the canopy's height (TRUNK_PER_M), within TRUNK_SIDE_M. A box is 12 triangles, its
bottom two hidden; the trunks join the canopy's mesh (same kind and class).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..landcover import first_cells
from .columns import Columns
from .solids import ClosedMesh

CROWN_M = 5.0              # crowns closer than this share one trunk
MIN_CLEARANCE_M = 0.5      # a canopy whose underside is this close to the ground needs no trunk
TRUNK_PER_M = 0.04         # trunk side per metre of canopy height ...
TRUNK_SIDE_M = (0.25, 0.8)  # ... within these
BOX_FACES = 12
BARK = (0.30, 0.24, 0.18)  # sRGB albedo of trunks (no splat sees a trunk: they are painted)

# The unit box's corners (x, y, z in {0, 1}) and its faces, counter-clockwise seen from outside;
# the first two faces are the bottom.
_CORNERS = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], float)
_FACES = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
                   [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]])


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


def trunk_boxes(canopy: Columns, ground_top: np.ndarray, x0: float, y0: float, size: float,
                where: np.ndarray | None = None, most: int | None = None) -> ClosedMesh:
    """One closed box per crown (``crown_cells``), in the columns' frame; with ``where``, (nx, ny)
    bool, only under the crowns whose cell it holds (crowns are found on the whole canopy); with
    ``most``, under that many of the tallest crowns at most."""
    i, j = crown_cells(canopy, ground_top, size)
    if where is not None:
        i, j = i[where[i, j]], j[where[i, j]]
    if most is not None and len(i) > most:
        tallest = np.sort(np.argsort(ground_top[i, j] - canopy.top[i, j], kind="stable")[:most])
        i, j = i[tallest], j[tallest]
    ground, top, bottom = ground_top[i, j], canopy.top[i, j], canopy.bottom[i, j]
    side = np.clip(TRUNK_PER_M * (top - ground), *TRUNK_SIDE_M)
    low = np.column_stack([x0 + (i + 0.5) * size - side / 2, y0 + (j + 0.5) * size - side / 2, ground])
    extent = np.column_stack([side, side, (top + bottom) / 2 - ground])
    vertices = (low[:, None] + _CORNERS * extent[:, None]).reshape(-1, 3)
    faces = (_FACES + 8 * np.arange(len(i))[:, None, None]).reshape(-1, 3)
    hidden = np.tile(np.arange(BOX_FACES) < 2, len(i))
    return ClosedMesh(vertices, faces, np.repeat(canopy.class_id[i, j], 8), hidden)


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
