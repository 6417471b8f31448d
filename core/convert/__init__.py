"""Scene -> one closed (watertight) triangle mesh per surface kind, within a triangle budget.

Pipeline: ``columns`` reads the shell voxels and up-facing splats into per-kind columns on the
voxel-column grid; ``solids`` turns each kind's columns into a top surface at full resolution;
``simplify`` shrinks all tops together to the budget (less what ``trunks`` needs); ``solids.close``
adds the vertical walls (or, for canopies, the shared rim) and the underside (hidden, but for a
canopy's), and the canopies get their trunks, painted bark. TERRAIN also carries OTHER.
Volume scenes (overhangs, from a density volume) take ``volume`` instead: marching cubes per kind.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..meshes import KindMesh
from ..scene import Scene
from ..schemes import SurfaceKind
from .columns import ColumnGrid, scene_columns
from .simplify import BudgetError, simplify_to_budget
from .solids import ClosedMesh, Cut, close, kind_surface
from .trunks import BOX_FACES, trunk_boxes, with_trunks
from .volume import volume_meshes

__all__ = ["BudgetError", "scene_to_meshes"]
NO_TRUNKS = ClosedMesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros(0, np.uint8), np.zeros(0, bool))


def scene_to_meshes(scene: Scene, triangle_budget: int, cut: Cut | None = None,
                    progress: Callable[[float, str], None] | None = None,
                    kinds: tuple[SurfaceKind, ...] | None = None, threads: int | None = None,
                    most: int | None = None) -> list[KindMesh]:
    """One watertight mesh per kind present (or per one of ``kinds``: the others only give the
    trunks their ground), in SurfaceKind order, at most ``triangle_budget`` faces in all; where
    the scene's solids cannot be simplified that far, the fewest faces they reach if at most
    ``most`` (default: the budget), else BudgetError. ``cut``: where a world chunk cuts
    solids that go on beyond it (see ``solids.Cut``). ``threads``: the most cores to use (default
    every core); the meshes do not depend on it."""
    most = triangle_budget if most is None else most
    if scene.solid == "volume":
        return volume_meshes(scene, triangle_budget, most)
    grid = scene_columns(scene)
    if progress is not None:
        progress(0.0, "columns")
    surfaces = [kind_surface(cols, grid, cut) for cols in grid.kinds.values() if kinds is None or cols.kind in kinds]
    surfaces = [s for s in surfaces if len(s.faces)]  # a kind whose columns a chunk's cut all dropped
    if progress is not None:
        progress(0.0, "top surfaces")
    trunks = _trunks(grid, triangle_budget, cut)
    meshes = []
    trunk_faces = len(trunks.faces)
    for surface in simplify_to_budget(surfaces, triangle_budget - trunk_faces, progress, threads, most - trunk_faces):
        solid, painted = close(surface), None
        if surface.kind == SurfaceKind.VEGETATION and trunk_faces:
            solid, painted = with_trunks(solid, trunks)
        meshes.append(KindMesh(kind=surface.kind, vertices=solid.vertices.astype(np.float32),
                               faces=solid.faces.astype(np.int32), class_id=solid.class_id,
                               hidden=solid.hidden, painted=painted))
    return meshes


def _trunks(grid: ColumnGrid, triangle_budget: int, cut: Cut | None) -> ClosedMesh:
    """The canopies' trunks (``trunks``), none where there is no ground under them or past a cut,
    and under the tallest crowns only where they would take more than a quarter of the budget."""
    canopy, ground = grid.kinds.get(SurfaceKind.VEGETATION), grid.kinds.get(SurfaceKind.TERRAIN)
    if canopy is None or ground is None:
        return NO_TRUNKS
    where = None if cut is None else cut.kept(grid, canopy.mask.shape)
    return trunk_boxes(canopy, np.where(ground.mask, ground.top, np.inf), grid.x0, grid.y0, grid.size, where,
                       most=triangle_budget // 4 // BOX_FACES)
