"""Per-vertex arrays in the exported frame: +Y up, +X east, -Z north (glTF; OBJ uses the same).

The core frame is x east, y north, z up. (x, y, z) -> (x, z, -y) is a rotation of -90 degrees about
+X (determinant +1), so counter-clockwise faces stay counter-clockwise and need no reindexing.
"""
from __future__ import annotations

import numpy as np

from ..core.meshes import TexturedMesh, TexturedScene


def exported_meshes(scene: TexturedScene) -> list[TexturedMesh]:
    """The meshes that get a primitive: a kind with no faces would be an empty, invalid primitive."""
    meshes = [m for m in scene.meshes if len(m.faces)]
    if not meshes:
        raise ValueError("the scene has no faces to export")
    return meshes


def y_up(vectors: np.ndarray) -> np.ndarray:
    """(N, 3) core-frame points or directions -> (N, 3) float32 in the Y-up frame."""
    v = np.asarray(vectors)
    # 0 - y rather than -y: equal except that y = 0 gives +0.0, not -0.0 in bounds and OBJ text.
    return np.stack([v[:, 0], v[:, 2], 0.0 - v[:, 1]], axis=1).astype(np.float32)


def unit_normals(normals: np.ndarray) -> np.ndarray:
    """Y-up normals renormalised in float64: glTF validators reject |n| off 1 by more than ~5e-4."""
    n = np.asarray(normals, np.float64)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    # A zero normal (degenerate face) cannot be normalised; straight up is the safe guess on a tile.
    n = np.where(length > 1e-12, n / np.maximum(length, 1e-12), [0.0, 0.0, 1.0])
    return y_up(n)


def clamped_uvs(uvs: np.ndarray) -> np.ndarray:
    """UVs clipped to [0, 1]: with CLAMP_TO_EDGE sampling this changes no texel, only rounding noise."""
    return np.clip(np.asarray(uvs, np.float32), 0.0, 1.0)
