"""2D Gaussian surfels: the orthophoto at its full resolution on roofs and ground, and synthesized
facades on walls. Positions are tile-frame metres (x east, y north, z up)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...arrays import ramps
from ...landcover.noise import hash_uniform
from ...scene import Splats, quaternions_from_frames
from ...schemes import SurfaceKind
from .facade import STOREY, facade_colour
from .layers import SIDES

SIGMA = 0.5  # splat standard deviation as a fraction of the surfel spacing
EDGE_BATCH = 1 << 15  # wall cells turned into facade surfels at once


@dataclass
class TopSurface:
    """What is seen from above in each analysis cell (row 0 north)."""

    z: np.ndarray        # (H, W) float32, -inf where nothing
    kind: np.ndarray     # (H, W) uint8 SurfaceKind, 0 where nothing
    class_id: np.ndarray  # (H, W) uint8
    normal: np.ndarray   # (H, W, 3) float32
    gsd: float


@dataclass
class Buildings:
    labels: np.ndarray   # (H, W) int32 building component per cell, 0 elsewhere
    base: np.ndarray     # (n + 1, 3) float32 facade wall colour per label
    bay: np.ndarray      # (n + 1,) float32 window bay width per label, metres


def _splats(pos, normal, tangent, spacing, colour, kind, class_id) -> Splats:
    u = tangent / np.linalg.norm(tangent, axis=1, keepdims=True)
    v = np.cross(normal, u)
    n = len(pos)
    return Splats(position=pos.astype(np.float32),
                  rotation=quaternions_from_frames(u, v, normal),
                  scale=np.full((n, 2), SIGMA * spacing, np.float32),
                  opacity=np.ones(n, np.float32), colour=colour.astype(np.float32),
                  kind=kind.astype(np.uint8), class_id=class_id.astype(np.uint8))


def top_surfels(top: TopSurface, image: np.ndarray, image_valid: np.ndarray) -> Splats:
    """One surfel per image pixel that lies on a surface; ``image`` (Hi, Wi, 3) covers the tile."""
    hi, wi = image_valid.shape
    h, w = top.kind.shape
    igsd_x, igsd_y = w * top.gsd / wi, h * top.gsd / hi
    ri, ci = np.nonzero(image_valid)
    r = np.minimum(((ri + 0.5) * igsd_y / top.gsd).astype(np.int64), h - 1)
    c = np.minimum(((ci + 0.5) * igsd_x / top.gsd).astype(np.int64), w - 1)
    on = top.kind[r, c] > 0
    ri, ci, r, c = ri[on], ci[on], r[on], c[on]
    pos = np.stack([(ci + 0.5) * igsd_x - w * top.gsd / 2, h * top.gsd / 2 - (ri + 0.5) * igsd_y,
                    top.z[r, c]], -1)
    normal = top.normal[r, c]
    tangent = np.array([1.0, 0, 0]) - normal[:, :1] * normal
    return _splats(pos, normal, tangent, max(igsd_x, igsd_y), image[ri, ci],
                   top.kind[r, c], top.class_id[r, c])


def wall_surfels(roof: np.ndarray, bottom: np.ndarray, ground: np.ndarray, top: TopSurface,
                 buildings: Buildings, class_id: int, spacing: float, seed: int,
                 progress: Callable[[float], None] = lambda fraction: None) -> Splats:
    """Facade surfels on every exposed building wall, ``spacing`` metres apart, made EDGE_BATCH
    wall cells at a time (memory stays bounded; ``progress`` hears the fraction done)."""
    edges = [_exposed_edges(roof, bottom, top, buildings.labels, side) for side in SIDES]
    e = {k: np.concatenate([d[k] for d in edges]) for k in edges[0]}
    total, parts = len(e["r"]), []
    for start in range(0, max(total, 1), EDGE_BATCH):
        batch = {k: v[start:start + EDGE_BATCH] for k, v in e.items()}
        parts.append(_wall_batch(batch, ground, top.gsd, buildings, class_id, spacing, seed))
        progress(min(1.0, (start + EDGE_BATCH) / max(total, 1)))
    return Splats.concat(parts)


def _wall_batch(e: dict[str, np.ndarray], ground: np.ndarray, g: float, buildings: Buildings, class_id: int,
                spacing: float, seed: int) -> Splats:
    n_along = max(1, int(round(g / spacing)))
    n_up = np.maximum(1, np.ceil((e["z_hi"] - e["z_lo"]) / spacing)).astype(np.int64)
    count = n_up * n_along
    idx = np.repeat(np.arange(len(count)), count)
    step = ramps(count)
    ia, iu = step % n_along, step // n_along
    normal = np.stack([e["nx"], e["ny"], np.zeros_like(e["nx"])], -1)[idx]
    along_dir = np.stack([-normal[:, 1], normal[:, 0], np.zeros(len(idx))], -1)
    offset = (ia + 0.5) * g / n_along - g / 2
    z = e["z_lo"][idx] + (iu + 0.5) * (e["z_hi"] - e["z_lo"])[idx] / n_up[idx]
    xy = np.stack([e["x"], e["y"]], -1)[idx] + normal[:, :2] * g / 2 + along_dir[:, :2] * offset[:, None]
    pos = np.concatenate([xy, z[:, None]], -1)
    colour = _facade(pos, along_dir, e, idx, ground, buildings, seed)
    return _splats(pos, normal, along_dir, spacing, colour,
                   np.full(len(idx), int(SurfaceKind.BUILDING)), np.full(len(idx), class_id))


def _exposed_edges(roof, bottom, top, labels, side) -> dict[str, np.ndarray]:
    (dr, dc), (nx, ny) = side
    h, w = roof.shape
    r, c = np.nonzero(labels > 0)
    rn, cn = r + dr, c + dc
    inside = (rn >= 0) & (rn < h) & (cn >= 0) & (cn < w)
    neighbour_z = np.full(len(r), -np.inf, np.float32)
    neighbour_z[inside] = top.z[rn[inside], cn[inside]]
    z_lo = np.maximum(neighbour_z, bottom[r, c])
    keep = z_lo < roof[r, c] - 0.05
    r, c, z_lo = r[keep], c[keep], z_lo[keep]
    g = top.gsd
    return {"r": r, "c": c, "x": (c + 0.5) * g - w * g / 2, "y": h * g / 2 - (r + 0.5) * g,
            "z_lo": z_lo, "z_hi": roof[r, c], "nx": np.full(len(r), nx), "ny": np.full(len(r), ny)}


def _facade(pos, along_dir, e, idx, ground, buildings, seed) -> np.ndarray:
    r, c = e["r"][idx], e["c"][idx]
    label = buildings.labels[r, c]
    along = np.einsum("ij,ij->i", pos[:, :2], along_dir[:, :2])
    up = pos[:, 2] - ground[r, c]
    height = e["z_hi"][idx] - ground[r, c]
    bay = buildings.bay[label]
    window_key = hash_uniform(seed, 4, label, np.floor(along / bay), np.floor(up / STOREY))
    f = lambda a: np.asarray(a, np.float32)
    return facade_colour(f(buildings.base[label]), f(along), f(up), f(height), f(bay), f(window_key))
