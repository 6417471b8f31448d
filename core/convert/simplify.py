"""Shrink every kind's top surface together to a triangle budget by quadric edge collapses.

Only the top surfaces are decimated; ``solids.close`` rebuilds walls and undersides from the
result, so walls stay exactly vertical and every solid stays closed. All kinds go through one
``fast_simplification`` run: its error threshold is shared, so triangles go where the shape
needs them (flat roofs, water and roads collapse first) and no kind needs a quota;
``IMPORTANCE`` tilts the balance between kinds.

A prism's top gets a temporary vertical skirt under its boundary: the skirt's planes keep the
footprint's corners and straight walls in place, and the skirt's lower loop is the mesh's open
border, which the simplifier never merges with inner vertices. So top vertices only merge with
top vertices. A canopy's rim is its own open border: rim vertices only merge along the rim.

A world chunk's tops may end on its cut (``Surface.locked`` vertices, see ``solids.Cut``), where
the neighbouring chunk's tops go on: there both must keep the same line, at full resolution. The
cut gets no skirt, and the faces around its vertices are left out of the simplifier's mesh
(``frozen``): it never sees, so never moves, those vertices, and the faces follow the merges
of their other corners.

The simplifier does not check topology, so now and then a collapse folds a face over or
leaves a fin. Each collapse merges one vertex into another, so a state is the full-resolution
mesh with every vertex replaced by the vertex it ended up merged into (its root). The budget is
reached in passes of at most PASS_FACTOR fewer faces; after each pass, around any defect the
merges of that pass are undone, back to the previous (clean) state, until the top is clean.

A pass over more than LONG_PASS faces (a 1024² tile's first) is cut into strips west to east of
about LONG_PASS faces each, simplified at once in forked children (one core each): the faces
around the vertices two strips share sit that pass out, and the next pass, over the whole mesh,
simplifies them with the rest. The strips follow from the faces alone, so the result does not
depend on the machine's cores.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import fast_simplification
import numpy as np

from ..isolated import run_isolated_all
from ..schemes import SurfaceKind
from .solids import Surface, edge_counts

SKIRT = 1.0           # depth of the temporary skirt, metres (its planes matter, not its depth)
AGGRESSIVENESS = 7.0  # fast_simplification's default trade of speed for quality
MAX_ROUNDS = 8        # attempts allowed to land under the budget
PASS_FACTOR = 8       # at most this many times fewer faces per pass (bounds what a repair restores)
LONG_PASS = 1 << 20   # a pass over more faces runs in forked children, in strips this size (``_decimate``)
# Kinds whose underside follows the top at the vertex's thickness (slabs, canopies); the others
# keep their flat undersides.
THIN = (SurfaceKind.ROAD, SurfaceKind.WATER, SurfaceKind.VEGETATION)
# Each kind's top is scaled by its weight while simplifying, which multiplies its shape errors by
# the weight squared: building edges and roofs are worth more triangles than fuzzy tree crowns.
IMPORTANCE = {SurfaceKind.BUILDING: 2.0, SurfaceKind.VEGETATION: 0.5}


class BudgetError(ValueError):
    """The kinds' solids cannot be simplified to the faces allowed."""


@dataclass
class _Part:
    surface: Surface
    first: int          # joint id of the surface's vertex 0; its skirt vertices follow its own
    top: np.ndarray     # (F, 3) full-resolution top faces, joint ids


@dataclass
class _Joint:
    """All tops (and skirts) in one full-resolution mesh, and the merges done so far."""

    points: np.ndarray  # (N, 3) float64 full-resolution positions, scaled by importance
    scale: np.ndarray   # (N,) the importance each vertex's position is scaled by
    faces: np.ndarray   # (M, 3) int64 tops and skirts
    parts: list[_Part]
    root: np.ndarray    # (N,) the unmerged vertex each vertex stands merged into (root[root] == root)
    pos: np.ndarray     # (N, 3) current position of every unmerged vertex
    free: np.ndarray    # (K, 3) the faces the simplifier sees ...
    frozen: np.ndarray  # (M - K, 3) ... and those with a locked corner, left out of its mesh

    def merged(self, faces: np.ndarray) -> np.ndarray:
        """``faces`` with every vertex replaced by its root, collapsed faces dropped."""
        f = self.root[faces]
        return f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 2] != f[:, 0])]


