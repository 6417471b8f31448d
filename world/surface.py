"""A world's surfaces seen from straight above: what its tiles' geometric errors and upper tiles are measured from.

- ``Soup``: the triangles of textured meshes in one frame (core: x east, y north, z up), with what is
  needed to sample them (UVs, class ids, kinds, the source image of each triangle).
- ``sample``: on a regular grid of points (``core.raster``), the highest surface above each
  (height, colour, class): the surface a viewer sees from above.
- ``vertical_deviation``: how far two such height grids are apart vertically. A silhouette that
  moves by less than one sample costs nothing: between the two positions a wall spans both heights.
- ``lod_errors``: each LOD's geometric error (OGC 3D Tiles: metres of error when the tile is drawn
  instead of its children): its vertical deviation from the finest LOD, and never less than one
  texel of its ground texture, the finest detail the LOD can still show.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..core.meshes import TexturedMesh
from ..core.raster import Grid, barycentric, heights, highest, in_samples
from ..core.schemes import SurfaceKind


@dataclass
class Soup:
    """Triangles of many textured meshes in one frame."""

    xyz: np.ndarray       # (F, 3, 3) float64 corners
    uv: np.ndarray        # (F, 3, 2) float32
    class_id: np.ndarray  # (F, 3) uint8
    kind: np.ndarray      # (F,) SurfaceKind values
    image: np.ndarray     # (F,) index into ``images``
    images: list[np.ndarray]

    @classmethod
    def of(cls, parts: list[tuple[list[TexturedMesh], np.ndarray, tuple[float, float]]]) -> Soup:
        """Soup of (meshes, their atlas, (dx, dy) moving them into the soup's frame) parts."""
        xyz, uv, cid, kind, img = [], [], [], [], []
        for index, (meshes, _, (dx, dy)) in enumerate(parts):
            for mesh in meshes:
                xyz.append(mesh.vertices[mesh.faces].astype(np.float64) + [dx, dy, 0.0])
                uv.append(mesh.uvs[mesh.faces])
                cid.append(mesh.class_id[mesh.faces])
                kind.append(np.full(len(mesh.faces), int(mesh.kind)))
                img.append(np.full(len(mesh.faces), index))
        return cls(np.concatenate(xyz), np.concatenate(uv), np.concatenate(cid), np.concatenate(kind),
                   np.concatenate(img), [p[1] for p in parts])

    def subset(self, keep: np.ndarray) -> Soup:
        """The triangles where ``keep`` (a (F,) bool mask) holds."""
        return Soup(self.xyz[keep], self.uv[keep], self.class_id[keep], self.kind[keep], self.image[keep],
                    self.images)


@dataclass
class TopView:
    height: np.ndarray    # (rows, cols) float64, NaN where no surface
    colour: np.ndarray    # (rows, cols, 3) uint8, 0 where no surface
    class_id: np.ndarray  # (rows, cols) uint8, 0 where no surface


def sample(soup: Soup, grid: Grid) -> TopView:
    """The highest surface above each point: its height, texture colour (bilinear) and class."""
    z, face = highest(soup.xyz, grid)
    hit = np.nonzero(face >= 0)[0]
    colour = np.zeros((grid.rows * grid.cols, 3), np.uint8)
    class_id = np.zeros(grid.rows * grid.cols, np.uint8)
    if len(hit):
        f = face[hit]
        bary = np.stack(barycentric(*in_samples(soup.xyz[f], grid), hit % grid.cols, hit // grid.cols), 1)
        uv = (bary[..., None] * soup.uv[f]).sum(1)
        for index, image in enumerate(soup.images):
            mine = soup.image[f] == index
            colour[hit[mine]] = _bilinear(image, uv[mine])
        class_id[hit] = soup.class_id[f, bary.argmax(1)]
    shape = (grid.rows, grid.cols)
    return TopView(np.where(np.isfinite(z), z, np.nan).reshape(shape), colour.reshape(*shape, 3),
                   class_id.reshape(shape))


def _bilinear(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 colours of ``image`` at glTF UVs ((0, 0): top-left corner), clamped to the edge."""
    h, w = image.shape[:2]
    x = np.clip(uv[:, 0] * w - 0.5, 0, w - 1)
    y = np.clip(uv[:, 1] * h - 0.5, 0, h - 1)
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    img = image.astype(np.float64)
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return np.round(top * (1 - fy) + bottom * fy).astype(np.uint8)


def vertical_deviation(a: np.ndarray, b: np.ndarray) -> float:
    """Largest vertical gap (metres) between two height grids (NaN: no surface), each point of one
    compared with the range of heights of the other within one sample; 0 when they never overlap."""
    return max(_one_way(a, b), _one_way(b, a))


def _one_way(a: np.ndarray, b: np.ndarray) -> float:
    low = ndimage.minimum_filter(np.where(np.isnan(b), np.inf, b), size=3, mode="nearest")
    high = ndimage.maximum_filter(np.where(np.isnan(b), -np.inf, b), size=3, mode="nearest")
    seen = ~np.isnan(a) & np.isfinite(low)
    gap = np.maximum(low[seen] - a[seen], a[seen] - high[seen])
    return float(max(gap.max(initial=0.0), 0.0))


def ground_texel(meshes: list[TexturedMesh], atlas: np.ndarray) -> float:
    """Metres per texel of the terrain's texture: the finest ground detail it can show."""
    terrain = next(m for m in meshes if m.kind == SurfaceKind.TERRAIN)
    metres = float(np.ptp(terrain.vertices[:, 0]))
    texels = float(np.ptp(terrain.uvs[:, 0])) * atlas.shape[1]
    return metres / texels


def ceil_mm(metres: float) -> float:
    """Round up to a millimetre: an error is never understated, and the manifest stays short."""
    return math.ceil(metres * 1000 - 1e-6) / 1000


def footprint(meshes: list[TexturedMesh], spacing: float) -> Grid:
    """A corner-aligned grid at ``spacing`` over everything the meshes hold, seen from above."""
    points = np.concatenate([m.vertices for m in meshes])
    west, south = np.floor(points[:, :2].min(0) / spacing) * spacing
    east, north = np.ceil(points[:, :2].max(0) / spacing) * spacing
    return Grid(float(west), float(north), spacing, spacing, round((east - west) / spacing) + 1,
                round((north - south) / spacing) + 1, offset=0.0)


def triangles(meshes: list[TexturedMesh]) -> np.ndarray:
    """(F, 3, 3) float64 corners of every face of ``meshes``."""
    return np.concatenate([m.vertices[m.faces].astype(np.float64) for m in meshes])


def lod_errors(lods: list[tuple[list[TexturedMesh], np.ndarray]], spacing: float) -> list[float]:
    """Geometric error of each LOD (meshes, atlas) of one chunk, finest first: 0 for the finest,
    which has no children; for a coarser LOD its vertical deviation from the finest, sampled every
    ``spacing`` metres, and at least one texel of its ground texture."""
    if len(lods) == 1:  # nothing to compare with: skip rasterising the finest LOD
        return [0.0]
    grid = footprint([m for meshes, _ in lods for m in meshes], spacing)
    finest = heights(triangles(lods[0][0]), grid)
    return [0.0] + [ceil_mm(max(vertical_deviation(finest, heights(triangles(meshes), grid)),
                                ground_texel(meshes, atlas))) for meshes, atlas in lods[1:]]
