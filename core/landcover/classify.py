"""Land cover when no semantic map is given: a documented heuristic, labelled as such in the report.

Rules, applied per analysis-grid cell, later rules winning:
1. everything starts as bare land;
2. vegetation: NDVI = (NIR - R) / (NIR + R) > 0.2 when a near-infrared band exists, else excess
   green ExG = (2G - R - B) / (R + G + B) > 0.06; it is a tree where the nDSM says > 2 m, or, with
   no heights, where it is also dark (value < 0.45); otherwise rangeland (grass);
3. water: blue-dominant (B > R and B >= G) and dark (value < 0.35); or dark (< 0.45), smooth (std of
   value over 5x5 cells < 0.015), coloured (saturation > 0.12, unlike asphalt) and not strongly
   green (ExG < 0.12): rivers are often olive; or NIR < 0.08 when present;
4. road / paved: low saturation (< 0.12) grey of middle brightness (0.25..0.75);
5. building: nDSM > 2.5 m and not vegetation when heights exist; with no heights, red-brown tiled
   roofs (R > 1.15 G, R > 1.25 B, saturation > 0.2) and very bright low-saturation roofs (> 0.78);
6. with heights but no colour: > 2.5 m and smooth is building, > 2 m and rough is tree, else
   bare land; roughness is the local mean of |nDSM - 5x5 median| (> 0.5 m is rough), which,
   unlike a plain standard deviation, stays low along building edges.
Speckles are removed by a 5x5 majority (mode) filter, then buildings under 20 m² and trees under
4 m² become bare land and grass. Roles are OpenEarthMap classes, translated to the requested scheme
by its ``from_openearthmap`` table.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..inputs.resample import area_mean
from ..schemes import ClassScheme
from ..tile import Tile

BARE, GRASS, PAVED, ROAD, TREE, WATER, BUILDING = "bare", "grass", "paved", "road", "tree", "water", "building"
_ORDER = [BARE, GRASS, PAVED, ROAD, TREE, WATER, BUILDING]
_OPENEARTHMAP = np.array([1, 2, 3, 4, 5, 6, 8], np.uint8)  # the OpenEarthMap class of each role


def photo_on_grid(tile: Tile) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The orthophoto (H, W, 3) and NIR (H, W) averaged onto the analysis grid, ignoring no-data
    pixels: what the heuristic classifies."""
    if tile.rgb is None:
        return None, None
    weight = area_mean(tile.image_valid.astype(np.float32), tile.shape)
    mean = lambda a: area_mean(a * tile.image_valid, tile.shape) / np.maximum(weight, 1e-6)
    rgb = np.stack([mean(tile.rgb[..., i]) for i in range(3)], -1)
    return rgb, (mean(tile.nir) if tile.nir is not None else None)


def classify(scheme: ClassScheme, rgb: np.ndarray | None, nir: np.ndarray | None,
             ndsm: np.ndarray | None, cell_area: float) -> np.ndarray:
    """(H, W) uint8 class ids of ``scheme`` from colour (H, W, 3), NIR (H, W) and nDSM (H, W)."""
    shape = (rgb if rgb is not None else ndsm).shape[:2]
    role = np.zeros(shape, np.uint8)  # index into _ORDER
    if rgb is not None:
        _classify_colour(role, rgb, nir, ndsm)
    else:
        _classify_height(role, ndsm)
    role = _drop_small(_majority(role, len(_ORDER)), cell_area)
    return scheme.openearthmap_lut()[_OPENEARTHMAP[role]]


def _set(role: np.ndarray, mask: np.ndarray, name: str) -> None:
    role[mask] = _ORDER.index(name)


def _classify_colour(role, rgb, nir, ndsm) -> None:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    value = rgb.max(-1)
    sat = (value - rgb.min(-1)) / np.maximum(value, 1e-3)
    exg = (2 * g - r - b) / np.maximum(r + g + b, 1e-3)
    green = (nir - r) / np.maximum(nir + r, 1e-3) > 0.2 if nir is not None else exg > 0.06
    tall = ndsm > 2.0 if ndsm is not None else value < 0.45
    _set(role, green & ~tall, GRASS)
    _set(role, green & tall, TREE)
    mean = ndimage.uniform_filter(value, 5)
    smooth = ndimage.uniform_filter(value * value, 5) - mean * mean < 0.015 ** 2
    water = ((b > r) & (b >= g) & (value < 0.35) & ~green) | \
        (smooth & (value < 0.45) & (sat > 0.12) & (exg < 0.12))
    if nir is not None:
        water |= nir < 0.08
    _set(role, water, WATER)
    _set(role, (sat < 0.12) & (value > 0.25) & (value < 0.75) & ~green & ~water, ROAD)
    if ndsm is not None:
        building = (ndsm > 2.5) & ~green
    else:
        tiled = (r > 1.15 * g) & (r > 1.25 * b) & (sat > 0.2)
        building = (tiled | ((value > 0.78) & (sat < 0.15))) & ~green
        building = ndimage.binary_opening(building, iterations=2)
    _set(role, building, BUILDING)


def _classify_height(role, ndsm) -> None:
    rough = ndimage.uniform_filter(np.abs(ndsm - ndimage.median_filter(ndsm, 5)), 5) > 0.5
    _set(role, (ndsm > 2.0) & rough, TREE)
    _set(role, (ndsm > 2.5) & ~rough, BUILDING)


def _majority(labels: np.ndarray, n: int) -> np.ndarray:
    """5x5 mode filter, vectorised over classes (n is small)."""
    counts = np.stack([ndimage.uniform_filter((labels == c).astype(np.float32), 5) for c in range(n)])
    return counts.argmax(0).astype(np.uint8)


def _drop_small(role: np.ndarray, cell_area: float) -> np.ndarray:
    """Buildings under 20 m² become bare land, trees under 4 m² grass: too small to model."""
    for name, min_area, into in ((BUILDING, 20.0, BARE), (TREE, 4.0, GRASS)):
        labels, n = ndimage.label(role == _ORDER.index(name))
        small = np.bincount(labels.ravel(), minlength=n + 1) * cell_area < min_area
        small[0] = False
        role[small[labels]] = _ORDER.index(into)
    return role
