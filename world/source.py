"""What the world looks like at any world position: a seeded procedural continuation.

Every function here takes WORLD coordinates (metres east and north of the world origin, float64
arrays) and is a pure function of (seed, position): hash noise is keyed by world lattice cells,
never by array positions, so two chunks asking about the same point get the same bits.

Content (OpenEarthMap class ids):
- relief: four octaves of value noise (200 m down to 25 m), about 14 m of amplitude; below the
  water line (a fixed relief level) the ground is flat water.
- urban districts (value noise of 300 m cells above ``Style.urban``): a road grid every ROAD_PERIOD
  metres, and one building per LOT x LOT metre lot at most, with a setback so buildings never touch
  each other or a road; storeys (up to ``Style.storeys``) and roof colour hashed from the lot index.
- woods (value noise of 150 m cells above ``Style.woods``): at most one tree per TREE_CELL metre
  cell, its crown a disc that stays inside its own cell (so crowns never merge), height hashed from
  the cell index.
A world over input rasters sets the Style from the inputs' statistics (``style_from_shares``), so
the continuation looks like the place it continues.
Objects (buildings, trees) carry an anchor point (footprint corner, crown centre): the chunk
containing the anchor owns the whole object.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.landcover.noise import hash_uniform, value_noise

ROAD_PERIOD, ROAD_WIDTH = 96.0, 7.0   # metres; a road runs along x' (or y') mod period < width
GRID_SHIFT = 41.0                     # x' = x - shift: road and lot edges never fall on chunk borders
LOT = 24.0                            # building lot side, metres (ROAD_PERIOD is 4 lots)
TREE_CELL = 7.0                       # one tree at most per cell of this side, metres
MAX_OBJECT = LOT                      # no object reaches further than this from its anchor
WATER_LINE = 0.32                     # relief level (in [0, 1]) under which there is water
RELIEF_M = 14.0                       # metres of height per unit of relief

# Class ids (openearthmap) and their albedo (sRGB).
BARE, RANGE, DEVELOPED, ROAD, TREE, WATER, FIELD, BUILDING = 1, 2, 3, 4, 5, 6, 7, 8
COLOURS = {BARE: (0.55, 0.47, 0.36), RANGE: (0.40, 0.50, 0.28), DEVELOPED: (0.55, 0.55, 0.52),
           ROAD: (0.33, 0.33, 0.34), TREE: (0.18, 0.33, 0.15), WATER: (0.15, 0.28, 0.38),
           FIELD: (0.62, 0.58, 0.32), BUILDING: (0.58, 0.45, 0.40)}


@dataclass(frozen=True)
class Style:
    """The knobs that input statistics turn; the defaults are the stand-alone procedural world."""

    urban: float = 0.55    # value-noise level above which lots hold buildings (developed: -0.05, roads: -0.1)
    woods: float = 0.45    # value-noise level above which trees grow
    storeys: int = 6       # buildings have 1 .. storeys storeys of 3 m


@dataclass
class Objects:
    """Buildings and trees at some world positions; class 0 where none."""

    class_id: np.ndarray   # uint8: BUILDING, TREE or 0
    height: np.ndarray     # float32 metres above ground
    colour: np.ndarray     # (..., 3) float32 sRGB
    anchor: np.ndarray     # (..., 2) float64 world x, y of the object's anchor (NaN where none)


def _relief(seed: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Unit-range fractal noise over world metres."""
    octaves = [value_noise(seed + 100 + o, x, y, 200.0 / 2 ** o) * 0.5 ** o for o in range(4)]
    return sum(octaves) / sum(0.5 ** o for o in range(4))


