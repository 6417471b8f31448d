"""Triangles seen from straight above on a regular grid of points: the highest over each.

What a world's tiles are measured and textured from (``world.surface``), and what tells a trunk
whether a simplified crown still covers it (``convert.trunks``). Each triangle is tested at the
points of its bounding box only, in batches of bounded memory.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_CANDIDATES = 1 << 21   # (triangle, point) pairs tested per batch: bounds memory (~100 B each)
_EDGE = 1e-9            # barycentric slack: a point on an edge shared by two triangles hits one of them


@dataclass(frozen=True)
class Grid:
    """Sample points x = west + (i + offset)·dx east, y = north - (j + offset)·dy (row 0 north);
    offset 0.5 puts them at pixel centres, 0 on the corners (both edges sampled)."""

    west: float
    north: float
    dx: float
    dy: float
    cols: int
    rows: int
    offset: float = 0.5

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) x and y of every sample point."""
        x = self.west + (np.arange(self.cols) + self.offset) * self.dx
        y = self.north - (np.arange(self.rows) + self.offset) * self.dy
        return np.meshgrid(x, y)


def in_samples(xyz: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(F, 3) x and y of the (F, 3, 3) triangles' corners in sample coordinates (point (row j,
    col i) at (i, j)) and their (F,) signed areas there."""
    px = (xyz[..., 0] - grid.west) / grid.dx - grid.offset
    py = (grid.north - xyz[..., 1]) / grid.dy - grid.offset
    area = (px[:, 1] - px[:, 0]) * (py[:, 2] - py[:, 0]) - (px[:, 2] - px[:, 0]) * (py[:, 1] - py[:, 0])
    return px, py, area


def highest(xyz: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """(rows·cols) height of the highest of the (F, 3, 3) triangles over each point (-inf: none)
    and its index (-1)."""
    px, py, area = in_samples(xyz, grid)
    c0 = np.clip(np.ceil(px.min(1) - 1e-6), 0, grid.cols).astype(np.int64)
    c1 = np.clip(np.floor(px.max(1) + 1e-6), -1, grid.cols - 1).astype(np.int64)
    r0 = np.clip(np.ceil(py.min(1) - 1e-6), 0, grid.rows).astype(np.int64)
    r1 = np.clip(np.floor(py.max(1) + 1e-6), -1, grid.rows - 1).astype(np.int64)
    w, h = np.maximum(c1 - c0 + 1, 0), np.maximum(r1 - r0 + 1, 0)
    ids = np.nonzero((w * h > 0) & (np.abs(area) > 1e-12))[0]  # walls seen edge-on cover nothing
    zbuf = np.full(grid.rows * grid.cols, -np.inf)
    fbuf = np.full(grid.rows * grid.cols, -1, np.int64)
    ends = np.cumsum(w[ids] * h[ids])
    start = 0
    while start < len(ids):
        base = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, base + _CANDIDATES, "right")), start + 1)
        batch = ids[start:stop]
        count = w[batch] * h[batch]
        tri = np.repeat(batch, count)
        local = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        col, row = c0[tri] + local % w[tri], r0[tri] + local // w[tri]
        l0, l1, l2 = barycentric(px[tri], py[tri], area[tri], col, row)
        inside = (l0 >= -_EDGE) & (l1 >= -_EDGE) & (l2 >= -_EDGE)
        tri, pix = tri[inside], (row * grid.cols + col)[inside]
        z = l0[inside] * xyz[tri, 0, 2] + l1[inside] * xyz[tri, 1, 2] + l2[inside] * xyz[tri, 2, 2]
        # The highest per point; of equal heights the later triangle (numpy assigns in order).
        np.maximum.at(zbuf, pix, z)
        top = z == zbuf[pix]
        fbuf[pix[top]] = tri[top]
        start = stop
    return zbuf, fbuf


def barycentric(px: np.ndarray, py: np.ndarray, area: np.ndarray, col: np.ndarray,
                 row: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Barycentric coordinates of points (col, row) in triangles (px, py) of signed ``area``."""
    dx, dy = col - px[:, 0], row - py[:, 0]
    l1 = (dx * (py[:, 2] - py[:, 0]) - (px[:, 2] - px[:, 0]) * dy) / area
    l2 = ((px[:, 1] - px[:, 0]) * dy - dx * (py[:, 1] - py[:, 0])) / area
    return 1 - l1 - l2, l1, l2


def heights(xyz: np.ndarray, grid: Grid) -> np.ndarray:
    """(rows, cols) height of the highest of the (F, 3, 3) triangles above each point, NaN where
    there is none."""
    z, _ = highest(xyz, grid)
    return np.where(np.isfinite(z), z, np.nan).reshape(grid.rows, grid.cols)
