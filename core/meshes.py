"""Mesh data passed between convert -> unwrap -> bake -> exporters. Tile frame: x east, y north, z up."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .georef import Georeference
from .schemes import SurfaceKind


@dataclass
class KindMesh:
    """One surface kind's closed (watertight) triangle mesh, counter-clockwise seen from outside."""

    kind: SurfaceKind
    vertices: np.ndarray   # (V, 3) float32
    faces: np.ndarray      # (F, 3) int32
    class_id: np.ndarray   # (V,) uint8 land-cover class of each vertex
    hidden: np.ndarray     # (F,) bool: faces no viewer sees (undersides); they get no texels
    painted: np.ndarray | None = None  # (F, 3) float32 sRGB albedo of faces painted, not baked (NaN: baked)


@dataclass
class TexturedMesh:
    """A KindMesh after unwrapping: vertices split along chart seams, with atlas UVs and normals."""

    kind: SurfaceKind
    vertices: np.ndarray   # (V, 3) float32
    faces: np.ndarray      # (F, 3) int32
    uvs: np.ndarray        # (V, 2) float32, glTF convention: (0, 0) is the top-left of the image
    normals: np.ndarray    # (V, 3) float32 unit; sharp across chart seams
    class_id: np.ndarray   # (V,) uint8
    painted: np.ndarray | None = None  # (F, 3) as KindMesh.painted (the bake fills their texels)


@dataclass
class TexturedScene:
    """What exporters write: one primitive and material per kind, all sharing one atlas image."""

    meshes: list[TexturedMesh]
    atlas: np.ndarray      # (H, W, 3) uint8 sRGB albedo
    georef: Georeference
    scheme: str
    class_names: dict[int, str]
    feature_ids: str = "attribute"  # "attribute" (_FEATURE_ID_0 only) or "ext_mesh_features"
    extras: dict = field(default_factory=dict)  # generator, seed, provenance for asset.extras

    @property
    def triangle_count(self) -> int:
        return sum(len(m.faces) for m in self.meshes)
