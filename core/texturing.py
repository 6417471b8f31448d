"""Scene -> textured meshes: mesh (core/convert) -> unwrap (core/unwrap) -> bake (core/bake).

``mesh_unwrap_bake`` for ``generate`` and ``convert``; a world chunk calls its two halves for each
LOD (``meshes_within``, ``unwrap_bake``), so that a coarser LOD starts from the finer one's
simplified tops and every LOD's bake shares one prepared field. The budget policy,
said out loud: a budget is a target. A scene whose solids cannot be simplified that far (a small,
busy tile under the lean ``game`` preset; a world chunk's coarsest LOD) gets the fewest faces the
simplifier reaches (from a doubled target where the first simplified a kind away), up to _MOST
times the target; the report's triangle count shows it.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from .scene import Scene
from .unwrap import Atlas

if TYPE_CHECKING:
    from .bake import BakeField
    from .convert import MeshSource
    from .meshes import KindMesh

T = TypeVar("T")
# stage(name, work) runs one sub-stage; callers time it, report progress, or just call it.
StageFn = Callable[[str, Callable[[], T]], T]
_MOST = 16  # a scene whose solids cannot fit its budget gets at most this many times it


@dataclass(frozen=True)
class Budget:
    triangles: int
    texels: int                      # atlas texels in all
    texels_per_metre: float


def _run(_name: str, work: Callable[[], T]) -> T:
    return work()


def meshes_within(source: MeshSource, budget: Budget, stage: StageFn = _run,
                  progress: Callable[[float, str], None] | None = None,
                  threads: int | None = None) -> tuple[list[KindMesh], MeshSource]:
    """``source.meshes`` within the budget's triangles, by the policy above: (the meshes, the
    source a coarser LOD starts from)."""
    from .convert import BudgetError

    triangles, most = budget.triangles, budget.triangles * _MOST
    while True:
        try:
            return stage("mesh", lambda t=triangles: source.meshes(t, progress, threads, most))
        except BudgetError:
            if triangles >= most:
                raise
            triangles = min(2 * triangles, most)  # a target so low that a kind vanished: aim higher


def unwrap_bake(scene: Scene, meshes: list[KindMesh], budget: Budget, threads: int | None = None,
                stage: StageFn = _run, progress: Callable[[float, str], None] | None = None,
                field: Future[BakeField] | None = None) -> tuple[Atlas, np.ndarray]:
    """(``meshes`` UV-unwrapped in one atlas within the budget's texels, (H, W, 3) uint8 albedo baked
    from ``scene``). ``field``: ``bake.bake_field(scene)`` being prepared by a caller that bakes
    the scene more than once; by default it is prepared on a thread of its own while the meshes
    are unwrapped (the packer runs in a child process the main thread waits for, leaving a core
    idle). Not earlier: a forked child's resident size counts its parent's, and the simplifier's
    child is the largest already."""
    from .bake import bake_albedo, bake_field
    from .unwrap import unwrap

    with ThreadPoolExecutor(1) as background:
        field = field or background.submit(bake_field, scene)
        atlas = stage("unwrap", lambda: unwrap(meshes, budget.texels_per_metre, budget.texels, progress=progress))
        image = stage("bake", lambda: bake_albedo(atlas, scene, threads=threads, progress=progress, field=field))
    return atlas, image


def mesh_unwrap_bake(scene: Scene, budget: Budget, threads: int | None = None,
                     stage: StageFn = _run,
                     progress: Callable[[float, str], None] | None = None) -> tuple[Atlas, np.ndarray]:
    """(UV-unwrapped meshes of every kind in one atlas, (H, W, 3) uint8 baked albedo) within
    ``budget``. ``threads`` bounds the cores used by the simplifier and the bake (default every
    core); the result does not depend on it. ``progress(fraction, message)``: how far the current
    sub-stage is (simplifier passes, packings, the bake's texels)."""
    from .convert import mesh_source

    meshes, _ = meshes_within(mesh_source(scene, progress=progress), budget, stage, progress, threads)
    return unwrap_bake(scene, meshes, budget, threads, stage, progress)
