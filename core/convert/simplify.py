"""Shrink every kind's top surface together to a triangle budget by quadric edge collapses.

Only the top surfaces are decimated; ``solids.close`` rebuilds walls and undersides from the
result, so walls stay exactly vertical and every solid stays closed. All kinds go through one
``fast_simplification`` run: its error threshold is shared, so triangles go where the shape
needs them (flat roofs, water and roads collapse first) and no kind needs a quota.

A prism's top gets a temporary vertical skirt under its boundary: the skirt's planes keep the
footprint's corners and straight walls in place, and the skirt's lower loop is the mesh's open
border, which the simplifier never merges with inner vertices. So top vertices only merge with
top vertices. A canopy's rim is its own open border: rim vertices only merge along the rim.

The simplifier does not check topology, so now and then a collapse folds a fin or pinches a
vertex. Edge collapses are vertex merges: the result is the full-resolution mesh with each
vertex replaced by the vertex it was merged into (``root``). Where a top comes out broken, the
merges around the defect are undone, which puts back the full-resolution faces there.
"""
from __future__ import annotations

from dataclasses import dataclass

import fast_simplification
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .solids import Surface, boundary_edges

SKIRT = 1.0           # depth of the temporary skirt, metres (its planes matter, not its depth)
AGGRESSIVENESS = 7.0  # fast_simplification's default trade of speed for quality
MAX_ROUNDS = 8        # simplifier runs allowed to land under the budget
MAX_REPAIRS = 8       # rounds of undoing merges around defects before a whole top is restored


class BudgetError(ValueError):
    """The budget is below what the kinds' solids can be simplified to."""


@dataclass
class _Joint:
    """All tops (and skirts) in one full-resolution mesh, and the merges done so far."""

    points: np.ndarray  # (N, 3) float64 full-resolution positions
    faces: np.ndarray   # (M, 3) int64
    part: np.ndarray    # (N,) index of the surface each vertex belongs to
    skirt: np.ndarray   # (N,) bool
    source: np.ndarray  # (N,) index of the vertex in its surface
    root: np.ndarray    # (N,) the vertex each vertex has been merged into (itself if none)
    pos: np.ndarray     # (N, 3) position of each root after simplification


def closed_face_count(s: Surface) -> int:
    """Faces of ``solids.close(s)``: top, underside and two per wall edge."""
    return 2 * len(s.faces) + (0 if s.lens else 2 * len(boundary_edges(s.faces)))


def simplify_to_budget(surfaces: list[Surface], budget: int) -> list[Surface]:
    """Surfaces whose closed solids total at most ``budget`` faces."""
    total = sum(closed_face_count(s) for s in surfaces)
    if total <= budget:
        return surfaces
    joint = _join(surfaces)
    target = budget // 2  # each top face comes back twice (top and underside)
    for _ in range(MAX_ROUNDS):
        _decimate(joint, target)
        out = [_extract(joint, k, s) for k, s in enumerate(surfaces)]
        total = sum(closed_face_count(s) for s in out)
        if total <= budget:
            return out
        # Walls and repairs count too: take off what is over, plus a margin, and go on from here.
        current = len(_merged_faces(joint))
        target = current - (total - budget) // 2 - max(8, current // 100)
        if target < 4 * len(surfaces):
            break
    raise BudgetError(f"a triangle budget of {budget} is too small for this scene "
                      f"(the closest reached was {total})")


def _join(surfaces: list[Surface]) -> _Joint:
    points, faces, part, skirt, source = [], [], [], [], []
    offset = 0
    for k, s in enumerate(surfaces):
        n = len(s.vertices)
        pts, fcs, src = [s.vertices], [s.faces + offset], [np.arange(n)]
        if not s.lens:
            a, b = boundary_edges(s.faces).T
            low = np.full(n, -1, np.int64)
            low[a] = offset + n + np.arange(len(a))
            pts.append(s.vertices[a] - [0, 0, SKIRT])
            fcs += [np.stack([low[a], low[b], b + offset], -1), np.stack([low[a], b + offset, a + offset], -1)]
            src.append(a)
        cat = np.concatenate(pts)
        points.append(cat)
        faces += fcs
        part.append(np.full(len(cat), k))
        skirt.append(np.arange(len(cat)) >= n)
        source += src
        offset += len(cat)
    points = np.concatenate(points)
    return _Joint(points, np.concatenate(faces), np.concatenate(part), np.concatenate(skirt),
                  np.concatenate(source), np.arange(len(points)), points.copy())


def _merged_faces(joint: _Joint, faces: np.ndarray | None = None) -> np.ndarray:
    """Full-resolution faces with every vertex replaced by its root; collapsed faces dropped."""
    f = joint.root[joint.faces if faces is None else faces]
    return f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 2] != f[:, 0])]


