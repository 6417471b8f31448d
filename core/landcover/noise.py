"""Deterministic hash noise: the same (seed, integer coordinates) give the same value on any
machine, in any order, with no RNG state to thread through the code."""
from __future__ import annotations

import numpy as np

_M1 = np.uint64(0x9E3779B97F4A7C15)
_M2 = np.uint64(0xBF58476D1CE4E5B9)
_M3 = np.uint64(0x94D049BB133111EB)


def _mix(h: np.ndarray) -> np.ndarray:
    # splitmix64 finaliser: good avalanche for sequential inputs.
    h = (h ^ (h >> np.uint64(30))) * _M2
    h = (h ^ (h >> np.uint64(27))) * _M3
    return h ^ (h >> np.uint64(31))


def hash_uniform(seed: int, *coords: np.ndarray | int) -> np.ndarray:
    """Uniform floats in [0, 1), one per broadcast element of ``coords`` (integers)."""
    with np.errstate(over="ignore"):
        h = _mix(np.uint64(seed & 0xFFFFFFFFFFFFFFFF) * _M1 + np.uint64(0x632BE59BD9B4E019))
        for c in coords:
            h = _mix(h ^ (np.asarray(c).astype(np.int64).astype(np.uint64) + _M1))
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def smoothstep(t: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, smooth between (3t² - 2t³)."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def value_noise(seed: int, x: np.ndarray, y: np.ndarray, cell: float) -> np.ndarray:
    """Smooth noise in [0, 1) over metres (bilinear interpolation of hashed lattice values)."""
    gx, gy = x / cell, y / cell
    ix, iy = np.floor(gx).astype(np.int64), np.floor(gy).astype(np.int64)
    fx, fy = gx - ix, gy - iy
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    v00, v10, v01, v11 = _corners(seed, ix, iy)
    return (v00 * (1 - fx) + v10 * fx) * (1 - fy) + (v01 * (1 - fx) + v11 * fx) * fy


def _corners(seed: int, ix: np.ndarray, iy: np.ndarray) -> tuple[np.ndarray, ...]:
    """Hashed lattice values at (ix, iy), (ix + 1, iy), (ix, iy + 1), (ix + 1, iy + 1). When the
    points span fewer lattice nodes than there are points (coarse noise over many positions), each
    node is hashed once and gathered: the same values, a fraction of the work."""
    if ix.size:
        x0, y0 = int(ix.min()), int(iy.min())
        nx, ny = int(ix.max()) - x0 + 2, int(iy.max()) - y0 + 2
        if nx * ny < ix.size:
            lattice = hash_uniform(seed, np.arange(x0, x0 + nx)[:, None], np.arange(y0, y0 + ny)[None, :])
            a, b = ix - x0, iy - y0
            return lattice[a, b], lattice[a + 1, b], lattice[a, b + 1], lattice[a + 1, b + 1]
    return (hash_uniform(seed, ix, iy), hash_uniform(seed, ix + 1, iy),
            hash_uniform(seed, ix, iy + 1), hash_uniform(seed, ix + 1, iy + 1))
