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
- avenues: about ``Style.avenues`` of the roads (value noise of AVENUE_M cells) have a row of
  trees SIDEWALK_M inside each edge, one every AVENUE_SPACING metres, none in a junction.
- woods (value noise of 150 m cells plus finer noise of CLUMP_M cells, for clumps and glades,
  above ``Style.woods``): at most one tree per TREE_CELL metre cell, its crown a disc centred
  anywhere in its cell (so crowns now and then touch or overlap: clusters and glades, no lattice;
  where they overlap the higher crown shows), height hashed from the cell index; in towns too, as
  garden trees clear of their lot's building.
A world over input rasters sets the Style from the inputs' statistics (``style_from_shares``), and
over a photo paints its ground, roofs and crowns with the photo's own texture (``exemplars``), so
the continuation looks like the place it continues.
Objects (buildings, trees) carry an anchor point (footprint corner, crown centre): the chunk
containing the anchor owns the whole object.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..core.landcover.noise import hash_uniform, value_noise

if TYPE_CHECKING:
    from .exemplars import Texture

ROAD_PERIOD, ROAD_WIDTH = 96.0, 7.0   # metres; a road runs along x' (or y') mod period < width
GRID_SHIFT = 41.0                     # x' = x - shift: road and lot edges never fall on chunk borders
LOT = 24.0                            # building lot side, metres (ROAD_PERIOD is 4 lots)
TREE_CELL = 7.0                       # one tree at most per cell of this side, metres
CLUMP_M = 30.0                        # trees stand in clumps about this wide
SIDEWALK_M = 1.2                      # an avenue's trees stand this far inside the road's edge
AVENUE_SPACING = 8.0                  # metres between an avenue's trees
AVENUE_RADIUS = 2.2                   # an avenue's crown radius at most (rows on both sides never touch)
AVENUE_M = 150.0                      # roads are lined with trees, or not, over about this length
AVENUES_PER_TREE_SHARE = 2.0          # a continuation lines this times the inputs' tree share of its roads
MAX_OBJECT = LOT                      # no object reaches further than this from its anchor
MAX_RADIUS = 3.2                      # crown radius at most (under a tree cell: crowns reach one cell round theirs)
MIRRORED_M = 20.0                     # input objects cut by an input area's edge go on this far beyond it (``view``)
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
    crown: float = 1.0     # crown radius factor (densely wooded places have wider crowns)
    avenues: float = 0.5   # about this share of the roads is lined with trees on both sides


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


SHADE_OCTAVES = ((4.0, 0.5), (11.0, 0.3), (37.0, 0.2))  # (cell metres, weight): sides with no common
# multiple, so the ground's mottling shows no lattice