def _decimate(joint: _Joint, target: int) -> None:
    faces = _merged_faces(joint)
    if target >= len(faces):
        return
    used, local = np.unique(faces, return_inverse=True)
    points, _, collapses = fast_simplification.simplify(
        joint.pos[used], local.reshape(-1, 3).astype(np.int32), target_count=target,
        agg=AGGRESSIVENESS, return_collapses=True)
    # Collapse (i0, i1) merges i1 into i0, and i0 may be merged on later: follow to the end.
    parent = np.arange(len(used))
    collapses = np.asarray(collapses, np.int64).reshape(-1, 2)
    parent[collapses[:, 1]] = collapses[:, 0]
    while True:
        nxt = parent[parent]
        if np.array_equal(nxt, parent):
            break
        parent = nxt
    at = np.minimum(np.searchsorted(used, joint.root), len(used) - 1)
    live = used[at] == joint.root  # roots whose faces all collapsed away are left as they are
    joint.root[live] = used[parent[at[live]]]
    # The simplifier returns the vertices still in use, in their original order.
    kept = np.unique(_merged_faces(joint))
    if len(kept) != len(points):
        raise RuntimeError("cannot match fast_simplification's vertices to the input's")
    joint.pos[kept] = points


def _extract(joint: _Joint, k: int, full: Surface) -> Surface:
    """Surface k's simplified top, repaired where the simplifier broke it."""
    mine = (joint.part[joint.faces] == k).all(1) & ~joint.skirt[joint.faces].any(1)
    top = joint.faces[mine]
    for _ in range(MAX_REPAIRS):
        faces = _merged_faces(joint, top)
        bad = defects(faces, full.lens)
        if not len(bad):
            break
        _undo_merges(joint, faces, bad)
    else:
        members = np.unique(top)
        joint.root[members], joint.pos[members] = members, joint.points[members]
        faces = top
    used, local = np.unique(faces, return_inverse=True)
    source = joint.source[used]
    points = joint.pos[used]
    # A top that came down keeps its solid's thickness.
    sunk = np.maximum(full.vertices[source, 2] - points[:, 2], 0.0)
    return Surface(full.kind, points, local.reshape(-1, 3), full.under[source] - sunk, full.class_id[source])


def _undo_merges(joint: _Joint, faces: np.ndarray, bad: np.ndarray) -> None:
    """Put back at full resolution every vertex merged into a bad vertex or its neighbours."""
    ring = np.unique(faces[np.isin(faces, bad).any(1)])
    members = np.flatnonzero(np.isin(joint.root, ring))
    joint.root[members] = members
    joint.pos[members] = joint.points[members]


def defects(faces: np.ndarray, lens: bool) -> np.ndarray:
    """Vertices where ``faces`` is not an oriented surface with simple boundary loops.

    Flags: directed edges used twice (fins, edges of three or more faces), vertices whose faces
    form more than one fan (pinches), and for canopies chords (an inner edge between two rim
    vertices, which the closed canopy would give four faces).
    """
    edges = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    _, first, count = np.unique(edges, axis=0, return_index=True, return_counts=True)
    bad = [edges[first[count > 1]].ravel()]
    fan = fans(faces)
    vertex_fans = np.unique(np.column_stack([faces.ravel(), fan]), axis=0)[:, 0]
    multi, n = np.unique(vertex_fans, return_counts=True)
    bad.append(multi[n > 1])
    if lens:
        rim = boundary_edges(faces)
        on_rim = np.zeros(int(faces.max()) + 1, bool)
        on_rim[rim.ravel()] = True
        chord = on_rim[edges].all(1) & ~_contains(rim, edges)
        bad.append(edges[chord].ravel())
    return np.unique(np.concatenate(bad))


def _contains(edges: np.ndarray, query: np.ndarray) -> np.ndarray:
    """For each query edge, whether ``edges`` holds it in either direction."""
    n = int(max(edges.max(initial=0), query.max(initial=0))) + 1
    keys = np.concatenate([edges[:, 0] * n + edges[:, 1], edges[:, 1] * n + edges[:, 0]])
    return np.isin(query[:, 0] * n + query[:, 1], keys)


def fans(faces: np.ndarray) -> np.ndarray:
    """(3F,) fan label of each face corner: corners of one vertex are in one fan when they are
    joined through faces sharing an edge at that vertex."""
    nf = len(faces)
    v = faces.ravel()
    nxt = faces[:, [1, 2, 0]].ravel()
    n = int(v.max()) + 1 if nf else 0
    key = v * n + nxt                 # directed edge leaving each corner
    order = np.argsort(key, kind="stable")
    pos = np.minimum(np.searchsorted(key[order], nxt * n + v), max(3 * nf - 1, 0))
    found = key[order][pos] == nxt * n + v
    # The face across has edge nxt -> v, leaving its corner of nxt; its corner of v is next.
    across = order[pos[found]]
    across = across - across % 3 + (across % 3 + 1) % 3
    graph = coo_matrix((np.ones(found.sum()), (np.flatnonzero(found), across)), shape=(3 * nf, 3 * nf))
    return connected_components(graph, directed=False)[1]