def _urban(seed: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return value_noise(seed + 200, x, y, 300.0)


def _woods(seed: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return value_noise(seed + 300, x, y, 150.0)


def _shade(seed: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return 0.85 + 0.3 * value_noise(seed + 400, x, y, 4.0)


# Shares of the world that one unit of noise-level area turns into (measured on the procedural world):
# lots hold a building 80 % of the time, covering ~35 % of the lot; woods hold ~12 % crown cover.
_BUILDING_FILL, _TREE_FILL = 0.8 * 0.35, 0.12
_MAX_COVER = 0.7  # towns and woods never cover the whole world: some open land stays between them


def style_from_shares(seed: int, building_share: float, tree_share: float,
                      building_height: float | None) -> Style:
    """The Style whose world has about these shares of building and tree cover and this median
    building height: noise levels are quantiles of the seed's own noise, sampled on a wide grid."""
    x, y = np.meshgrid(np.arange(128) * 97.0, np.arange(128) * 89.0)

    def level(noise: np.ndarray, share: float) -> float:
        return round(float(np.quantile(noise, np.clip(1 - share, 0.0, 1.0))), 4) if share > 0 else 1.01

    storeys = 6 if building_height is None else int(np.clip(round(2 * (building_height - 0.5) / 3), 1, 40))
    return Style(urban=level(_urban(seed, x, y), min(building_share / _BUILDING_FILL, _MAX_COVER)),
                 woods=level(_woods(seed, x, y), min(tree_share / _TREE_FILL, _MAX_COVER)), storeys=storeys)


@dataclass(frozen=True)
class Procedural:
    """The procedural world of one seed and style; every method takes world metres (float64)."""

    seed: int
    style: Style = field(default_factory=Style)

    def ground(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Terrain height (metres above the world datum); water is flat."""
        return RELIEF_M * (np.maximum(_relief(self.seed, x, y), WATER_LINE) - WATER_LINE)

    def ground_class(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Land cover of the ground itself (no buildings or trees): uint8 OpenEarthMap ids."""
        seed, urban_level = self.seed, self.style.urban
        relief, urban = _relief(seed, x, y), _urban(seed, x, y)
        grid = (np.mod(x - GRID_SHIFT, ROAD_PERIOD) < ROAD_WIDTH) | (np.mod(y - GRID_SHIFT, ROAD_PERIOD) < ROAD_WIDTH)
        road = grid & (urban > urban_level - 0.1)
        land = np.where(value_noise(seed + 500, x, y, 120.0) > 0.6, FIELD, np.where(relief > 0.7, BARE, RANGE))
        land = np.where(urban > urban_level - 0.05, DEVELOPED, land)
        return np.where(relief < WATER_LINE, WATER, np.where(road, ROAD, land)).astype(np.uint8)

    def ground_colour(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(..., 3) float32 sRGB albedo of the ground."""
        return class_colour(self.ground_class(x, y), _shade(self.seed, x, y))

    def _buildings(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        """(inside, height, roof colour, anchor) of the building of each position's lot."""
        seed = self.seed
        ix, iy = np.floor((x - GRID_SHIFT) / LOT), np.floor((y - GRID_SHIFT) / LOT)
        lx, ly = ix * LOT + GRID_SHIFT, iy * LOT + GRID_SHIFT
        # Lots next to a road (the first lot of each road period) start after the road.
        road_x = np.mod(ix, ROAD_PERIOD / LOT) == 0
        road_y = np.mod(iy, ROAD_PERIOD / LOT) == 0
        x0 = lx + np.where(road_x, ROAD_WIDTH, 0) + 2 + 2 * hash_uniform(seed, 11, ix, iy)
        y0 = ly + np.where(road_y, ROAD_WIDTH, 0) + 2 + 2 * hash_uniform(seed, 12, ix, iy)
        x1 = np.minimum(x0 + 8 + 10 * hash_uniform(seed, 13, ix, iy), lx + LOT - 2)
        y1 = np.minimum(y0 + 8 + 10 * hash_uniform(seed, 14, ix, iy), ly + LOT - 2)
        exists = (_urban(seed, lx + LOT / 2, ly + LOT / 2) > self.style.urban) & \
            (hash_uniform(seed, 15, ix, iy) < 0.8)
        exists &= _relief(seed, lx + LOT / 2, ly + LOT / 2) > WATER_LINE + 0.03
        inside = exists & (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
        height = 3.0 * (1 + np.floor(self.style.storeys * hash_uniform(seed, 16, ix, iy))) + 0.5
        tint = hash_uniform(seed, 17, ix, iy)[..., None]
        roof = np.array(COLOURS[BUILDING]) * (1 - tint) + np.array([0.45, 0.45, 0.47]) * tint
        return inside, height, roof, np.stack([x0, y1], -1)  # anchor: the footprint's north-west corner

    def _trees(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        """(inside, height, crown colour, anchor) of the tree of each position's tree cell."""
        seed = self.seed
        tx, ty = np.floor(x / TREE_CELL), np.floor(y / TREE_CELL)
        cx = (tx + 0.5 + 0.25 * (hash_uniform(seed, 21, tx, ty) - 0.5)) * TREE_CELL
        cy = (ty + 0.5 + 0.25 * (hash_uniform(seed, 22, tx, ty) - 0.5)) * TREE_CELL
        radius = 1.6 + 0.8 * hash_uniform(seed, 23, tx, ty)  # + jitter stays under half a cell
        density = np.clip((_woods(seed, cx, cy) - self.style.woods) * 3, 0, 0.9)
        centre_class = self.ground_class(cx, cy)
        exists = (hash_uniform(seed, 24, tx, ty) < density) & (centre_class != WATER) & (centre_class != ROAD)
        exists &= _urban(seed, cx, cy) <= self.style.urban - 0.05  # none in towns
        d = np.hypot(x - cx, y - cy) / radius
        inside = exists & (d < 1)
        crown = 6 + 8 * hash_uniform(seed, 25, tx, ty)
        height = crown * (0.6 + 0.4 * np.sqrt(np.clip(1 - d * d, 0, 1)))
        colour = np.array(COLOURS[TREE]) * (0.8 + 0.4 * hash_uniform(seed, 26, tx, ty))[..., None]
        return inside, height, colour, np.stack([cx, cy], -1)

    def objects(self, x: np.ndarray, y: np.ndarray) -> Objects:
        """Buildings and trees (buildings win where a crown would reach a lot)."""
        b_in, b_h, b_rgb, b_anchor = self._buildings(x, y)
        t_in, t_h, t_rgb, t_anchor = self._trees(x, y)
        t_in &= ~b_in
        cls = np.where(b_in, BUILDING, np.where(t_in, TREE, 0)).astype(np.uint8)
        height = np.where(b_in, b_h, np.where(t_in, t_h, 0)).astype(np.float32)
        colour = np.where(b_in[..., None], b_rgb, t_rgb) * _shade(self.seed, x, y)[..., None]
        anchor = np.where(b_in[..., None], b_anchor, np.where(t_in[..., None], t_anchor, np.nan))
        return Objects(cls, height, np.clip(colour, 0, 1).astype(np.float32), anchor)


def class_colour(class_id: np.ndarray, shade: np.ndarray | float = 1.0) -> np.ndarray:
    """(..., 3) float32 sRGB albedo of OpenEarthMap ids, times a shade."""
    lut = np.zeros((256, 3), np.float32)
    for cid, rgb in COLOURS.items():
        lut[cid] = rgb
    return np.clip(lut[class_id] * np.asarray(shade)[..., None], 0, 1).astype(np.float32)