def simplify_to_budget(surfaces: list[Surface], budget: int,
                       progress: Callable[[float, str], None] | None = None,
                       threads: int | None = None, most: int | None = None) -> list[Surface]:
    """Surfaces whose closed solids total at most ``budget`` faces, or where they cannot get
    that far (walls have a floor), the fewest reached if at most ``most`` (default: ``budget``);
    BudgetError beyond. ``progress(fraction, message)`` hears of every pass. ``threads``: the
    most cores a long pass may use (default every core); the result does not depend on it."""
    total = sum(s.closed_face_count for s in surfaces)
    if total <= budget:
        return surfaces
    joint = _join(surfaces)
    target = budget // 2  # each top face comes back twice (top and underside)
    start = len(joint.faces)
    if progress is not None:
        progress(0.0, f"{start} faces to simplify")

    def passed(faces: int) -> None:  # passes shrink by a factor: count progress in factors
        if progress is not None:
            progress(min(1.0, np.log(start / faces) / np.log(start / max(target, 1))), f"{faces} faces")

    fewest: tuple[int, list[Surface]] | None = None
    for _ in range(MAX_ROUNDS):
        current = _shrink(joint, target, passed, threads)
        out = [_surface(joint, part) for part in joint.parts]
        total = sum(s.closed_face_count for s in out)
        if total <= budget:
            return out
        if not all(len(s.faces) for s in out):
            break  # a kind simplified away: the rounds after this would only lose more
        if fewest is None or total < fewest[0]:
            fewest = (total, out)
        # Walls and repairs count too: take off what is over, plus a margin, and go on from there.
        target = current - (total - budget) // 2 - max(8, current // 100)
        if target < 4 * len(surfaces):
            break
    if fewest is not None and fewest[0] <= (budget if most is None else most):
        return fewest[1]
    reached = "" if fewest is None else f" (the closest reached was {fewest[0]})"
    raise BudgetError(f"a triangle budget of {budget} is too small for this scene{reached}")


def _join(surfaces: list[Surface]) -> _Joint:
    points, faces, scale, parts, locked = [], [], [], [], []
    first = 0
    for s in surfaces:
        n = len(s.vertices)
        pts, fcs = [s.vertices], [s.faces + first]
        locked.append(np.zeros(n, bool) if s.locked is None else s.locked)
        if not s.lens:
            a, b = _skirted(s).T
            ends = np.concatenate([a, np.setdiff1d(b, a)])  # a skirt ending on the cut ends at a b
            low = np.full(n, -1, np.int64)
            low[ends] = n + np.arange(len(ends))  # the skirt vertex under each boundary vertex
            pts.append(s.vertices[ends] - [0, 0, SKIRT])
            locked.append(np.zeros(len(ends), bool))
            fcs += [np.stack([low[a], low[b], b], -1) + first, np.stack([low[a], b, a], -1) + first]
        cat = np.concatenate(pts)
        weight = IMPORTANCE.get(s.kind, 1.0)
        points.append(cat * weight)
        scale.append(np.full(len(cat), weight))
        faces += fcs
        parts.append(_Part(s, first, s.faces + first))
        first += len(cat)
    points, faces = np.concatenate(points), np.concatenate(faces)
    frozen = np.concatenate(locked)[faces].any(1)
    return _Joint(points, np.concatenate(scale), faces, parts, np.arange(len(points)), points.copy(),
                  faces[~frozen], faces[frozen])


