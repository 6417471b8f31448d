"""Scene -> one closed (watertight) triangle mesh per surface kind, within a triangle budget.

Pipeline: ``columns`` reads the shell voxels and up-facing splats into per-kind columns on the
voxel-column grid; ``solids`` turns each kind's columns into a top surface at full resolution;
``simplify`` shrinks all tops together to the budget (less what ``trunks`` needs); ``solids.close``
adds the vertical walls (or, for canopies, the shared rim) and the underside (hidden, but for a
canopy's), and the canopies get their trunks, painted bark. TERRAIN also carries OTHER. A world
chunk's coarser LODs start from the finer LOD's simplified tops (``Tops.coarser``).
Volume scenes (overhangs, from a density volume) take ``volume`` instead: marching cubes per kind.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..meshes import KindMesh
from ..scene import Scene
from ..schemes import SurfaceKind
from .columns import ColumnGrid, scene_columns
from .simplify import BudgetError, simplify_to_budget
from .solids import Cut, Surface, close, kind_surface
from .trunks import Trunks, trunks_under, with_trunks
from .volume import volume_meshes

__all__ = ["BudgetError", "MeshSource", "Tops", "Volume", "mesh_source", "scene_to_meshes"]
TRUNK_DIVISOR = 3  # trunks take at most triangle_budget // TRUNK_DIVISOR faces (a third)
NO_TRUNKS = Trunks(np.zeros((0, 2)), np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, np.uint8))


@dataclass
class Tops:
    """A columns scene's top surfaces at full resolution (one per kind meshed) and the columns
    they came from (the trunks stand on them), to simplify and close within a budget (``meshes``).
    Its meshes come with their simplified tops, which a coarser LOD starts from (``coarser``):
    extracted once, and far fewer faces to simplify than the full resolution has."""

    surfaces: list[Surface]
    grid: ColumnGrid
    cut: Cut | None

    def meshes(self, triangle_budget: int, progress: Callable[[float, str], None] | None = None,
               threads: int | None = None, most: int | None = None) -> tuple[list[KindMesh], Tops]:
        """(one watertight mesh per kind, in SurfaceKind order, at most ``triangle_budget`` faces in
        all; the simplified tops they were closed from). Where the solids cannot be simplified that
        far, the fewest faces they reach if at most ``most`` (default: the budget), else BudgetError.
        ``threads``: the most cores to use (default every core); the meshes do not depend on it."""
        most = triangle_budget if most is None else most
        trunks = _trunks(self.grid, self.cut)
        trunk_faces = min(trunks.box_faces, triangle_budget // TRUNK_DIVISOR)
        simplified = simplify_to_budget(self.surfaces, triangle_budget - trunk_faces, progress, threads,
                                        most - trunk_faces)
        meshes = []
        for surface in simplified:
            solid, painted = close(surface), None
            if surface.kind == SurfaceKind.VEGETATION and trunk_faces:
                # Under the crowns the simplifier kept.
                solid, painted = with_trunks(solid, trunks.covered_by(surface).solid(trunk_faces))
            meshes.append(KindMesh(kind=surface.kind, vertices=solid.vertices.astype(np.float32),
                                   faces=solid.faces.astype(np.int32), class_id=solid.class_id,
                                   hidden=solid.hidden, painted=painted))
        return meshes, dataclasses.replace(self, surfaces=simplified)

    def coarser(self) -> Tops:
        """These tops as a coarser LOD starts from them: their cut no longer locked (see ``Cut``)."""
        if self.cut is None:
            return self
        return Tops([dataclasses.replace(s, locked=None) for s in self.surfaces], self.grid,
                    dataclasses.replace(self.cut, locked=False))


@dataclass
class Volume:
    """A volume scene (overhangs): its meshes are made afresh for every budget (``volume``)."""

    scene: Scene

    def meshes(self, triangle_budget: int, progress: Callable[[float, str], None] | None = None,
               threads: int | None = None, most: int | None = None) -> tuple[list[KindMesh], Volume]:
        return volume_meshes(self.scene, triangle_budget, triangle_budget if most is None else most), self

    def coarser(self) -> Volume:
        return self


MeshSource = Tops | Volume


def mesh_source(scene: Scene, cut: Cut | None = None, progress: Callable[[float, str], None] | None = None,
                kinds: tuple[SurfaceKind, ...] | None = None) -> MeshSource:
    """What ``scene``'s meshes are made from: its top surfaces (``Tops``) or its volume. ``cut``:
    where a world chunk cuts solids that go on beyond it (see ``solids.Cut``). ``kinds``: the kinds
    to mesh, default all (the others only give the trunks their ground)."""
    if scene.solid == "volume":
        return Volume(scene)
    grid = scene_columns(scene)
    if progress is not None:
        progress(0.0, "columns")
    surfaces = [kind_surface(cols, grid, cut) for cols in grid.kinds.values() if kinds is None or cols.kind in kinds]
    if progress is not None:
        progress(0.0, "top surfaces")
    # A kind whose columns a chunk's cut all dropped has no top.
    return Tops([s for s in surfaces if len(s.faces)], grid, cut)


def scene_to_meshes(scene: Scene, triangle_budget: int, cut: Cut | None = None,
                    progress: Callable[[float, str], None] | None = None,
                    kinds: tuple[SurfaceKind, ...] | None = None, threads: int | None = None,
                    most: int | None = None) -> list[KindMesh]:
    """One watertight mesh per kind present (or per one of ``kinds``), in SurfaceKind order, within
    ``triangle_budget`` (see ``Tops.meshes``)."""
    return mesh_source(scene, cut, progress, kinds).meshes(triangle_budget, progress, threads, most)[0]


def _trunks(grid: ColumnGrid, cut: Cut | None) -> Trunks:
    """Where the crowns' trunks stand (``trunks``), none where there is no ground under them or
    past a cut (``Tops.meshes`` gives them at most 1 / TRUNK_DIVISOR of its budget)."""
    canopy, ground = grid.kinds.get(SurfaceKind.VEGETATION), grid.kinds.get(SurfaceKind.TERRAIN)
    if canopy is None or ground is None:
        return NO_TRUNKS
    where = None if cut is None else cut.kept(grid, canopy.mask.shape)
    return trunks_under(canopy, np.where(ground.mask, ground.top, np.inf), grid.x0, grid.y0, grid.size, where)
