"""Heights when the tile has a land-cover map but no height raster: seeded, documented priors.

- Buildings: one height per footprint (4-connected component). Storeys are drawn uniformly from
  1 .. 1 + min(area / 150 m², 7) (bigger footprints allow taller buildings), height = 3 m per
  storey + 0.5 m parapet.
- Trees: each canopy (component) gets a crown height H = clip(4 + 0.6 d, 5, 22) * U(0.85, 1.15),
  d = the canopy's equivalent diameter in metres ("tree height from canopy size"); inside the
  canopy the height rises from 2.5 m at the rim by 1.2 m per metre inward, capped at H, so crowns
  are domes; a ±15 % value noise of 5 m cells gives wide canopies (woods) one bump per crown.
- Woods too wide to see whole (a world chunk's cut components): ``wood_heights``, a closed canopy
  whose height depends only on world position and the wood's edge within EDGE_M: WOOD_M tall with
  ±15 % bumps of 5 m cells, falling in a rounded (quadratic) edge to RIM_M at the wood's rim, so two
  windows that see a point agree, and no wood is a flat-topped block with cliffs.
Random draws are hashed from (seed, the component's first cell), so they do not depend on the
order components are found in.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .noise import hash_uniform, value_noise


def first_cells(labels: np.ndarray, n: int) -> np.ndarray:
    """(n,) flat index of each labelled component's first cell in row-major order: a stable id that
    does not depend on the order components were found in."""
    flat = labels.ravel()
    _, first = np.unique(flat, return_index=True)
    return first[1:] if n and flat[first[0]] == 0 else first


def _components(mask: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
    """Labels, count, and (count, 2) row/col of each component's first cell in row-major order."""
    labels, n = ndimage.label(mask)
    return labels, n, np.stack(np.unravel_index(first_cells(labels, n), mask.shape), -1)


def building_heights(mask: np.ndarray, gsd: float, seed: int) -> np.ndarray:
    """(H, W) float32 heights above ground of building cells (0 elsewhere)."""
    labels, n, anchors = _components(mask)
    if n == 0:
        return np.zeros(mask.shape, np.float32)
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:] * gsd * gsd
    u = hash_uniform(seed, 1, anchors[:, 0], anchors[:, 1])
    storeys = 1 + np.floor(u * (1 + np.minimum(area / 150.0, 7.0)))
    height = np.concatenate([[0.0], 3.0 * storeys + 0.5]).astype(np.float32)
    return height[labels]


def tree_heights(mask: np.ndarray, gsd: float, seed: int) -> np.ndarray:
    """(H, W) float32 crown-top heights above ground of tree cells (0 elsewhere)."""
    labels, n, anchors = _components(mask)
    if n == 0:
        return np.zeros(mask.shape, np.float32)
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:] * gsd * gsd
    diameter = 2 * np.sqrt(area / np.pi)
    u = hash_uniform(seed, 2, anchors[:, 0], anchors[:, 1])
    crown = np.clip(4 + 0.6 * diameter, 5, 22) * (0.85 + 0.3 * u)
    crown = np.concatenate([[0.0], crown])[labels]
    inward = ndimage.distance_transform_edt(mask) * gsd
    y, x = np.mgrid[0:mask.shape[0], 0:mask.shape[1]] * gsd
    bumps = 0.85 + 0.3 * value_noise(seed, x, y, 5.0)
    return np.where(mask, np.minimum(crown, 2.5 + 1.2 * inward) * bumps, 0).astype(np.float32)


WOOD_M, RIM_M, EDGE_M = 10.0, 2.0, 8.0


def wood_heights(mask: np.ndarray, wx: np.ndarray, wy: np.ndarray, gsd: float, seed: int) -> np.ndarray:
    """(H, W) float32 canopy heights of wood cells (0 elsewhere) at world positions ``wx``, ``wy``.

    The distance to the rim is capped at EDGE_M, so a cell's height needs only the cells within
    EDGE_M of it: any window holding that neighbourhood computes the same value.
    """
    inward = np.minimum(ndimage.distance_transform_edt(mask) * gsd, EDGE_M) / EDGE_M
    rounded = 1 - (1 - inward) ** 2
    crown = WOOD_M * (0.85 + 0.3 * value_noise(seed, wx, wy, 5.0))
    return np.where(mask, RIM_M + (crown - RIM_M) * rounded, 0).astype(np.float32)
