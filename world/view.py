"""What one chunk sees of the world: ground height, land cover and colour at any world position of
its window, and the objects it owns. Two kinds of world:

- ``ProceduralView``: the seeded procedural world alone (``source``).
- ``InputView``: the input rasters, read for this chunk's window only, with the procedural world
  beyond them (painted with the photo's own texture where there is one: ``exemplars``). Past
  the input's edge the ground eases from the input's edge value into the procedural relief over
  HANDOVER_M, and the colour, the photo's mirror image there, over COLOUR_HANDOVER_M (smoothstep
  of the distance to the input area), so there is no step or line at the hand-over and no edge
  pixel is drawn out into streaks; continued water stays at the edge's level, its banks rising to
  the relief over BANK_M. What the edge cuts goes on beyond it: water and roads that cross it
  straight out, at the width they cross it with, ending round at MIRROR_M (``_edge_profiles``);
  trees up to about OBJECT_MIRROR_M and buildings up to source.MIRRORED_M taken from the input's mirror image
  across the edge (the reflection), so an object the edge cuts becomes a whole one (a canopy with
  a rim, a building with its walls) instead of ending in a cliff. Objects' mirror images are
  sheared along the edge by the buildings' slant there, so slanted buildings go on straight, not as
  chevrons; buildings grazing the edge end at it. The window reads the inputs' cells it reflects
  (and shears) as well (``analysis_cells``).

Every method is a pure function of world position (and the spec): windows are sampled through
global grid indices, so two chunks asking about one point get the same bits.

Ownership, so no object is cut where it can be whole and none is made twice:
- procedural objects belong to the chunk holding their anchor (``source``); near the inputs only
  those whose anchor lies far enough outside the input area exist (``source.clearance``), so they
  never overlap input content or its continuation;
- an input object (a 4-connected component of building or vegetation cells) whose bounding box
  fits the overlap band is *small*: it is seen whole by the chunk holding its first cell (north-
  west-most, row-major), which owns it whole. Any other component is *large* and is cut at chunk
  borders: each chunk owns its cells inside the chunk square, and sees those within CONTEXT_M past
  it as context (meshed for their neighbours' sake, then dropped: ``ObjectTile``). A window
  decides this alone and every window decides the same: a component touching a window's edge and
  reaching into its chunk square is wider than the band, so large from every side.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
from scipy import ndimage

from ..core.convert.solids import Cut
from ..core.generators import Estimator, GenerateSettings
from ..core.georef import Georeference
from ..core.inputs.raster import open_raster
from ..core.inputs.resample import nearest
from ..core.inputs.semantic import read_class_values
from ..core.landcover import building_heights, classify, first_cells, tree_heights, wood_heights
from ..core.landcover.noise import smoothstep, value_noise
from ..core.schemes import SurfaceKind, get_scheme
from ..core.tile import Tile
from . import source
from .exemplars import Exemplars, Texture
from .inputs import InputRaster, RasterWindow, block_factor, read_squares, read_window
from .layout import WorldSpec

HANDOVER_M = 64.0
COLOUR_HANDOVER_M = 6.0
VALID_RIM = 3            # analysis cells of ground kept around owned objects (walls meet it)
MIRROR_M = 96.0          # water and roads the input's edge cuts go on this far beyond it ...
# ... where they cross it: (depth, share, least, most): they fill more than ``share`` of the first
# ``depth`` metres inward from it over ``least`` to ``most`` metres along it (roads are long and
# narrow; narrower runs are paths or noise, wider ones yards and squares) ...
CROSSINGS = {SurfaceKind.WATER: (16.0, 0.5, 4.0, math.inf), SurfaceKind.ROAD: (32.0, 0.6, 4.0, 24.0)}
END_RADIUS_M = 20.0      # ... and end in a half disc across their width (a wider one: its corners rounded so)
OBJECT_MIRROR_M = 0.8 * source.MIRRORED_M  # objects the edge cuts go on about this far beyond it (x 0.75 .. 1.25)
BANK_M = 8.0             # beyond the input, ground rises from continued water to the relief over this
ATTACH_M = source.MIRRORED_M  # an object is continued if it reaches the edge within this many metres of steps
SLANT_M = 4.0            # the buildings' direction near an edge is measured over this (Gaussian sigma) ...
MAX_SLANT = 0.5          # ... and continued objects shift along the edge at most this far per metre out
SHEAR_M = 2 * MAX_SLANT * source.MIRRORED_M  # so their sources lie at most this far from their reflections
# Cells read round reflected ones (filters, depths, crossings...):
REACH_M = max(2 * END_RADIUS_M, *(c[0] for c in CROSSINGS.values()), SHEAR_M + ATTACH_M) + 4.0
OBJECT_KINDS = (SurfaceKind.BUILDING, SurfaceKind.VEGETATION)
CONTEXT_M = 3.0          # cut objects are meshed this far past the chunk square (``core.convert.Cut``)


class View(Protocol):
    def ground(self, x: np.ndarray, y: np.ndarray) -> np.ndarray: ...
    def ground_class(self, x: np.ndarray, y: np.ndarray) -> np.ndarray: ...
    def ground_colour(self, x: np.ndarray, y: np.ndarray) -> np.ndarray: ...
    def object_tile(self, photo_context: bool = True) -> ObjectTile | None: ...


@dataclass
class ObjectTile:
    """What the chunk's generator runs on: the objects the chunk owns, on the window's grid, and
    the cells of the objects its square cuts that lie just past the square (``context``: meshed
    for their neighbours' sake, then dropped, see ``core.convert.Cut``)."""

    tile: Tile
    context: np.ndarray  # (H, W) bool on the tile's analysis grid

    def cut(self) -> Cut | None:
        if not self.context.any():
            return None
        g = self.tile.georef
        return Cut(self.context, west=-g.width_m / 2, north=g.height_m / 2, gsd=g.gsd)


@dataclass(frozen=True)
class Cells:
    """A block of analysis cells on the world grid, cells of ``gsd`` metres. Global column ``col0``
    (x from col0·gsd) is its west-most, global row ``row0`` (y from row0·gsd) its north-most; array
    row 0 is north. Two blocks holding a cell index it alike."""

    gsd: float
    col0: int
    row0: int
    rows: int
    cols: int

    @classmethod
    def covering(cls, gsd: float, rect: tuple[float, float, float, float]) -> Cells:
        """The cells touching ``rect`` (west, south, east, north)."""
        w, s, e, n = rect
        col0, row0, row_s = math.floor(w / gsd), math.ceil(n / gsd) - 1, math.floor(s / gsd)
        return cls(gsd, col0, row0, row0 - row_s + 1, math.ceil(e / gsd) - col0)

    def axes(self, per_cell: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """World x of the columns' centres, y of the rows' (row 0 north), ``per_cell`` sub-cells per cell."""
        step = self.gsd / per_cell
        return (self.col0 * self.gsd + (np.arange(self.cols * per_cell) + 0.5) * step,
                (self.row0 + 1) * self.gsd - (np.arange(self.rows * per_cell) + 0.5) * step)

    def centres(self, per_cell: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """World x, y of the cell centres (row 0 north), ``per_cell`` x ``per_cell`` sub-cells per cell."""
        return np.meshgrid(*self.axes(per_cell))

    def index(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of the cells holding world positions (clipped to the block)."""
        col = np.floor(x / self.gsd).astype(np.int64) - self.col0
        row = self.row0 - np.floor(y / self.gsd).astype(np.int64)
        return np.clip(row, 0, self.rows - 1), np.clip(col, 0, self.cols - 1)

    def rect(self) -> tuple[float, float, float, float]:
        g = self.gsd
        return self.col0 * g, (self.row0 + 1 - self.rows) * g, (self.col0 + self.cols) * g, (self.row0 + 1) * g

    def part(self, block: Cells) -> tuple[slice, slice]:
        """Where the cells of ``block``, a block inside this one, lie in this block's arrays."""
        r, c = self.row0 - block.row0, block.col0 - self.col0
        return slice(r, r + block.rows), slice(c, c + block.cols)


@dataclass(frozen=True)
class Window:
    """The chunk's analysis window: the chunk square plus the band, cells of ``gsd`` on the world grid."""

    spec: WorldSpec
    x: int
    y: int

    @property
    def cells(self) -> int:
        return round((self.spec.chunk_size + 2 * self.spec.band) / self.spec.gsd)

    @property
    def band_cells(self) -> int:
        return round(self.spec.band / self.spec.gsd)

    @property
    def first(self) -> tuple[int, int]:
        """Global (column, row) indices of the west-most column and north-most row; rows count north."""
        s, g = self.spec, self.spec.gsd
        return round((self.x * s.chunk_size - s.band) / g), round(((self.y + 1) * s.chunk_size + s.band) / g) - 1

    def rect(self) -> tuple[float, float, float, float]:
        s = self.spec
        return (self.x * s.chunk_size - s.band - 1, self.y * s.chunk_size - s.band - 1,
                (self.x + 1) * s.chunk_size + s.band + 1, (self.y + 1) * s.chunk_size + s.band + 1)

    @property
    def block(self) -> Cells:
        j0, i0 = self.first
        return Cells(self.spec.gsd, j0, i0, self.cells, self.cells)

    def centres(self, per_cell: int = 1) -> tuple[np.ndarray, np.ndarray]:
        return self.block.centres(per_cell)

    def index(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.block.index(x, y)

    def chunk_square(self) -> np.ndarray:
        inner = np.zeros(self.cells, bool)
        inner[self.band_cells:self.cells - self.band_cells] = True
        return inner[:, None] & inner[None, :]

    def georef(self) -> Georeference:
        s = self.spec
        return s.georef(self.x, self.y, s.chunk_size + 2 * s.band, "satforge world window")


def open_view(spec: WorldSpec, x: int, y: int, estimator: Estimator | None = None,
              settings: GenerateSettings | None = None) -> View:
    """The chunk's view; with an ``estimator`` (a generator that estimates heights and land cover from a
    photo), the inputs' missing rasters come from it, run on the window's photo with ``settings``."""
    window = Window(spec, x, y)
    return InputView(window, estimator, settings) if spec.inputs is not None else ProceduralView(window)


class ProceduralView:
    def __init__(self, window: Window):
        self.window = window
        self.world = source.Procedural(window.spec.seed, window.spec.style)
        self.scheme = get_scheme(window.spec.palette)
        self.from_oem = self.scheme.openearthmap_lut()  # procedural classes are OpenEarthMap ids

    def ground(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.world.ground(x, y)

    def ground_class(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.from_oem[self.world.ground_class(x, y)]

    def ground_colour(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.world.ground_colour(x, y)

    def procedural_objects(self, wx: np.ndarray, wy: np.ndarray, allowed=None) -> tuple[np.ndarray, source.Objects]:
        """(owned mask, objects) at cell centres: objects whose anchor lies in this chunk (and,
        with ``allowed``, where allowed(anchor x, anchor y, OpenEarthMap class) holds)."""
        obj = self.world.objects(wx, wy)
        size = self.window.spec.chunk_size
        with np.errstate(invalid="ignore"):  # NaN anchors (no object) own nothing
            owner = np.floor(obj.anchor / size)
        owned = (obj.class_id > 0) & (owner[..., 0] == self.window.x) & (owner[..., 1] == self.window.y)
        if allowed is not None and owned.any():
            owned &= allowed(np.nan_to_num(obj.anchor[..., 0]), np.nan_to_num(obj.anchor[..., 1]), obj.class_id)
        return owned, obj

    def object_tile(self, photo_context: bool = True) -> ObjectTile | None:
        """The chunk's objects on its window (see ``ObjectTile``), None where it owns none.
        ``photo_context``: colour the whole window, not only around the objects, for a generator
        that reads its photo beyond the tile's valid pixels (``Generator.photo_context``)."""
        wx, wy = self.window.centres()
        owned, obj = self.procedural_objects(wx, wy)
        if not owned.any():
            return None
        classes = np.where(owned, self.from_oem[obj.class_id], self.ground_class(wx, wy))
        valid, image_valid = _valid(owned, 1)
        rgb = _only_where(~owned & (photo_context | image_valid), self.ground_colour, wx, wy, (3,))
        rgb[owned] = obj.colour[owned]
        tile = _tile(self.window, self.scheme, valid, image_valid, np.where(owned, obj.height, 0), classes,
                     rgb, 1, self.ground(wx, wy))
        return ObjectTile(tile, np.zeros(owned.shape, bool))


@lru_cache(maxsize=2)
def _texture(seed: int, photo: InputRaster, exemplars: Exemplars, factor: int) -> Texture:
    """The continuation's texture of a world's photo, read once per process."""
    origins = tuple(o for _, run in exemplars.squares for o in run)
    return Texture.of(seed, exemplars, read_squares(photo, origins, exemplars.side, factor), photo.px[0])


def _valid(owned: np.ndarray, per_cell: int) -> tuple[np.ndarray, np.ndarray]:
    """(the cells a chunk's tile holds: its owned objects and VALID_RIM cells of ground round them
    (walls meet it); the same on the tile's image of ``per_cell`` pixels per cell side)."""
    valid = ndimage.binary_dilation(owned, iterations=VALID_RIM)
    return valid, nearest(valid, (valid.shape[0] * per_cell, valid.shape[1] * per_cell))


def _tile(window: Window, scheme, valid, image_valid, height, classes, rgb, per_cell: int, ground) -> Tile:
    return Tile(name=f"x{window.x}_y{window.y}", georef=window.georef(), scheme=scheme, valid=valid,
                height=height.astype(np.float32), ground=ground.astype(np.float32), classes=classes.astype(np.uint8),
                rgb=rgb.astype(np.float32), image_valid=image_valid, image_gsd=window.spec.gsd / per_cell)


def _only_where(mask: np.ndarray, fn, x: np.ndarray, y: np.ndarray, channels: tuple = (),
                dtype=np.float32) -> np.ndarray:
    """fn(x, y) where ``mask`` holds, zeros elsewhere: the procedural world costs time, and inside
    the inputs it is mostly not shown. fn is pointwise (IEEE arithmetic only), so every value is
    the same bits as when computed over the whole array."""
    x, y = np.broadcast_arrays(x, y)
    out = np.zeros((*x.shape, *channels), dtype)
    if mask.any():
        out[mask] = fn(x[mask], y[mask])
    return out


class InputView(ProceduralView):
    """The input rasters inside their area, the procedural world beyond, eased together."""

    def __init__(self, window: Window, estimator: Estimator | None = None, settings: GenerateSettings | None = None):
        super().__init__(window)
        spec, inputs = window.spec, window.spec.inputs
        self.inputs = inputs
        self.cells = self._analysis_cells()
        w, s, e, n = self.cells.rect()
        rect = (w - 1, s - 1, e + 1, n + 1)

        def windowed(role: str, cell: float) -> RasterWindow | None:
            r = inputs.raster(role)
            return None if r is None else read_window(r, rect, block_factor(r, cell))

        self.rgb = windowed("rgb", spec.gsd / 2)
        if inputs.exemplars is not None:  # the continuation painted with the photo's own texture
            photo = inputs.raster("rgb")
            texture = _texture(spec.seed, photo, inputs.exemplars, block_factor(photo, spec.gsd / 2))
            self.world = source.Procedural(spec.seed, spec.style, texture)
        self.surface = windowed("height", spec.gsd)
        self.dtm = windowed("dtm", spec.gsd)
        self.estimated = self._estimates(estimator, settings) if estimator is not None else {}
        self.cell_classes = self._classes()                          # on self.cells
        self.classes = self.cell_classes[self.cells.part(window.block)]  # on the window's cells

    def _analysis_cells(self) -> Cells:
        """The window's cells and, where the window reaches past the input area's edge (up to
        MIRROR_M), the input cells reflected into it, with REACH_M of cells around those."""
        block = self.window.block
        rect, bounds = block.rect(), self.inputs.bounds
        if not self.inputs.land_cover or _within(rect, bounds):
            return block
        spans = []
        for lo, hi, a, b in ((rect[0], rect[2], bounds[0], bounds[2]), (rect[1], rect[3], bounds[1], bounds[3])):
            lo, hi = max(lo, a - MIRROR_M), min(hi, b + MIRROR_M)
            if lo > hi:
                return block  # the window lies beyond what is reflected
            ends = _reflect(np.array([lo, hi, *(v for v in (a, b) if lo < v < hi)]), a, b)
            spans.append((ends.min() - REACH_M, ends.max() + REACH_M))
        (w, e), (s, n) = spans
        return Cells.covering(block.gsd, (min(w, rect[0]), min(s, rect[1]), max(e, rect[2]), max(n, rect[3])))

    def _estimates(self, estimator: Estimator, settings: GenerateSettings) -> dict[str, RasterWindow]:
        """The rasters the inputs lack, estimated from the window's photo, as windows on its pixels:
        "height" (nDSM, metres) and "classes" (this scheme's ids, NaN where the photo has none)."""
        need_height = self.inputs.heights not in ("ndsm", "dsm-dtm")
        need_classes = self.inputs.raster("semantic") is None
        if self.rgb is None or not (need_height or need_classes):
            return {}
        photo = self.rgb.data
        found = estimator.estimate(np.moveaxis(photo, 0, -1), need_height, need_classes, settings, lambda *_: None)
        missing = np.isnan(photo).any(0)
        rasters = {"height": found.height, "classes": None if found.classes is None else
                   self.from_oem[found.classes].astype(np.float32)}
        return {role: RasterWindow(self.rgb.raster, np.where(missing, np.nan, data)[None].astype(np.float32),
                                   self.rgb.factor, self.rgb.row0, self.rgb.col0)
                for role, data in rasters.items() if data is not None}

    # -- positions -------------------------------------------------------------------------------
    def _outside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance (metres) from the input area; 0 inside."""
        return source.distance_outside(self.inputs.bounds, x, y)

    def _clamped(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w, s, e, n = self.inputs.bounds
        return np.clip(x, w, e), np.clip(y, s, n)

    def _reflected(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions mirrored into the input area across the edges they lie beyond."""
        w, s, e, n = self.inputs.bounds
        return _reflect(x, w, e), _reflect(y, s, n)

    def _inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Inside the area where the inputs say what is where (nowhere for a terrain model alone)."""
        return (self._outside(x, y) == 0) & self.inputs.land_cover

    # -- input values ----------------------------------------------------------------------------
    def _sample(self, window: RasterWindow | None, x: np.ndarray, y: np.ndarray, order: int = 1,
                bands: int = 1) -> np.ndarray:
        """(bands, ...) values at positions; NaN where the raster has none (or does not reach)."""
        return np.full((bands, *np.shape(x)), np.nan) if window is None else window.sample(x, y, order)

    def _input_ground(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Input terrain relative to the datum at (clamped) positions; 0 without a terrain raster."""
        mode = self.inputs.heights
        source_window = self.dtm if mode == "dsm-dtm" else self.surface if mode == "terrain" else None
        if source_window is None:
            return np.zeros(np.shape(x))
        return np.nan_to_num(self._sample(source_window, *self._clamped(x, y))[0] - self.inputs.datum)

    def _ndsm(self, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        """Heights above ground at positions, or None when the inputs give none."""
        mode = self.inputs.heights
        if mode not in ("ndsm", "dsm-dtm"):
            estimated = self.estimated.get("height")
            return None if estimated is None else np.clip(np.nan_to_num(estimated.sample(x, y, 1)[0]), 0, None)
        h = self._sample(self.surface, x, y)[0]
        if mode == "dsm-dtm":
            h = h - self._sample(self.dtm, x, y)[0]
        return np.clip(np.nan_to_num(h), 0, None)

    def _classes(self) -> np.ndarray:
        """Class ids on the analysis cells: the semantic map, else the colour/height heuristic."""
        wx, wy = self.cells.centres()
        r = self.inputs.raster("semantic")
        if r is not None:
            w, s, e, n = self.cells.rect()
            window = read_window(r, (w - 1, s - 1, e + 1, n + 1), 1, as_values=False)
            if window is None:
                return np.zeros(wx.shape, np.uint8)
            window.data = read_class_values(open_raster("semantic", Path(r.path), 1 << 62), self.scheme,
                                            window.data)[None].astype(np.float32)
            ids = window.sample(wx, wy, order=0)[0]
            return np.nan_to_num(ids).astype(np.uint8)
        inside = self._inside(wx, wy)
        if not inside.any():
            return np.zeros(wx.shape, np.uint8)
        if "classes" in self.estimated:
            ids = np.nan_to_num(self.estimated["classes"].sample(wx, wy, 0)[0])
            return np.where(inside, ids, 0).astype(np.uint8)
        rx, ry = self._reflected(wx, wy)  # past the edge the filters see its mirror image, not a black rim
        if self.inputs.raster("rgb") is None:
            ids = classify(self.scheme, None, None, self._ndsm(rx, ry), self.window.spec.gsd ** 2)
            return np.where(inside, ids, 0).astype(np.uint8)
        photo = np.moveaxis(self._sample(self.rgb, rx, ry, bands=3), 0, -1)
        ids = classify(self.scheme, np.nan_to_num(photo), None, self._ndsm(rx, ry), self.window.spec.gsd ** 2)
        return np.where(inside & ~np.isnan(photo).any(-1), ids, 0).astype(np.uint8)  # no photo: unknown

    # -- the View ----------------------------------------------------------------------------------
    def ground(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        ease = smoothstep(self._outside(x, y) / HANDOVER_M) * smoothstep(self._from_water(x, y) / BANK_M)
        return (1 - ease) * self._input_ground(x, y) + ease * self.world.ground(x, y)

    def _from_water(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Metres from the water the input's edge cuts and continues beyond it (at most BANK_M), a
        continuous function of position: the cells' distances, bilinearly interpolated."""
        if self._water_distance is None:
            return np.full(np.shape(x), BANK_M)
        cells = self.cells
        rows, cols = cells.row0 + 0.5 - np.asarray(y) / cells.gsd, np.asarray(x) / cells.gsd - cells.col0 - 0.5
        return ndimage.map_coordinates(self._water_distance, [rows, cols], order=1, mode="nearest")

    @cached_property
    def _water_distance(self) -> np.ndarray | None:
        """On the analysis cells: metres to the nearest continued water cell, at most BANK_M (exact
        wherever the cells reach BANK_M around; chunks sample it where the band gives them that);
        None where no continued water is near."""
        if not self.inputs.land_cover or _within(self.cells.rect(), self.inputs.bounds):
            return None
        x, y = self.cells.centres()
        wet = self.scheme.kind_lut()[self._continued(x, y)] == SurfaceKind.WATER
        if not wet.any():
            return None
        return np.minimum(ndimage.distance_transform_edt(~wet) * self.cells.gsd, BANK_M).astype(np.float32)

    def _known(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(input class ids, where they are known): unknown (0) and outside get the procedural world's."""
        ids = self.classes[self.window.index(x, y)]
        return ids, self._inside(x, y) & (ids > 0)

    def ground_class(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        ids, known = self._known(x, y)
        continued = self._continued(x, y)
        procedural = _only_where(~known & (continued == 0), super().ground_class, x, y, dtype=np.uint8)
        return np.where(known, ids, np.where(continued > 0, continued, procedural))

    @cached_property
    def _cell_kinds(self) -> np.ndarray:
        """The surface kind of each analysis cell's class."""
        return self.scheme.kind_lut()[self.cell_classes]

    @cached_property
    def _edge_profiles(self) -> list[tuple[np.ndarray, ...] | None]:
        """Per edge of the input area (west, east, south, north), along it on the analysis cells
        (rows for west and east, columns for south and north): the class of the water or road that
        crosses the edge there (the class of the edge's own cell, crossing as CROSSINGS asks: a road
        along the edge does not cross it), the metres to the side of the crossing and its half
        width, both at most END_RADIUS_M, and how far out a road meets the procedural street grid
        (``_junctions``). None where the block does not span the edge. Cells read lie within
        REACH_M of a position, which a window's cells hold; a run too wide for them is capped alike."""
        kinds, gsd, profiles, (xs, ys) = self._cell_kinds, self.cells.gsd, [], self.cells.axes()
        for k, (axis, first, inward) in enumerate(self._edge_lines()):
            if first is None:
                profiles.append(None)
                continue
            lines = np.moveaxis(kinds, axis, 0)[first::inward]
            edge_ids = np.moveaxis(self.cell_classes, axis, 0)[first]
            ids, depth, half = (np.zeros(lines.shape[1], dtype) for dtype in (np.uint8, np.float32, np.float32))
            junction = np.full(lines.shape[1], np.inf, np.float32)
            for kind, (inward_m, share, least, most) in CROSSINGS.items():
                crosses = (lines[0] == kind) & ((lines[:round(inward_m / gsd)] == kind).mean(0) > share)
                crosses = ndimage.binary_opening(crosses, np.ones(round(least / gsd), bool))
                runs, count = ndimage.label(crosses)
                crosses &= (np.bincount(runs.ravel(), minlength=count + 1) * gsd <= most)[runs]
                to_side = np.minimum(ndimage.distance_transform_edt(crosses) * gsd, END_RADIUS_M)
                ids[crosses], depth[crosses] = edge_ids[crosses], to_side[crosses]
                half[crosses] = ndimage.maximum(to_side, runs, np.arange(count + 1))[runs[crosses]]
                if kind == SurfaceKind.ROAD and crosses.any():
                    junction[crosses] = self._junctions(k, ys if axis == 1 else xs, crosses)
            profiles.append((ids, depth, half, junction))
        return profiles

    def _junctions(self, edge: int, along: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Metres out from ``edge`` (0 west, 1 east, 2 south, 3 north) at which the lines straight
        out from it at the ``at`` positions of ``along`` (world y for west and east, x for south
        and north) first meet a procedural street, so a continued road joins the street grid
        there; inf where they meet none within MIRROR_M."""
        w, s, e, n = self.inputs.bounds
        out = np.arange(1.0, MIRROR_M)
        across = (w - out, e + out, s - out, n + out)[edge]
        lines = np.broadcast_arrays(across[None], along[at][:, None])
        street = self.world.ground_class(*(lines if edge < 2 else lines[::-1])) == source.ROAD
        return np.where(street.any(1), out[street.argmax(1)], np.inf)

    def _continued(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Class ids of the water and roads that cross the input's edge, gone on straight out
        beyond it (``_edge_profiles``; past the area's corners nothing goes on) up to MIRROR_M,
        where they end round, or for roads up to the first procedural street they meet. 0 where
        there are none."""
        x, y = np.broadcast_arrays(x, y)
        distance = self._outside(x, y)
        near = np.flatnonzero((distance > 0) & (distance < MIRROR_M) & self.inputs.land_cover)
        out = np.zeros(x.shape, np.uint8)
        if len(near):
            rows, cols = self.cells.index(*self._clamped(x.ravel()[near], y.ravel()[near]))
            edges = self._across(x.ravel()[near], y.ravel()[near])[2]
            for k, profile in enumerate(self._edge_profiles):
                beyond = np.flatnonzero(edges == 1 << k)  # this edge alone
                if profile is None or not len(beyond):
                    continue
                ids, to_side, half, junction = (a[(rows if k < 2 else cols)[beyond]] for a in profile)
                end = MIRROR_M - half + np.sqrt(np.maximum(half * half - (half - to_side) ** 2, 0))
                end = np.minimum(end, junction)
                out.ravel()[near[beyond]] = np.where(distance.ravel()[near[beyond]] < end, ids, 0)
        return out

    def _across(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, edges): positions mirrored into the input area across the edges they lie beyond,
        and those edges as bits (1 west, 2 east, 4 south, 8 north; two past a corner, 0 inside)."""
        w, s, e, n = self.inputs.bounds
        edges = (x < w) * 1 + (x > e) * 2 + (y < s) * 4 + (y > n) * 8
        return *self._reflected(x, y), edges

    def _mirrored(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, edges, grazing): where positions beyond the input's edge see the objects it cuts:
        their mirror image across the edge, shifted along it by 2 x (metres out) x the buildings'
        slant at the edge (``_slant``), so a slanted building goes on straight (the image of a line
        through the edge point is the line itself) instead of as a chevron. Past a corner the plain
        mirror image. ``edges`` as ``_across``; ``grazing``: the buildings there run within 30
        degrees of the edge's own direction (their mirror image would cross them)."""
        rx, ry, edges = self._across(x, y)
        single = np.isin(edges, (1, 2, 4, 8))
        if not single.any():
            return rx, ry, edges, np.zeros(edges.shape, bool)
        w, s, e, n = self.inputs.bounds
        along_y = (edges & 3) > 0  # beyond the west or east edge: shifted along y
        (slant_x, grazing_x), (slant_y, grazing_y) = self._slant
        cell = self.cells.index(*self._clamped(x, y))
        outward = np.where((edges & 5) > 0, 2.0, -2.0) * self._outside(x, y)  # west and south: +
        shift = np.where(single, outward * np.where(along_y, slant_y[cell], slant_x[cell]), 0.0)
        shift = np.round(shift / self.cells.gsd) * self.cells.gsd  # whole cells: a cell's source is a cell
        grazing = single & np.where(along_y, grazing_y[cell], grazing_x[cell])
        return (np.where(along_y, rx, _reflect(rx + shift, w, e)), np.where(along_y, _reflect(ry + shift, s, n), ry),
                edges, grazing)

    @cached_property
    def _slant(self) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """On the analysis cells, for south or north edges (shifts along x), then for west or
        east edges (along y): (how far a continued object shifts along the edge per metre of its
        depth, whether the buildings there graze the edge). The shift follows the buildings'
        direction (the structure tensor of their mask, smoothed over SLANT_M), weighted by how
        clear it is, within MAX_SLANT, fading to 0 where they run within 30 degrees of the edge's
        own direction: those graze it (a clear direction along it)."""
        mask = (self._cell_kinds == SurfaceKind.BUILDING).astype(np.float32)
        down, gx = np.gradient(mask)  # rows run south
        # Not where the input's edge cuts them: that would read as buildings running along it.
        within = ndimage.binary_erosion(self._inside(*self.cells.centres()))
        gx, gy = gx * within, -down * within
        sigma = SLANT_M / self.cells.gsd
        jxx, jxy, jyy = (ndimage.gaussian_filter(a, sigma, truncate=2.0) for a in (gx * gx, gx * gy, gy * gy))
        across = 0.5 * np.arctan2(2 * jxy, jxx - jyy)  # the gradient's direction: buildings run across it
        clear = np.hypot(jxx - jyy, 2 * jxy) / np.maximum(jxx + jyy, 1e-6)
        ax, ay = -np.sin(across), np.cos(across)
        slants = []
        for along, normal in ((ax, ay), (ay, ax)):
            fade = smoothstep((normal * normal - 0.25) / 0.25)  # 0 within 30 degrees of the edge, 1 from 45
            slant = np.clip(along * normal / np.maximum(normal * normal, 1e-6), -MAX_SLANT, MAX_SLANT)
            slants.append((clear * fade * slant, (clear > 0.5) & (fade == 0)))
        return slants[0], slants[1]

    def _attached_to(self, cell: tuple[np.ndarray, np.ndarray], edges: np.ndarray) -> np.ndarray:
        """Whether the object of each analysis ``cell`` reaches every one of its ``edges``
        (``_attached``; so past a corner, an object that fills the corner goes on round it)."""
        out = edges > 0
        for k, reach in enumerate(self._attached):
            crossed = (edges & (1 << k)) > 0
            out[crossed] &= reach[cell[0][crossed], cell[1][crossed]]
        return out

    @cached_property
    def _attached(self) -> list[np.ndarray]:
        """Per edge of the input area (west, east, south, north), on the analysis cells: whether the
        cell's object (building or canopy) reaches that edge through 8-connected cells of its kind
        within ATTACH_M of steps: the whole part of an object that the edge cuts, however it
        winds (gaps and slants included), decided from cells within ATTACH_M of it alone."""
        kinds, attached = self._cell_kinds, []
        for axis, first, _ in self._edge_lines():
            reach = np.zeros(kinds.shape, bool)
            if first is not None:
                seed = np.zeros(kinds.shape, bool)
                np.moveaxis(seed, axis, 0)[first] = True
                for kind in OBJECT_KINDS:
                    mask = kinds == kind
                    if (seed & mask).any():
                        reach |= ndimage.binary_dilation(seed & mask, np.ones((3, 3), bool), mask=mask,
                                                         iterations=round(ATTACH_M / self.cells.gsd))
            attached.append(reach)
        return attached

    def _edge_lines(self):
        """(axis, index of the line of cells just inside the edge or None where the block does not
        span it, inward step) of the input area's west, east, south and north edges."""
        cells, (w, s, e, n) = self.cells, self.inputs.bounds
        half = cells.gsd / 2
        rows, cols = cells.index(np.array([w + half, e - half, 0.0, 0.0]), np.array([0.0, 0.0, s + half, n - half]))
        for axis, first, inward, at in ((1, cols[0], 1, w), (1, cols[1], -1, e), (0, rows[2], -1, s),
                                        (0, rows[3], 1, n)):
            lo, hi = cells.rect()[axis ^ 1::2]  # the block's extent across the edge
            yield axis, (first if lo < at < hi else None), inward

    def ground_colour(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The photo; past its edge, its mirror image eased into the continuation's colours (so
        the colour runs on from the edge without a line and without the edge pixels drawn out as
        streaks); where it has no data, the colour of the known class, else the procedural colour."""
        ids, known = self._known(x, y)
        continued = self._continued(x, y)
        on_feature = continued > 0  # continued water or road
        photo = np.moveaxis(self._sample(self.rgb, x, y, bands=3), 0, -1)
        distance = self._outside(x, y)
        ease = smoothstep(distance / COLOUR_HANDOVER_M)[..., None]
        band = (distance > 0) & (distance < COLOUR_HANDOVER_M)  # further out the procedural colour alone shows
        if band.any() and self.rgb is not None:
            rx, ry = self._reflected(x[band], y[band])
            photo[band] = np.moveaxis(self._sample(self.rgb, rx, ry, bands=3), 0, -1)
            # Continued water and roads show their own texture where the mirror holds something
            # else (a slanted road's mirror image bends back).
            stray = np.zeros_like(band)
            stray[band] = on_feature[band] & (self.cell_classes[self.cells.index(rx, ry)] != continued[band])
            ease[stray] = 1.0
        missing = np.isnan(photo).any(-1, keepdims=True)
        procedural = _only_where((ease[..., 0] > 0) | (missing[..., 0] & ~known), self.world.ground_colour, x, y, (3,))
        if on_feature.any():
            procedural[on_feature] = self.world.colour_of(
                self.scheme.openearthmap_by_kind_lut()[continued[on_feature]], x[on_feature], y[on_feature])
        eased = (1 - ease) * photo + ease * procedural
        fallback = np.where(known[..., None], _kind_colour(self.scheme, ids), procedural)
        return np.where(missing, fallback, eased).astype(np.float32)

    def object_tile(self, photo_context: bool = True) -> ObjectTile | None:
        """The chunk's objects on its window (see ``ObjectTile``), None where it owns none; the
        photo where the tile is valid, or everywhere with ``photo_context`` (see ProceduralView's)."""
        window, spec = self.window, self.window.spec
        wx, wy = window.centres()
        sx, sy, reflected = self._object_sources(wx, wy)
        object_classes = np.where(reflected, self.cell_classes[self.cells.index(sx, sy)], self.classes)
        kinds = self.scheme.kind_lut()[object_classes]
        inside = self._inside(wx, wy) | reflected
        owned_b, large_b, _ = _owned(window, inside & (kinds == SurfaceKind.BUILDING))
        owned_t, large_t, trees = _owned(window, inside & (kinds == SurfaceKind.VEGETATION))
        context = (large_b | large_t) & _context_ring(window)
        owned_in = owned_b | owned_t | context
        owned_p, obj = self.procedural_objects(wx, wy, allowed=self._procedural_allowed)
        if not ((owned_b | owned_t).any() or owned_p.any()):
            return None
        height = self._ndsm(sx, sy)
        if height is None:  # seeded priors for whole objects; cut ones from world position (see priors)
            whole_b = building_heights(owned_b & ~large_b, spec.gsd, spec.seed)
            height = np.where(large_b, self._building_height(), whole_b)
            woods = wood_heights(trees, wx, wy, spec.gsd, spec.seed)
            height = np.where(large_t, woods, height + tree_heights(owned_t & ~large_t, spec.gsd, spec.seed))
        height = np.where(owned_in, height, np.where(owned_p, obj.height, 0))
        terrain_id = self.scheme.class_for_kind(SurfaceKind.TERRAIN)
        ground_classes = np.where(np.isin(kinds, [SurfaceKind.BUILDING, SurfaceKind.VEGETATION]), terrain_id,
                                  self.ground_class(wx, wy))
        classes = np.where(owned_in, object_classes,
                           np.where(owned_p, self.from_oem[obj.class_id], ground_classes))
        per_cell = 2 if self.rgb is not None and self.rgb.raster.px[0] * self.rgb.factor <= spec.gsd / 2 else 1
        valid, image_valid = _valid(owned_in | owned_p, per_cell)
        image = self._image(owned_p, obj, owned_in & reflected, per_cell, photo_context | image_valid)
        tile = _tile(window, self.scheme, valid, image_valid, height, classes, image, per_cell, self.ground(wx, wy))
        return ObjectTile(tile, context)

    def _procedural_allowed(self, x: np.ndarray, y: np.ndarray, class_id: np.ndarray) -> np.ndarray:
        """Procedural objects stand where the inputs' objects, and their continuations, are out of
        reach, and not on continued water or roads (tested at their anchor, and a crown's reach
        around it: street trees stand at a road's edge)."""
        if not self.inputs.land_cover:
            return np.ones(np.shape(x), bool)
        outside = self._outside(x, y)
        allowed = outside > source.clearance(class_id)
        near = np.flatnonzero(allowed & (outside < MIRROR_M + source.MAX_RADIUS))
        anchors, back = np.unique(np.stack([x.ravel()[near], y.ravel()[near]], -1), axis=0, return_inverse=True)
        dry = np.ones(len(anchors), bool)
        for dx, dy in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
            dry &= self._continued(anchors[:, 0] + dx * source.MAX_RADIUS, anchors[:, 1] + dy * source.MAX_RADIUS) == 0
        allowed.ravel()[near] = dry[back.ravel()]
        return allowed

    def _object_sources(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(source x, source y, reflected): where the inputs say which object stands at each position.
        An object the input's edge cuts goes on beyond it: positions take the object at their
        source (``_mirrored``: the mirror image, sheared so slanted buildings go on straight) when
        it reaches the edges crossed (``_attached``), up to OBJECT_MIRROR_M x (0.75 .. 1.25, value
        noise along the edge) out for canopies and source.MIRRORED_M for buildings (so a building
        ends in its own wall, or a straight one, never a ragged one); buildings grazing the edge
        end at it. Elsewhere the source is the position itself."""
        reflected = np.zeros(x.shape, bool)
        if not self.inputs.land_cover:
            return x, y, reflected
        distance = self._outside(x, y)
        near = (distance > 0) & (distance < 1.25 * OBJECT_MIRROR_M)
        rx, ry = x.copy(), y.copy()
        if near.any():
            rx[near], ry[near], edge, grazing = self._mirrored(x[near], y[near])
            w, s, e, n = self.inputs.bounds
            wavy = 0.75 + 0.5 * value_noise(self.window.spec.seed + 600, np.clip(x[near], w, e),
                                            np.clip(y[near], s, n), 8.0)
            cell = self.cells.index(rx[near], ry[near])
            kind = self._cell_kinds[cell]
            # A canopy frays; a building goes on whole, up to a straight wall where it is longer, but
            # one grazing the edge ends there (its mirror image would cross it).
            building = kind == SurfaceKind.BUILDING
            reach = np.where(building, np.where(grazing, 0.0, source.MIRRORED_M), OBJECT_MIRROR_M * wavy)
            reflected[near] = (distance[near] < reach) & np.isin(kind, OBJECT_KINDS) & \
                self._attached_to(cell, edge)
        return np.where(reflected, rx, x), np.where(reflected, ry, y), reflected

    def _building_height(self) -> float:
        known = self.inputs.building_height
        return known if known is not None else 3.0 * (1 + self.window.spec.style.storeys) / 2 + 0.5

    def _image(self, owned_p: np.ndarray, obj: source.Objects, reflected: np.ndarray, per_cell: int,
               shown: np.ndarray | bool) -> np.ndarray:
        """(cells * per_cell)^2 colours: the photo where it has data (reflected on ``reflected``
        cells), else procedural colours; black where not ``shown`` (the photo costs time)."""
        wx, wy = self.window.centres(per_cell)
        up = nearest(owned_p, wx.shape)
        base = _only_where(~up & shown, self.ground_colour, wx, wy, (3,))
        if reflected.any():
            mirror = nearest(reflected, wx.shape)
            photo = np.moveaxis(self._sample(self.rgb, *self._mirrored(wx[mirror], wy[mirror])[:2], bands=3), 0, -1)
            base[mirror] = np.where(np.isnan(photo), base[mirror], photo)
        return np.where(up[..., None], nearest(obj.colour, wx.shape), base)


def _border_lines(window: Window):
    """(axis, inner, outer) of each side of the chunk square: the index along ``axis`` of the line
    of cells just inside it and of the line just outside it."""
    band, n = window.band_cells, window.cells
    for axis in (1, 0):  # west and east sides (columns), then north and south (rows)
        for inner, outer in ((band, band - 1), (n - band - 1, n - band)):
            yield axis, inner, outer


def _on_line(axis: int, index: int) -> tuple:
    line = [slice(None)] * 2
    line[axis] = index
    return tuple(line)


def _context_ring(window: Window) -> np.ndarray:
    """The cells less than CONTEXT_M past the chunk square's sides (and corners)."""
    reach = window.band_cells - round(CONTEXT_M / window.spec.gsd)
    outer = np.zeros(window.cells, bool)
    outer[reach:window.cells - reach] = True
    return outer[:, None] & outer[None, :] & ~window.chunk_square()


def _across_borders(large: np.ndarray, window: Window) -> np.ndarray:
    """Cells of cut objects that lie beside a side of the chunk square and whose cell across it is
    not one: the cut objects end there on both sides alike (those cells are dropped), so no chunk
    ends a cut canopy or roof at the side while its neighbour has ground beyond it. Both windows
    see both cells, so both drop the same."""
    keep = large.copy()
    for axis, inner, outer in _border_lines(window):
        both = large[_on_line(axis, inner)] & large[_on_line(axis, outer)]
        for index in (inner, outer):
            keep[_on_line(axis, index)] &= both
    return large & ~keep


def _kind_colour(scheme, class_id: np.ndarray) -> np.ndarray:
    """Colours of a scheme's classes by their surface kind (inputs without a photo)."""
    return source.class_colour(scheme.openearthmap_by_kind_lut()[class_id])


def _within(rect: tuple[float, float, float, float], bounds: tuple[float, float, float, float]) -> bool:
    """Whether the rectangle ``rect`` lies inside ``bounds`` (both west, south, east, north)."""
    return bounds[0] <= rect[0] and bounds[1] <= rect[1] and rect[2] <= bounds[2] and rect[3] <= bounds[3]


def _reflect(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Coordinates mirrored into [lo, hi] across the end they lie beyond (clipped when further out
    than the span is wide)."""
    return np.clip(np.where(v < lo, 2 * lo - v, np.where(v > hi, 2 * hi - v, v)), lo, hi)


def _owned(window: Window, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cells this chunk owns, cells of large components, the mask) of ``mask`` by the module's
    rule, less the cells of large components that ``_across_borders`` drops."""
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask.copy(), mask.copy(), mask.copy()
    size, band = window.cells, window.band_cells
    boxes = ndimage.find_objects(labels)
    rows = np.array([[b[0].start, b[0].stop] for b in boxes])
    cols = np.array([[b[1].start, b[1].stop] for b in boxes])
    touches = (rows[:, 0] == 0) | (rows[:, 1] == size) | (cols[:, 0] == 0) | (cols[:, 1] == size)
    small = ~touches & (rows[:, 1] - rows[:, 0] <= band) & (cols[:, 1] - cols[:, 0] <= band)
    r, c = np.unravel_index(first_cells(labels, n), mask.shape)
    anchored_here = (r >= band) & (r < size - band) & (c >= band) & (c < size - band)
    label_ids = np.arange(1, n + 1)
    large = np.isin(labels, label_ids[~small])
    owned = np.isin(labels, label_ids[small & anchored_here]) | (large & window.chunk_square())
    dropped = _across_borders(large, window)
    return owned & ~dropped, large & ~dropped, mask & ~dropped
