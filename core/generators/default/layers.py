"""Per-kind solids on the analysis grid: where each surface kind is, its top and its bottom.

Every kind is a set of vertical columns [bottom, top] (row 0 north). Terrain lies under
everything, so anything the converter simplifies away still shows ground from above.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ...schemes import SurfaceKind

ROAD_LIFT = 0.05        # roads and water sit just above the terrain they cover, metres
SLAB = 0.3              # thickness of road and water slabs, metres
MIN_BUILDING = 1.0      # a cell mapped as building stands at least this tall, metres
CANOPY_BASE = 0.4       # canopy underside as a fraction of the local crown height

# The four neighbours of a grid cell: (row, col) offset and the outward normal (x east, y north) of
# the side facing it. Rows run south.
SIDES = (((0, 1), (1.0, 0.0)), ((0, -1), (-1.0, 0.0)), ((-1, 0), (0.0, 1.0)), ((1, 0), (0.0, -1.0)))


@dataclass
class ColumnLayer:
    kind: SurfaceKind
    mask: np.ndarray     # (H, W) bool
    top: np.ndarray      # (H, W) float32, tile-frame z in metres
    bottom: np.ndarray   # (H, W) float32
    class_id: np.ndarray  # (H, W) uint8


def build_layers(kinds: np.ndarray, classes: np.ndarray, valid: np.ndarray, ground: np.ndarray,
                 ndsm: np.ndarray) -> list[ColumnLayer]:
    """One ColumnLayer per kind present. ``kinds`` (H, W) uint8 SurfaceKind values (OTHER = terrain)."""
    is_kind = {k: valid & (kinds == k) for k in SurfaceKind}
    water_level = _water_level(is_kind[SurfaceKind.WATER], ground)
    terrain_top = np.where(is_kind[SurfaceKind.WATER], np.minimum(ground, water_level - 0.1), ground)
    base = float(np.min(terrain_top[valid])) - 1.0
    layers = [ColumnLayer(SurfaceKind.TERRAIN, valid, terrain_top,
                          np.full_like(ground, base), classes)]
    road = is_kind[SurfaceKind.ROAD]
    layers.append(ColumnLayer(SurfaceKind.ROAD, road, ground + ROAD_LIFT, ground - SLAB, classes))
    water = is_kind[SurfaceKind.WATER]
    layers.append(ColumnLayer(SurfaceKind.WATER, water, water_level + ROAD_LIFT,
                              water_level - SLAB, classes))
    layers.append(_buildings(is_kind[SurfaceKind.BUILDING], ground, ndsm, classes))
    layers.append(_canopies(is_kind[SurfaceKind.VEGETATION], ground, ndsm, classes))
    return [layer for layer in layers if layer.mask.any()]


def _per_component(mask: np.ndarray, values: np.ndarray, func) -> np.ndarray:
    """``func`` of ``values`` over each 4-connected component of ``mask``, spread back to its cells."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return np.zeros(mask.shape, np.float32)
    stats = np.asarray(func(values, labels, np.arange(1, n + 1)), np.float32)
    return np.concatenate([[0.0], stats]).astype(np.float32)[labels]


def _water_level(mask: np.ndarray, ground: np.ndarray) -> np.ndarray:
    # Water is flat: one level per water body, its median ground height.
    return np.where(mask, _per_component(mask, ground, ndimage.median), ground).astype(np.float32)


def _buildings(mask, ground, ndsm, classes) -> ColumnLayer:
    roof = ground + np.maximum(ndsm, MIN_BUILDING)
    # One flat bottom per building, just under its lowest ground: walls reach the terrain everywhere.
    bottom = _per_component(mask, ground, ndimage.minimum) - 0.5
    return ColumnLayer(SurfaceKind.BUILDING, mask, roof.astype(np.float32), bottom, classes)


def _canopies(mask, ground, ndsm, classes) -> ColumnLayer:
    crown = np.maximum(ndsm, 1.5)
    local_max = ndimage.maximum_filter(np.where(mask, crown, 0), size=7)
    base = np.minimum(CANOPY_BASE * local_max, crown - 0.75)
    return ColumnLayer(SurfaceKind.VEGETATION, mask, (ground + crown).astype(np.float32),
                       (ground + np.maximum(base, 0.3)).astype(np.float32), classes)


def top_layer_index(layers: list[ColumnLayer]) -> np.ndarray:
    """(H, W) int: index of the layer seen from above in each column (-1 where none)."""
    tops = np.stack([np.where(layer.mask, layer.top, -np.inf) for layer in layers])
    idx = tops.argmax(0)
    return np.where(np.isfinite(tops.max(0)), idx, -1)
