"""Scene -> one closed (watertight) triangle mesh per surface kind, within a triangle budget.

Pipeline: ``columns`` reads the shell voxels and up-facing splats into per-kind columns on the
voxel-column grid; ``solids`` turns each kind's columns into a top surface at full resolution;
``simplify`` shrinks all tops together to the budget; ``solids.close`` adds the vertical walls
(or, for canopies, the shared rim) and the hidden underside. TERRAIN also carries OTHER.
Volume scenes (overhangs, from a density volume) take ``volume`` instead: marching cubes per kind.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..meshes import KindMesh
from ..scene import Scene
from .columns import scene_columns
from .simplify import BudgetError, simplify_to_budget
from .solids import Cut, close, kind_surface
from .volume import volume_meshes

__all__ = ["BudgetError", "scene_to_meshes"]


def scene_to_meshes(scene: Scene, triangle_budget: int, cut: Cut | None = None,
                    progress: Callable[[float, str], None] | None = None) -> list[KindMesh]:
    """One watertight mesh per kind present, in SurfaceKind order, at most ``triangle_budget``
    faces in all. Raises BudgetError when the budget cannot hold the scene's solids. ``cut``:
    the rectangle where solids are cut and go on beyond (see ``solids.kind_surface``)."""
    if scene.solid == "volume":
        return volume_meshes(scene, triangle_budget)
    grid = scene_columns(scene)
    if progress is not None:
        progress(0.0, "columns")
    surfaces = [kind_surface(cols, grid, cut) for cols in grid.kinds.values()]
    if progress is not None:
        progress(0.0, "top surfaces")
    meshes = []
    for surface in simplify_to_budget(surfaces, triangle_budget, progress):
        solid = close(surface)
        meshes.append(KindMesh(kind=surface.kind, vertices=solid.vertices.astype(np.float32),
                               faces=solid.faces.astype(np.int32), class_id=solid.class_id,
                               hidden=solid.hidden))
    return meshes
