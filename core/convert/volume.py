"""Volume scenes (``Scene.solid == "volume"``) -> one closed mesh per surface kind, overhangs kept.

A density volume (Sat3DGen) bounds true 3D solids: a balcony, an arcade, a tree crown over a street.
The column path would flatten each column to one [bottom, top] run; here each kind's solid is
refilled from its shell voxels, its boundary found by marching cubes (scikit-image) on the
occupancy smoothed by a Gaussian of SMOOTH_VOXELS voxels (walls stay vertical and roofs flat, without
voxel stairs), and all kinds are decimated together (fast_simplification) to the triangle budget.
Every mesh is closed: the occupancy is zero-padded, so marching cubes never meets the grid's edge.
"""
from __future__ import annotations

import fast_simplification
import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.measure import marching_cubes

from ..meshes import KindMesh
from ..scene import Scene
from ..schemes import MESHED_KINDS, SurfaceKind
from .simplify import BudgetError

SMOOTH_VOXELS = 0.7   # Gaussian sigma of the occupancy, voxels
PAD = 2               # empty voxels around the solids, so every surface closes
DOWN_NZ = -0.9        # faces this steeply down at a solid's lowest level are its hidden base
MIN_FACES = 8         # the smallest closed solid a kind can keep


def volume_meshes(scene: Scene, triangle_budget: int, most: int) -> list[KindMesh]:
    """One closed mesh per kind present, in SurfaceKind order, at most ``triangle_budget`` faces in
    all, or one small solid per kind where that is more and at most ``most`` (BudgetError beyond)."""
    v = scene.voxels
    kinds = np.where(v.kind == SurfaceKind.OTHER, SurfaceKind.TERRAIN, v.kind)
    present = [k for k in MESHED_KINDS if (kinds == k).any()]
    if most < MIN_FACES * len(present):
        raise BudgetError(f"a triangle budget of {triangle_budget} is too small for this scene")
    triangle_budget = max(triangle_budget, MIN_FACES * len(present))
    lo = v.coords.min(0) - PAD
    shape = tuple(v.coords.max(0) - lo + 1 + PAD)
    surfaces = [(kind, *_surface(v.coords[kinds == kind] - lo, shape)) for kind in present]
    if sum(len(faces) for _, _, faces in surfaces) > triangle_budget:
        surfaces = _decimate_together(surfaces, triangle_budget)
    meshes = []
    for kind, verts, faces in surfaces:
        points = v.origin + (verts + lo + 0.5) * v.size  # voxel index i has its centre at i + 0.5
        sel = kinds == kind
        _, nearest = cKDTree(v.centres()[sel]).query(points)
        meshes.append(KindMesh(kind=SurfaceKind(kind), vertices=points.astype(np.float32),
                               faces=faces.astype(np.int32), class_id=v.class_id[sel][nearest],
                               hidden=_base(points, faces, v.size)))
    return meshes


def _surface(coords: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(vertices in voxel index units, faces counter-clockwise from outside) of the solid whose shell
    voxels are ``coords``."""
    occupied = np.zeros(shape, bool)
    occupied[tuple(coords.T)] = True
    # A shell is closed under 6-neighbourhood (an inner voxel has all six neighbours in the solid),
    # so filling the background it encloses gives back the whole solid.
    solid = ndimage.binary_fill_holes(occupied)
    field = ndimage.gaussian_filter(solid.astype(np.float32), SMOOTH_VOXELS)
    verts, faces, _, _ = marching_cubes(field, level=0.5)
    if _signed_volume(verts, faces) < 0:  # marching cubes' winding depends on its conventions
        faces = faces[:, ::-1]
    return verts.astype(np.float64), faces.astype(np.int64)


def _signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = (verts[faces[:, i]] for i in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6)


def _decimate_together(surfaces: list[tuple], target: int) -> list[tuple]:
    """Quadric decimation of all kinds as one mesh to about ``target`` faces: one error threshold for
    all, so flat ground gives up its triangles before a building's corners do. The kinds' solids
    are disjoint meshes, so no collapse joins two kinds; each output vertex keeps its kind."""
    verts = np.concatenate([s[1] for s in surfaces])
    starts = np.cumsum([0] + [len(s[1]) for s in surfaces])
    faces = np.concatenate([s[2] + first for s, first in zip(surfaces, starts)])
    label = np.repeat(np.arange(len(surfaces)), np.diff(starts))
    _, _, collapses = fast_simplification.simplify(verts.astype(np.float32), faces.astype(np.int32),
                                                   target_count=target, return_collapses=True)
    points, tris, mapping = fast_simplification.replay_simplification(verts.astype(np.float32),
                                                                       faces.astype(np.int32), collapses)
    new_label = np.empty(len(points), np.int64)
    new_label[mapping] = label
    out = []
    for i, (kind, _, _) in enumerate(surfaces):
        mine = tris[new_label[tris[:, 0]] == i]
        used, local = np.unique(mine, return_inverse=True)
        out.append((kind, np.asarray(points[used], np.float64), local.reshape(-1, 3).astype(np.int64)))
    return out


def _base(points: np.ndarray, faces: np.ndarray, size: float) -> np.ndarray:
    """(F,) the faces of a solid's flat base: facing down at its lowest level, seen by no one."""
    a, b, c = (points[faces[:, i]] for i in range(3))
    normal = np.cross(b - a, c - a)
    nz = normal[:, 2] / np.maximum(np.linalg.norm(normal, axis=1), 1e-12)
    low = np.max(np.stack([a[:, 2], b[:, 2], c[:, 2]]), 0) < points[:, 2].min() + size
    return (nz < DOWN_NZ) & low