def _skirted(surface: Surface) -> np.ndarray:
    """The boundary edges that get a skirt: all but the cut's (both ends locked)."""
    rim = surface.rim
    if surface.locked is None:
        return rim
    return rim[~(surface.locked[rim[:, 0]] & surface.locked[rim[:, 1]])]


def _shrink(joint: _Joint, target: int, passed: Callable[[int], None] = lambda faces: None,
            threads: int | None = None) -> int:
    """Simplify in passes down to about ``target`` faces, telling ``passed`` the faces after each
    pass (and, during a long one, the faces before it every second); returns the faces left."""
    current = len(joint.merged(joint.faces))
    while current > target:
        before = (joint.root.copy(), joint.pos.copy())
        _decimate(joint, max(target, current // PASS_FACTOR), lambda faces=current: passed(faces), threads)
        for part in joint.parts:
            _repair(joint, before, part)
        left = len(joint.merged(joint.faces))
        if left >= current:
            break  # the simplifier is stuck
        current = left
        passed(current)
    return current


def _decimate(joint: _Joint, target: int, heartbeat: Callable[[], None], threads: int | None = None) -> None:
    """One simplifier pass over the current joint mesh, recorded as merges and new positions. A
    pass over more than LONG_PASS faces runs in forked children, strips at once (see the module
    docstring), so ``heartbeat`` is heard while they hold the GIL."""
    faces = joint.merged(joint.free)
    # The frozen faces take their part of the target first; where they take all of it, the
    # others still shrink as far as one pass may.
    target = max(target - len(joint.merged(joint.frozen)), len(faces) // PASS_FACTOR)
    if not 0 < target < len(faces):
        return  # nothing the simplifier may touch is left over
    pieces, held = _strips(faces, joint.pos[:, 0] / joint.scale, -(-len(faces) // LONG_PASS))
    target -= held
    calls, used = [], []
    for piece in pieces:
        share = target * len(piece) // max(len(faces) - held, 1)
        if 0 < share < len(piece):
            vertices, local = _compacted(piece, len(joint.pos))
            calls.append((joint.pos[vertices], local.astype(np.int32), share))
            used.append((vertices, piece))
    if len(faces) > LONG_PASS:
        heartbeat()
        results = run_isolated_all(_simplified, calls, threads, heartbeat=heartbeat)
    else:
        results = [_simplified(*args) for args in calls]
    # Collapse (i0, i1) merges i1 into i0, and i0 may be merged on later: follow to the end.
    before, root = joint.root, joint.root.copy()
    for (vertices, _), (_, collapses) in zip(used, results):
        collapses = vertices[np.asarray(collapses, np.int64).reshape(-1, 2)]
        root[collapses[:, 1]] = collapses[:, 0]
    while True:
        up = root[root]
        if np.array_equal(up, root):
            break
        root = up
    joint.root = root
    # The simplifier returns the vertices still in use, in their original order. Now and then
    # (free faces in shreds between frozen ones) it drops one it never said it merged: that
    # piece's merges are undone, as if the simplifier had been stuck there.
    for (vertices, piece), (points, _) in zip(used, results):
        kept, _ = _compacted(joint.merged(piece), len(joint.pos))
        if len(kept) == len(points):
            joint.pos[kept] = points
        else:
            mine = np.isin(before, vertices)
            joint.root[mine] = before[mine]


def _strips(faces: np.ndarray, x: np.ndarray, count: int) -> tuple[list[np.ndarray], int]:
    """``faces`` cut into ``count`` strips west to east (by their first corner's ``x``) with about
    as many faces each, less the faces around a vertex of two strips (no strip may move it); and
    how many faces those are."""
    if count == 1:
        return [faces], 0
    east = x[faces[:, 0]]
    strip = np.searchsorted(np.quantile(east, np.arange(1, count) / count), east)
    strips_of = np.zeros(len(x), np.int8)
    for s in range(count):
        mine = np.zeros(len(x), bool)
        mine[faces[strip == s]] = True
        strips_of += mine
    held = (strips_of > 1)[faces].any(1)
    return [faces[(strip == s) & ~held] for s in range(count)], int(held.sum())


def _compacted(faces: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(the vertices ``faces`` use, in order; ``faces`` indexing into them): np.unique's answer
    with return_inverse, in linear time over ``n`` vertices instead of a sort."""
    present = np.zeros(n, bool)
    present[faces] = True
    return np.flatnonzero(present), (np.cumsum(present) - 1)[faces]


def _simplified(points: np.ndarray, faces: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """fast_simplification down to ``target`` faces: (the vertices left, the collapses done)."""
    points, _, collapses = fast_simplification.simplify(points, faces, target_count=target, agg=AGGRESSIVENESS,
                                                        return_collapses=True)
    return points, collapses


def _repair(joint: _Joint, before: tuple[np.ndarray, np.ndarray], part: _Part) -> None:
    """Undo the last pass's merges around every defect of a top until none is left."""
    mine = np.arange(part.first, part.first + len(part.surface.vertices))
    while True:
        faces = joint.merged(part.top)
        # A top vertex merged into a skirt vertex would leave the top: undo that as well.
        stray = faces[((faces < mine[0]) | (faces > mine[-1])).any(1)].ravel()
        bad = np.union1d(defects(faces, joint.pos, part.surface.lens), stray)
        if not len(bad):
            return
        ring = np.unique(faces[np.isin(faces, bad).any(1)])
        back = mine[np.isin(joint.root[mine], ring)]
        if np.array_equal(joint.root[back], before[0][back]):
            raise RuntimeError("a simplified top surface cannot be repaired")
        joint.root[back] = before[0][back]
        joint.pos[back] = before[1][back]


def _surface(joint: _Joint, part: _Part) -> Surface:
    """A part's current top as a Surface; each vertex keeps the class (and, for flat undersides,
    the underside) of the full-resolution vertex it stands for."""
    full = part.surface
    used, local = _compacted(joint.merged(part.top), len(joint.pos))
    source = used - part.first
    points = joint.pos[used] / joint.scale[used, None]
    under = full.under[source]
    if full.kind in THIN:
        under = points[:, 2] - (full.vertices[source, 2] - under)
    locked = None if full.locked is None else full.locked[source]
    return Surface(full.kind, points, local.reshape(-1, 3), under, full.class_id[source], locked)


def defects(faces: np.ndarray, points: np.ndarray, lens: bool) -> np.ndarray:
    """Vertices where ``faces`` is not a top surface that closes into a watertight solid.

    Flags a directed edge used twice (an edge of three or more faces). For prisms also a face
    turned over (a fold seen from above; this also catches fins, two faces back to back) and a
    boundary vertex with two boundary loops through it (its wall corner would get four faces).
    For canopies also fins and chords: inner edges between two rim vertices, which the top and
    the underside would share. (A canopy's steep rim may fold a little: harmless for a crown.)
    """
    if not len(faces):
        return np.zeros(0, np.int64)
    edges, directed, either = edge_counts(faces)
    bad = [edges[directed > 1].ravel()]
    out_degree = np.bincount(edges[either == 1, 0], minlength=int(faces.max()) + 1)
    if lens:
        tri = np.sort(faces, 1)
        tri = tri[np.lexsort(tri.T[::-1])]
        bad.append(tri[1:][(tri[1:] == tri[:-1]).all(1)].ravel())
        # A chord joins two rim vertices but is no rim edge itself (one of those occurs once).
        chord = (out_degree > 0)[edges].all(1) & (either != 1)
        bad.append(edges[chord].ravel())
    else:
        a, b, c = points[faces[:, 0]], points[faces[:, 1]], points[faces[:, 2]]
        up = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
        bad += [faces[up <= 0].ravel(), np.flatnonzero(out_degree > 1)]
    return np.unique(np.concatenate(bad))
