"""Synthetic city tiles with known truth: orthophoto, nDSM and OpenEarthMap semantic map.

Used by tests, the benchmark and to make the example tile (examples/). Deterministic per seed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

# OpenEarthMap ids
RANGELAND, DEVELOPED, ROAD, TREE, WATER, BUILDING = 2, 3, 4, 5, 6, 8


def make_city_tile(size: int = 256, gsd: float = 0.5, seed: int = 0) -> dict[str, np.ndarray]:
    """rgb (H, W, 3) uint8, ndsm (H, W) float32 metres, semantic (H, W) uint8 ids; row 0 north."""
    rng = np.random.default_rng(seed)
    sem = np.full((size, size), RANGELAND, np.uint8)
    ndsm = np.zeros((size, size), np.float32)
    rgb = np.zeros((size, size, 3), np.float32)
    yy, xx = np.mgrid[0:size, 0:size]
    texture = ndimage.gaussian_filter(rng.random((size, size)), 2)[..., None]
    rgb[:] = np.array([0.36, 0.45, 0.24]) * (0.85 + 0.3 * texture)  # grass
    # Roads: a grid every ~64 m, 8 m wide, with a dashed centre line.
    period, width = int(64 / gsd), int(8 / gsd)
    road = ((yy % period) < width) | ((xx % period) < width)
    sem[road] = ROAD
    rgb[road] = 0.33 + 0.04 * rng.random((int(road.sum()), 1))
    centre = road & ((((yy % period) == width // 2) & ((xx // 6) % 2 == 0)) |
                     (((xx % period) == width // 2) & ((yy // 6) % 2 == 0)))
    rgb[centre] = 0.85
    # A pond.
    pond = (yy - size * 0.72) ** 2 / 1.5 + (xx - size * 0.3) ** 2 < (size * 0.06) ** 2
    pond &= ~road
    sem[pond], rgb[pond] = WATER, [0.12, 0.22, 0.33]
    _add_buildings(rng, sem, ndsm, rgb, road | pond, gsd)
    _add_trees(rng, sem, ndsm, rgb, gsd)
    rgb += rng.normal(0, 0.015, rgb.shape)
    return {"rgb": np.clip(rgb * 255, 0, 255).astype(np.uint8), "ndsm": ndsm, "semantic": sem}


def _add_buildings(rng, sem, ndsm, rgb, blocked, gsd) -> None:
    size = sem.shape[0]
    for _ in range(int(90 * (size * gsd / 128) ** 2)):
        h, w = (rng.integers(10, 30, 2) / gsd).astype(int)
        r, c = rng.integers(0, size - h), rng.integers(0, size - w)
        box = (slice(r, r + h), slice(c, c + w))
        if blocked[box].any() or (sem[r - 2:r + h + 2, c - 2:c + w + 2] == BUILDING).any():
            continue
        height = rng.uniform(4, 24)
        roof_colour = rng.choice([[0.62, 0.30, 0.22], [0.55, 0.55, 0.57], [0.40, 0.36, 0.35], [0.70, 0.68, 0.62]])
        sem[box] = BUILDING
        if rng.random() < 0.5:  # gable roof, ridge along the long side
            t = np.abs(np.linspace(-1, 1, h))[:, None] if h < w else np.abs(np.linspace(-1, 1, w))[None, :]
            rise = 0.4 * min(h, w) * gsd * 0.5
            ndsm[box] = height + rise * (1 - t)
            shade = 0.85 + 0.3 * (np.linspace(0, 1, h)[:, None] < 0.5 if h < w else np.linspace(0, 1, w)[None, :] < 0.5)
            rgb[box] = np.asarray(roof_colour) * shade[..., None]
        else:
            ndsm[box] = height
            rgb[box] = roof_colour
            # Roof furniture: a darker plant room.
            rgb[r + h // 3:r + h // 2, c + w // 3:c + w // 2] *= 0.6


def _add_trees(rng, sem, ndsm, rgb, gsd) -> None:
    size = sem.shape[0]
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(int(25 * (size * gsd / 128) ** 2)):
        r, c = rng.integers(0, size, 2)
        radius = rng.uniform(2, 5) / gsd
        disc = (yy - r) ** 2 + (xx - c) ** 2 < radius ** 2
        disc &= sem == RANGELAND
        if disc.sum() < 10:
            continue
        top = rng.uniform(6, 14)
        d = np.sqrt((yy[disc] - r) ** 2 + (xx[disc] - c) ** 2) / radius
        sem[disc] = TREE
        ndsm[disc] = top * np.sqrt(np.clip(1 - 0.6 * d ** 2, 0, 1))
        rgb[disc] = np.array([0.16, 0.30, 0.12]) * (0.8 + 0.4 * rng.random((int(disc.sum()), 1)))


def write_tile(directory: Path, tile: dict[str, np.ndarray], gsd: float = 0.5, crs: str = "EPSG:32633",
               west: float = 500000.0, north: float = 5000000.0) -> dict[str, Path]:
    """Write the tile as GeoTIFFs (rgb.tif deflate, ndsm.tif float32, semantic.tif uint8)."""
    import rasterio
    from rasterio.transform import from_origin

    directory.mkdir(parents=True, exist_ok=True)
    transform = from_origin(west, north, gsd, gsd)
    paths = {}
    for name, data, kw in (("rgb", tile["rgb"], {"compress": "deflate"}),
                           ("ndsm", tile["ndsm"], {"compress": "deflate", "nodata": -9999.0}),
                           ("semantic", tile["semantic"], {"compress": "lzw"})):
        bands = data.transpose(2, 0, 1) if data.ndim == 3 else data[None]
        path = directory / f"{name}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=bands.shape[2], height=bands.shape[1],
                           count=bands.shape[0], dtype=bands.dtype, crs=crs, transform=transform, **kw) as dst:
            dst.write(bands)
        paths[name] = path
    return paths