def _shade(seed: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    mottle = sum(weight * value_noise(seed + 400 + k, x, y, cell) for k, (cell, weight) in enumerate(SHADE_OCTAVES))
    return 0.8 + 0.4 * mottle


NEAR_M = 256.0      # the continuation is calibrated on the land within this distance of the inputs
CALIBRATION_M = 5.3  # ... sampled every this many metres (no multiple of a cell side: no aliasing)
MAX_CROWN = 2.0      # crown radius factor at most (radii stay under MAX_RADIUS) ...
CROWN_STEP = 0.1     # ... in steps of this
# The land nearest the inputs holds fewer procedural objects (the edge's reflection, the objects'
# clearance, continued water and roads): calibrated to this times the inputs' shares, the ring of
# chunks around an input shows about its shares, and a large world stays within 0.1 of them.
BOOST = 1.2
DENSEST_WOODS = -0.5  # the lowest woods level a calibration sets: below every tree's (see ``_tree_cells``)


def style_from_shares(seed: int, building_share: float, tree_share: float, building_height: float | None,
                      bounds: tuple[float, float, float, float]) -> Style:
    """The Style whose world, on the land around the input area ``bounds`` (west, south, east, north,
    world metres) where the continuation shows, has these shares of building and tree cover and
    this median building height. The shares are measured on the procedural objects themselves and
    the noise levels found by bisection, so fills, roads and water need no model."""
    x, y = _near(bounds)
    building_share, tree_share = (min(BOOST * share, 0.9) for share in (building_share, tree_share))
    storeys = 6 if building_height is None else int(np.clip(round(2 * (building_height - 0.5) / 3), 1, 40))

    def level_for(levels: np.ndarray, target: float) -> float:
        return _bisect(lambda level: float((levels > level).mean()), target)

    def cover_levels(style: Style, cls: int) -> np.ndarray:
        return Procedural(seed, style).cover_levels(x, y, cls)

    urban = level_for(cover_levels(Style(storeys=storeys), BUILDING), building_share) if building_share > 0 else 1.01
    # Where the densest woods are not enough, wider crowns: the least factor (in CROWN_STEP steps up to
    # MAX_CROWN) whose densest woods reach the share, found by bisection (cover grows with the crowns).
    low, high = 0, round((MAX_CROWN - 1) / CROWN_STEP) if tree_share > 0 else 0
    while low < high:
        mid = (low + high) // 2
        levels = cover_levels(Style(urban=urban, storeys=storeys, crown=round(1 + CROWN_STEP * mid, 2)), TREE)
        low, high = (mid + 1, high) if (levels > DENSEST_WOODS).mean() < tree_share else (low, mid)
    crown = round(1 + CROWN_STEP * low, 2)
    # Leafy places line more of their roads with trees (the woods level below counts those too).
    avenues = round(float(np.clip(AVENUES_PER_TREE_SHARE * tree_share, 0.1, 0.9)), 3)
    woods = level_for(cover_levels(Style(urban=urban, storeys=storeys, crown=crown, avenues=avenues), TREE),
                      tree_share) if tree_share > 0 else 1.01
    return Style(urban=urban, woods=woods, storeys=storeys, crown=crown, avenues=avenues)


def clearance(class_id: np.ndarray) -> np.ndarray:
    """How far outside an input area a procedural object's anchor must lie: beyond the input
    objects continued past the area's edge (MIRRORED_M) by the object's reach from its anchor."""
    return MIRRORED_M + np.where(class_id == BUILDING, MAX_OBJECT, MAX_RADIUS)


def distance_outside(bounds: tuple[float, float, float, float], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Distance (metres) of world positions from the rectangle ``bounds`` (west, south, east, north); 0 inside."""
    w, s, e, n = bounds
    return np.hypot(np.maximum(np.maximum(w - x, x - e), 0), np.maximum(np.maximum(s - y, y - n), 0))


def _near(bounds: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Sample points within NEAR_M of the input area, where procedural objects may stand (trees
    from MIRRORED_M + MAX_RADIUS outside it)."""
    w, s, e, n = bounds
    x, y = np.meshgrid(np.arange(w - NEAR_M, e + NEAR_M, CALIBRATION_M) + CALIBRATION_M / 2,
                       np.arange(s - NEAR_M, n + NEAR_M, CALIBRATION_M) + CALIBRATION_M / 2)
    keep = distance_outside(bounds, x, y) > MIRRORED_M + MAX_RADIUS
    return x[keep], y[keep]


def _bisect(share_at, target: float, low: float = DENSEST_WOODS, high: float = 1.01, steps: int = 10) -> float:
    """The noise level whose share (falling as the level rises) is closest to ``target``."""
    for _ in range(steps):
        mid = (low + high) / 2
        low, high = (mid, high) if share_at(mid) > target else (low, mid)
    return round((low + high) / 2, 4)


@dataclass(frozen=True)
class Procedural:
    """The procedural world of one seed and style; every method takes world metres (float64)."""

    seed: int
    style: Style = field(default_factory=Style)
    texture: Texture | None = None  # the input photo's (``exemplars``); None: the palette, COLOURS

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
        return self.colour_of(self.ground_class(x, y), x, y)

    def colour_of(self, class_id: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(..., 3) float32 sRGB albedo of ground of OpenEarthMap classes ``class_id`` at positions
        (the photo's texture where the world has one), shaded as this world shades its ground."""
        class_id, x, y = np.broadcast_arrays(class_id, x, y)
        shade = _shade(self.seed, x, y)
        colour = class_colour(class_id, shade)
        if self.texture is not None:
            has = self.texture.has(class_id)
            colour[has] = np.clip(self.texture.colour(class_id[has], x[has], y[has]) * shade[has][:, None], 0, 1)
        return colour

    def _footprint(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        """(lot ix, iy, building level, footprint x0, y0, x1, y1) of each position's lot: its building
        stands where ``Style.urban`` is below the building level (-inf: on no level)."""
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
        mx, my = lx + LOT / 2, ly + LOT / 2
        buildable = (hash_uniform(seed, 15, ix, iy) < 0.8) & (_relief(seed, mx, my) > WATER_LINE + 0.03)
        level = np.where(buildable, _urban(seed, mx, my), -np.inf)
        return ix, iy, level, x0, y0, x1, y1

    def _on_footprint(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        """(lot ix, iy, the building level (see ``_footprint``) where a position lies on its lot's
        footprint, -inf elsewhere; the footprint's x0, y1: its north-west corner)."""
        ix, iy, level, x0, y0, x1, y1 = self._footprint(x, y)
        return ix, iy, np.where((x >= x0) & (x < x1) & (y >= y0) & (y < y1), level, -np.inf), x0, y1

    def _buildings(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        """(inside, height, roof colour, anchor) of the building of each position's lot."""
        seed = self.seed
        ix, iy, level, x0, y1 = self._on_footprint(x, y)
        inside = level > self.style.urban
        height = 3.0 * (1 + np.floor(self.style.storeys * hash_uniform(seed, 16, ix, iy))) + 0.5
        tint = hash_uniform(seed, 17, ix, iy)[..., None]
        roof = np.array(COLOURS[BUILDING]) * (1 - tint) + np.array([0.45, 0.45, 0.47]) * tint
        return inside, height, roof, np.stack([x0, y1], -1)  # anchor: the footprint's north-west corner

    def _trees(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        """(inside, height, crown colour, anchor) of the highest crown over each position (see ``_crowns``)."""
        (level, cx, cy, _, crown, colour), near, d = self._crowns(x, y)
        inside = (level[near] > self.style.woods) & (d < 1)
        height = np.where(inside, crown[near] * (0.6 + 0.4 * np.sqrt(np.clip(1 - d * d, 0, 1))), -np.inf)
        top = np.argmax(height, 1)[:, None]
        tree = np.take_along_axis(near, top, 1)[:, 0]
        shape = np.shape(x)
        return (inside.any(1).reshape(shape), np.maximum(np.take_along_axis(height, top, 1), 0).reshape(shape),
                colour[tree].reshape(shape + (3,)), np.stack([cx[tree], cy[tree]], -1).reshape(shape + (2,)))

    def _crowns(self, x: np.ndarray, y: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
        """(``_tree_cells`` of the trees near any position, (N, 9) indices into them of the trees of
        each position's tree cell and the eight around it (a crown reaches at most one cell past its
        own), (N, 9) distances from those crowns' centres in crown radii), N positions flattened."""
        tx, ty = np.floor(x / TREE_CELL).ravel(), np.floor(y / TREE_CELL).ravel()
        lo_x, lo_y = (tx.min() - 1, ty.min() - 1) if tx.size else (0.0, 0.0)
        span = int(ty.max() - lo_y + 2) if tx.size else 1
        # Cells as keys (x then y, from one cell before the lowest): each cell's 3 x 3 keys, looked up once.
        cells, at = np.unique(((tx - lo_x) * span + (ty - lo_y)).astype(np.int64), return_inverse=True)
        around = (cells[:, None] + (np.arange(-1, 2)[:, None] * span + np.arange(-1, 2)).ravel()).ravel()
        keys, near = np.unique(around, return_inverse=True)
        trees = self._tree_cells(keys // span + lo_x, keys % span + lo_y)
        near = near.reshape(len(cells), 9)[at.ravel()]
        _, cx, cy, radius, _, _ = trees
        return trees, near, np.hypot(x.ravel()[:, None] - cx[near], y.ravel()[:, None] - cy[near]) / radius[near]

    def _tree_cells(self, tx: np.ndarray, ty: np.ndarray) -> tuple[np.ndarray, ...]:
        """(level, crown centre x, y, radius, crown height, colour (n, 3)) of the tree of tree cells:
        it stands where ``Style.woods`` is below its level (-inf: on no level)."""
        seed = self.seed
        radius = np.minimum((1.6 + 0.8 * hash_uniform(seed, 23, tx, ty)) * self.style.crown, MAX_RADIUS)
        # The crown centred anywhere in its cell: neighbours' crowns touch or overlap now and then
        # (clusters and glades, no lattice).
        cx = (tx + hash_uniform(seed, 21, tx, ty)) * TREE_CELL
        cy = (ty + hash_uniform(seed, 22, tx, ty)) * TREE_CELL
        # Woods fray into clumps and glades at their edges (value noise of CLUMP_M cells). A tree
        # stands with a probability of 3 times the woods' excess over the level, at most 0.9.
        woods = _woods(seed, cx, cy) + 0.4 * (value_noise(seed + 310, cx, cy, CLUMP_M) - 0.5)
        chance = hash_uniform(seed, 24, tx, ty)
        centre_class = self.ground_class(cx, cy)
        level = np.where((chance < 0.9) & (centre_class != WATER) & (centre_class != ROAD), woods - chance / 3, -np.inf)
        # None whose crown would reach into an avenue's (standing within reach of a road's edge).
        for axis, (across, along) in enumerate(((cx, cy), (cy, cx))):
            line, road, _ = self._road_edges(across, axis)
            close = np.flatnonzero((level > -np.inf) & (np.abs(across - line) < radius + AVENUE_RADIUS))
            level[close[self._is_road(road[close], along[close], axis)]] = -np.inf
        # In towns, garden trees: none whose crown would reach its lot's building.
        _, _, building, x0, y0, x1, y1 = self._footprint(cx, cy)
        level[(building > self.style.urban) & (cx > x0 - radius) & (cx < x1 + radius)
              & (cy > y0 - radius) & (cy < y1 + radius)] = -np.inf
        crown = 6 + 8 * hash_uniform(seed, 25, tx, ty)
        colour = np.array(COLOURS[TREE]) * (0.8 + 0.4 * hash_uniform(seed, 26, tx, ty))[..., None]
        return level, cx, cy, radius, crown, colour

    def _road_edges(self, across: np.ndarray, axis: int) -> tuple[np.ndarray, ...]:
        """For positions ``across`` the grid's roads of one direction (``axis`` 0: north-south
        roads, x across them): (the nearest avenue line, SIDEWALK_M inside a road edge; its road's
        centre across; a key of that line)."""
        base = np.floor((across - GRID_SHIFT) / ROAD_PERIOD) * ROAD_PERIOD + GRID_SHIFT
        lines = np.stack([base + SIDEWALK_M, base + ROAD_WIDTH - SIDEWALK_M, base + ROAD_PERIOD + SIDEWALK_M])
        pick = np.argmin(np.abs(lines - across), 0)
        line = np.take_along_axis(lines, pick[None], 0)[0]
        road = base + np.where(pick == 2, ROAD_PERIOD, 0) + ROAD_WIDTH / 2
        key = 4 * np.round((road - GRID_SHIFT) / ROAD_PERIOD) + 2 * (pick == 1) + axis
        return line, road, key

    def _is_road(self, road: np.ndarray, along: np.ndarray, axis: int) -> np.ndarray:
        """Whether the grid road whose centre lies at ``road`` across (see ``_road_edges``) exists
        (is road ground) ``along`` it."""
        return self.ground_class(*_swapped(road, along, axis)) == ROAD

    def _avenues(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
        """(inside, height, crown colour, anchor) of the avenue tree at each position, if any.

        An avenue line runs SIDEWALK_M inside each edge of every road of the grid; along stretches
        of existing road that are lined (value noise of AVENUE_M cells under ``Style.avenues``), a
        tree stands on it every AVENUE_SPACING metres (nine in ten), none in a junction. Crowns
        stay within their spacing and their side of the road, and overhang the road and its
        setback, clear of the buildings."""
        seed, shape = self.seed, np.shape(x)
        x, y = np.ravel(x), np.ravel(y)
        inside, height = np.zeros(x.size, bool), np.zeros(x.size)
        colour, anchor = np.zeros((x.size, 3)), np.full((x.size, 2), np.nan)
        for axis in (0, 1):  # roads running north-south (x across them), then east-west
            across, along = _swapped(x, y, axis)
            line, road, key = self._road_edges(across, axis)
            near = np.flatnonzero((np.abs(across - line) < AVENUE_RADIUS) & ~inside)
            line, road, key, across, along = line[near], road[near], key[near], across[near], along[near]
            k = np.floor(along / AVENUE_SPACING)
            radius = AVENUE_RADIUS * (0.7 + 0.3 * hash_uniform(seed, 41, key, k))
            jitter = (AVENUE_SPACING / 2 - radius) * (2 * hash_uniform(seed, 42, key, k) - 1)
            centre = (k + 0.5) * AVENUE_SPACING + jitter
            crossing = np.abs(np.mod(centre - GRID_SHIFT - ROAD_WIDTH / 2 + ROAD_PERIOD / 2, ROAD_PERIOD)
                              - ROAD_PERIOD / 2)  # from the middle of the nearest crossing road
            d = np.hypot(across - line, along - centre) / radius
            hit = (d < 1) & (crossing > ROAD_WIDTH / 2 + radius) & (hash_uniform(seed, 43, key, k) < 0.9)
            lined = value_noise(seed + 330, *_swapped(road[hit], centre[hit], axis), AVENUE_M) < self.style.avenues
            hit[hit] = self._is_road(road[hit], centre[hit], axis) & lined
            at = near[hit]
            inside[at] = True
            crown = 5 + 5 * hash_uniform(seed, 44, key[hit], k[hit])
            height[at] = crown * (0.6 + 0.4 * np.sqrt(np.clip(1 - d[hit] ** 2, 0, 1)))
            colour[at] = np.array(COLOURS[TREE]) * (0.8 + 0.4 * hash_uniform(seed, 45, key[hit], k[hit]))[:, None]
            anchor[at] = np.stack(_swapped(line[hit], centre[hit], axis), -1)
        return (inside.reshape(shape), height.reshape(shape), colour.reshape(shape + (3,)),
                anchor.reshape(shape + (2,)))

    def cover_levels(self, x: np.ndarray, y: np.ndarray, cls: int) -> np.ndarray:
        """The highest level of the class's knob (``Style.urban`` for BUILDING, ``Style.woods`` for
        TREE) at which ``objects`` shows class ``cls`` at each position, the other knobs as this
        style has them: -inf where it shows on no level, inf where on every level (avenues). The
        cover at a level is where this exceeds it, so a calibration measures every level at once."""
        building = self._on_footprint(x, y)[2]
        if cls == BUILDING:
            return building
        (level, *_), near, d = self._crowns(x, y)
        crowns = np.where(d < 1, level[near], -np.inf).max(1).reshape(np.shape(x))
        crowns[self._avenues(x, y)[0]] = np.inf
        return np.where(building > self.style.urban, -np.inf, crowns)

    def objects(self, x: np.ndarray, y: np.ndarray) -> Objects:
        """Buildings and trees (buildings win where a crown would reach a lot)."""
        x, y = np.broadcast_arrays(x, y)
        b_in, b_h, b_rgb, b_anchor = self._buildings(x, y)
        t_in, t_h, t_rgb, t_anchor = self._trees(x, y)
        a_in, a_h, a_rgb, a_anchor = self._avenues(x, y)
        t_in, t_h = t_in | a_in, np.where(a_in, a_h, t_h)
        t_rgb, t_anchor = np.where(a_in[..., None], a_rgb, t_rgb), np.where(a_in[..., None], a_anchor, t_anchor)
        t_in &= ~b_in
        cls = np.where(b_in, BUILDING, np.where(t_in, TREE, 0)).astype(np.uint8)
        height = np.where(b_in, b_h, np.where(t_in, t_h, 0)).astype(np.float32)
        colour = np.where(b_in[..., None], b_rgb, t_rgb)
        anchor = np.where(b_in[..., None], b_anchor, np.where(t_in[..., None], t_anchor, np.nan))
        if self.texture is not None:  # the photo's roofs and canopy
            on = self.texture.has(cls)
            colour[on] = self.texture.object_colour(cls[on], x[on], y[on], anchor[on])
        colour = colour * _shade(self.seed, x, y)[..., None]
        return Objects(cls, height, np.clip(colour, 0, 1).astype(np.float32), anchor)


def _swapped(a: np.ndarray, b: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) for ``axis`` 0, (b, a) for 1: world (x, y) from (across, along) a road of that
    direction, and back."""
    return (a, b) if axis == 0 else (b, a)


def class_colour(class_id: np.ndarray, shade: np.ndarray | float = 1.0) -> np.ndarray:
    """(..., 3) float32 sRGB albedo of OpenEarthMap ids, times a shade."""
    lut = np.zeros((256, 3), np.float32)
    for cid, rgb in COLOURS.items():
        lut[cid] = rgb
    return np.clip(lut[class_id] * np.asarray(shade)[..., None], 0, 1).astype(np.float32)
