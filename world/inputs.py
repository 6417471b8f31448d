"""A world's input rasters, read window by window: a chunk never decodes more than its window.

Every decision that needs the whole file (orthophoto value range, alpha or near-infrared 4th band,
nDSM or terrain model, the vertical datum, class shares for the procedural continuation) is taken
once, at the start of a world, from a decimated read (at most STATS_SIDE pixels a side, so memory
does not grow with the file), and stored in the manifest: every chunk applies the same rules.

World frame: the reference input's (first of rgb, height, dtm, semantic) south-west corner is the
world origin; every raster gets its bounds in world metres. Windows are read block-aligned in
raster pixels and sampled at world positions through *global* pixel coordinates, so two chunks
sampling the same world position get the same bits.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from scipy import ndimage

from ..core.contract import INPUT_ROLES
from ..core.errors import InputError
from ..core.inputs import InputFiles, check_files
from ..core.inputs.grid import Placed, check_same_place, place, reference
from ..core.inputs.raster import Raster, open_raster, read, read_internal_mask
from ..core.inputs.resample import nearest
from ..core.inputs.rules import (
    FRAME_MARGIN_PX,
    black_frame,
    check_orthophoto,
    declared_valid,
    fourth_band_is_nir,
    height_mode,
    no_data_frame,
    scale,
    value_range,
)
from ..core.inputs.semantic import read_class_values
from ..core.landcover import classify
from ..core.schemes import SurfaceKind, get_scheme
from .exemplars import EXEMPLAR_PX, Exemplars, choose

STATS_SIDE = 512   # whole-file statistics from at most this many pixels a side ...
PATCHES = 16       # ... sampled as PATCHES x PATCHES patches of a large file
WHOLE_READ_PIXELS = 1 << 22  # ... cut from one whole read up to this many pixels
# GDAL keeps decoded blocks in a cache of 5 % of RAM by default; windows are read once per chunk,
# so a small cache loses nothing and keeps memory independent of the input's size.
GDAL_CACHE_MB = 64


@dataclass(frozen=True)
class InputRaster:
    """One input file: where it lies in the world and how its stored values become data."""

    role: str
    path: str
    bytes: int                                   # file size when the world began (a change is refused)
    bounds: tuple[float, float, float, float]    # world metres: west, south, east, north
    shape: tuple[int, int]                       # rows, cols
    flip: tuple[bool, bool]                      # stored south-up / east-left
    alpha: bool = False                          # a 4th band that is alpha (0 = no data)
    value_range: tuple[float, float] = (0.0, 1.0)  # orthophoto: stored values mapped to 0 and 1

    @property
    def px(self) -> tuple[float, float]:
        """Metres per pixel east-west and north-south."""
        w, s, e, n = self.bounds
        return (e - w) / self.shape[1], (n - s) / self.shape[0]


@dataclass(frozen=True)
class WorldInputs:
    """Everything a chunk needs to know about the inputs (JSON-able, stored in the manifest)."""

    rasters: tuple[InputRaster, ...]
    palette: str
    heights: str        # "ndsm", "dsm-dtm", "terrain" (an absolute DSM/DEM taken as ground) or "none"
    datum: float        # metres that world z = 0 stands for
    bounds: tuple[float, float, float, float]    # the input area in world metres (the reference's)
    shares: tuple[float, float] = (0.0, 0.0)     # building and tree cover of the input area
    building_height: float | None = None         # median building height, metres (None: unknown)
    exemplars: Exemplars | None = None           # the photo's texture for the continuation (None: no photo)

    def raster(self, role: str) -> InputRaster | None:
        return next((r for r in self.rasters if r.role == role), None)

    @property
    def land_cover(self) -> bool:
        """Whether the inputs say what is where (classes, a photo or object heights); a terrain
        model alone does not, and the procedural world's land cover and objects stand on it."""
        return any(self.raster(role) for role in ("semantic", "rgb")) or self.heights in ("ndsm", "dsm-dtm")

    @classmethod
    def from_dict(cls, data: dict) -> WorldInputs:
        rasters = tuple(InputRaster(**{k: tuple(v) if isinstance(v, list) else v for k, v in r.items()})
                        for r in data["rasters"])
        exemplars = Exemplars.from_dict(data["exemplars"]) if data.get("exemplars") else None
        return cls(**{**data, "rasters": rasters, "bounds": tuple(data["bounds"]),
                      "shares": tuple(data["shares"]), "exemplars": exemplars})


# ---- opening: checks and whole-file decisions ------------------------------------------------------

def _world_bounds(p: Placed, ref: Placed) -> tuple[float, float, float, float]:
    """A raster's bounds in world metres (origin: the reference's south-west corner)."""
    r, w_m, h_m = p.raster, *p.size_m
    if not (r.located and ref.raster.located):
        return 0.0, 0.0, w_m, h_m  # rasters without georeference cover the reference's extent
    kx, ky = p.px[0] / r.res[0], p.px[1] / r.res[1]  # metres per CRS unit (1 unless degrees or feet)
    west = (r.bounds.left - ref.raster.bounds.left) * kx
    south = (r.bounds.bottom - ref.raster.bounds.bottom) * ky
    return west, south, west + w_m, south + h_m


def _decimated(r: Raster, resampling: Resampling) -> np.ndarray:
    """A sample of all bands for whole-file statistics, north-up: the whole raster when it is at
    most STATS_SIDE pixels a side; else a mosaic of PATCHES x PATCHES full-resolution patches spread
    evenly over it, so only a few hundred blocks are decoded whatever the file's size (a decimated
    read would decode every block)."""
    if max(r.shape) <= STATS_SIDE:
        return read(r, resampling=resampling)
    side = STATS_SIDE // PATCHES
    rows, cols = _patch_origins(r)
    # A file of a few megapixels is decoded whole once: cheaper than PATCHES^2 windowed reads.
    whole = read(r) if r.width * r.height <= WHOLE_READ_PIXELS else None
    patches = [[read(r, window=window) if whole is None else whole[:, slice(*window[0]), slice(*window[1])]
                for window in (((row, row + min(side, r.height)), (c, c + min(side, r.width))) for c in cols)]
               for row in rows]
    return np.concatenate([np.concatenate(line, axis=2) for line in patches], axis=1)


def _patch_origins(r: Raster) -> tuple[np.ndarray, np.ndarray]:
    """North-up rows and columns where the mosaic's patches start (a raster over STATS_SIDE)."""
    side = STATS_SIDE // PATCHES
    rows = np.linspace(0, r.height - side, PATCHES).astype(int) if r.height > side else np.zeros(PATCHES, int)
    cols = np.linspace(0, r.width - side, PATCHES).astype(int) if r.width > side else np.zeros(PATCHES, int)
    return rows, cols


def _sample_squares(r: Raster, side: int) -> list[tuple[int, int, int, int]]:
    """(sample row, sample col, raster row, raster col) of squares of ``side`` pixels (a divisor
    of the patches' side) tiling ``_decimated``'s sample: its patches cut up, or a small raster's whole."""
    if max(r.shape) <= STATS_SIDE:
        return [(i, j, i, j) for i in range(0, r.height - side + 1, side) for j in range(0, r.width - side + 1, side)]
    patch = STATS_SIDE // PATCHES
    if min(r.shape) < patch:
        return []
    rows, cols = _patch_origins(r)
    cuts = range(0, patch, side)
    return [(i * patch + a, j * patch + b, int(row) + a, int(col) + b)
            for i, row in enumerate(rows) for j, col in enumerate(cols) for a in cuts for b in cuts]


def _metres(data: np.ndarray, nodata: float | None) -> np.ndarray:
    band = data[0].astype(np.float64)
    if nodata is not None:
        band[band == nodata] = np.nan
    band[~np.isfinite(band)] = np.nan
    return band


def _height_rules(by_role: dict[str, Raster]) -> tuple[str, float]:
    """(height mode, datum) from decimated reads, by core/inputs/rules.py."""
    if "height" not in by_role:
        return "none", 0.0
    for role in ("height", "dtm"):
        if role in by_role and by_role[role].count != 1:
            raise InputError(by_role[role].path, f"a height raster needs 1 band; this one has "
                             f"{by_role[role].count}", "pass a single-band DSM/nDSM/DTM")
    surface = _metres(_decimated(by_role["height"], Resampling.average), by_role["height"].nodata)
    if np.isnan(surface).all():
        raise InputError(by_role["height"].path, "every pixel is no-data", "pass a raster with data")
    terrain = None
    if "dtm" in by_role:
        terrain = _metres(_decimated(by_role["dtm"], Resampling.average), by_role["dtm"].nodata)
    return height_mode(surface, terrain)


@dataclass
class _PhotoSample:
    """The orthophoto's whole-file decisions and its sample (``_decimated``), from one read."""

    alpha: bool                            # a 4th band that is alpha (0 = no data)
    stored_range: tuple[float, float]      # stored values mapped to 0 and 1
    rgb: np.ndarray                        # (rows, cols, 3) colours in [0, 1]
    valid: np.ndarray                      # (rows, cols) where it has data


def _photo_sample(r: Raster) -> _PhotoSample:
    """The orthophoto's rules (core/inputs/rules.py) and sample, checked as an orthophoto."""
    check_orthophoto(r)
    data = _decimated(r, Resampling.nearest)
    alpha = r.count == 4 and not fourth_band_is_nir(r, data[3])
    valid = declared_valid(r, data, data[3] if alpha else None, None) & ~black_frame(data[:3])
    stored_range = value_range(data[:3], valid, r.dtype)
    return _PhotoSample(alpha, stored_range, np.moveaxis(scale(data[:3], *stored_range), 0, -1), valid)


def _statistics(by_role: dict[str, Raster], palette: str, heights: str,
                photo: _PhotoSample | None) -> tuple[tuple[float, float], float | None, Exemplars | None]:
    """Building and tree cover, the median building height and the photo's texture exemplars of
    the input area (decimated)."""
    scheme = get_scheme(palette)
    ndsm = None
    if heights in ("ndsm", "dsm-dtm"):
        ndsm = _metres(_decimated(by_role["height"], Resampling.average), by_role["height"].nodata)
    if heights == "dsm-dtm":
        dtm = _metres(_decimated(by_role["dtm"], Resampling.average), by_role["dtm"].nodata)
        ndsm = np.clip(ndsm - nearest(dtm, ndsm.shape), 0, None)
    if "semantic" in by_role:
        classes = read_class_values(by_role["semantic"], scheme, _decimated(by_role["semantic"], Resampling.nearest))
    elif photo is not None:
        classes = _photo_classes(scheme, by_role["rgb"], photo, ndsm)
    elif ndsm is not None:
        cell = by_role["height"].res[0] if by_role["height"].res else 1.0
        classes = classify(scheme, None, None, np.nan_to_num(ndsm), cell ** 2)
    else:
        return (0.0, 0.0), None, None
    kinds = scheme.kind_lut()[classes]
    known = classes > 0
    shares = tuple(round(float((kinds[known] == k).mean()), 4) if known.any() else 0.0
                   for k in (SurfaceKind.BUILDING, SurfaceKind.VEGETATION))
    height = None
    if ndsm is not None:
        height = _median(ndsm, nearest(kinds, ndsm.shape) == SurfaceKind.BUILDING)
    exemplars = None
    if photo is not None:  # classes on the photo's own sample (a semantic map of another grid: the photo's)
        if classes.shape != photo.valid.shape:
            classes = _photo_classes(scheme, by_role["rgb"], photo, ndsm)
        classes = np.where(photo.valid, scheme.to_openearthmap_lut()[classes], 0)
        exemplars = choose(classes, photo.rgb, _sample_squares(by_role["rgb"], EXEMPLAR_PX), EXEMPLAR_PX)
    return shares, height, exemplars


def _photo_classes(scheme, r: Raster, photo: _PhotoSample, ndsm: np.ndarray | None) -> np.ndarray:
    """The land cover of the photo's sample by the photo-only rules (with the nDSM where there is one)."""
    rgb = photo.rgb
    cell = r.res[0] if r.res else 1.0
    return classify(scheme, rgb, None, None if ndsm is None else nearest(np.nan_to_num(ndsm), rgb.shape[:2]), cell ** 2)


def _median(values: np.ndarray, mask: np.ndarray) -> float | None:
    picked = values[mask & np.isfinite(values)]
    return round(float(np.median(picked)), 2) if picked.size else None


def open_inputs(files: InputFiles) -> tuple[WorldInputs, str | None, float, float, str]:
    """Check the input files (headers, placement, formats) and take the whole-file decisions.

    Returns (inputs, crs, origin easting, origin northing, crs units). No file of any size is
    decoded whole: headers, then reads of at most STATS_SIDE pixels a side.
    """
    check_files(files)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        return _open_inputs(files)


def _open_inputs(files: InputFiles) -> tuple[WorldInputs, str | None, float, float, str]:
    given = [(role, Path(getattr(files, role))) for role in INPUT_ROLES if getattr(files, role) is not None]
    rasters = [open_raster(role, path.resolve(), max_pixels=1 << 62) for role, path in given]
    placed = place(rasters, files.gsd, files.gsd_flag)
    check_same_place(placed)
    ref = reference(placed)
    by_role = {r.role: r for r in rasters}
    photo = _photo_sample(by_role["rgb"]) if "rgb" in by_role else None
    heights, datum = _height_rules(by_role)
    shares, building_height, exemplars = _statistics(by_role, files.palette, heights, photo)
    inputs = WorldInputs(
        rasters=tuple(InputRaster(role=p.raster.role, path=str(p.raster.path), bytes=p.raster.path.stat().st_size,
                                  bounds=_world_bounds(p, ref), shape=p.raster.shape, flip=p.raster.flip,
                                  alpha=photo.alpha if p.raster.role == "rgb" else False,
                                  value_range=photo.stored_range if p.raster.role == "rgb" else (0.0, 1.0))
                      for p in placed),
        palette=files.palette, heights=heights, datum=round(datum, 3), bounds=_world_bounds(ref, ref),
        shares=shares, building_height=building_height, exemplars=exemplars)
    r = ref.raster
    crs = None if not r.located else (f"EPSG:{r.crs.to_epsg()}" if r.crs.to_epsg() else r.crs.to_wkt())
    units = "degree" if r.located and r.crs.is_geographic else "metre"
    return inputs, crs, (r.bounds.left if r.located else 0.0), (r.bounds.bottom if r.located else 0.0), units


def check_unchanged(inputs: WorldInputs) -> None:
    """An input that changed since the world began would make new chunks disagree with old ones."""
    for r in inputs.rasters:
        path = Path(r.path)
        if not path.is_file():
            raise InputError(path, "the world's input file is gone", "restore it, or start a new --out")
        if path.stat().st_size != r.bytes:
            raise InputError(path, "the world's input file changed since the world began",
                             "restore it, or start a new --out")


# ---- windows -----------------------------------------------------------------------------------------

@dataclass
class RasterWindow:
    """Part of one raster: (bands, rows, cols) float32 (NaN = no data), each cell the mean of
    ``factor`` x ``factor`` pixels, its first cell at block (row0, col0) of the raster."""

    raster: InputRaster
    data: np.ndarray
    factor: int
    row0: int
    col0: int

    def sample(self, x: np.ndarray, y: np.ndarray, order: int) -> np.ndarray:
        """(bands, ...) values at world positions: bilinear (order 1) or nearest (0); NaN outside
        the raster. Coordinates are global block coordinates minus an integer: exact in float64."""
        w, s, e, n = self.raster.bounds
        px, py = self.raster.px
        u = ((x - w) / (px * self.factor) - 0.5) - self.col0
        v = ((n - y) / (py * self.factor) - 0.5) - self.row0
        inside = (x >= w) & (x <= e) & (y >= s) & (y <= n)
        coords = np.stack([v.ravel(), u.ravel()])
        out = np.stack([ndimage.map_coordinates(band, coords, order=order, mode="nearest", prefilter=False)
                        for band in self.data]).reshape(len(self.data), *np.shape(x))
        return np.where(inside, out, np.nan)


def read_window(r: InputRaster, rect: tuple[float, float, float, float], factor: int = 1,
                as_values: bool = True) -> RasterWindow | None:
    """The blocks of ``r`` covering world ``rect`` (west, south, east, north) plus one block, or None
    when the raster does not reach it. ``as_values`` applies the stored-value rules (NaN no-data,
    alpha, orthophoto scaling); otherwise the stored values come back as they are (class maps)."""
    w, s, e, n = rect
    px, py = r.px[0] * factor, r.px[1] * factor
    rows_b, cols_b = math.ceil(r.shape[0] / factor), math.ceil(r.shape[1] / factor)
    c0 = min(max(math.floor((w - r.bounds[0]) / px) - 1, 0), cols_b)
    c1 = min(max(math.ceil((e - r.bounds[0]) / px) + 1, 0), cols_b)
    r0 = min(max(math.floor((r.bounds[3] - n) / py) - 1, 0), rows_b)
    r1 = min(max(math.ceil((r.bounds[3] - s) / py) + 1, 0), rows_b)
    if c1 <= c0 or r1 <= r0:
        return None
    rows = (r0 * factor, min(r1 * factor, r.shape[0]))
    cols = (c0 * factor, min(c1 * factor, r.shape[1]))
    data = read_pixels(r, rows, cols, as_values)
    if factor > 1:
        data = _block_mean(data, factor)
    return RasterWindow(r, data, factor, r0, c0)


def read_pixels(r: InputRaster, rows: tuple[int, int], cols: tuple[int, int], as_values: bool) -> np.ndarray:
    """North-up pixel rows/cols of the raster, read through a window of the file: float32 data with
    NaN where there is none (``as_values``), else the stored values."""
    header = open_raster(r.role, Path(r.path), max_pixels=1 << 62)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        if r.role == "rgb" and as_values:
            return _photo(r, header, rows, cols)
        data = read(header, window=(rows, cols), masked=as_values)
    if not as_values:
        return np.ascontiguousarray(data)
    out = np.ma.getdata(data).astype(np.float32)
    out[:, np.ma.getmaskarray(data).any(0) | ~np.isfinite(out[0])] = np.nan
    return out


def read_squares(r: InputRaster, origins: tuple[tuple[int, int], ...], side: int, factor: int) -> np.ndarray:
    """(E, S, S, 3) the photo's squares of ``side`` pixels at north-up pixel ``origins``, averaged
    in ``factor`` x ``factor`` blocks (S = side // factor, at least 1), no data as mid grey: one read
    of their bounding rows and columns when that is small enough, else one read each."""
    rows = min(o[0] for o in origins), max(o[0] for o in origins) + side
    cols = min(o[1] for o in origins), max(o[1] for o in origins) + side
    whole = None
    if (rows[1] - rows[0]) * (cols[1] - cols[0]) <= WHOLE_READ_PIXELS:
        whole = read_pixels(r, rows, cols, True)
    cells = max(side // factor, 1)
    squares = []
    for row, col in origins:
        square = (read_pixels(r, (row, row + side), (col, col + side), True) if whole is None
                  else whole[:, row - rows[0]:row - rows[0] + side, col - cols[0]:col - cols[0] + side])
        squares.append(np.moveaxis(_block_mean(square[:, :cells * factor, :cells * factor], factor), 0, -1))
    return np.nan_to_num(np.stack(squares), nan=0.5).astype(np.float32)


def _photo(r: InputRaster, header: Raster, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """(3, rows, cols) orthophoto in [0, 1], NaN where there is no data by core/inputs/rules.py: the
    frame is found on a read FRAME_MARGIN_PX wider on every side, so the window sees it as a whole
    file does."""
    m = FRAME_MARGIN_PX
    (a, b), (c, d) = rows, cols
    ra, rb, ca, cb = max(a - m, 0), min(b + m, r.shape[0]), max(c - m, 0), min(d + m, r.shape[1])
    wider = ((ra, rb), (ca, cb))
    data = read(header, window=wider)
    mask = read_internal_mask(header, window=wider) if header.internal_mask else None
    border = black_frame(data[:3])
    valid = declared_valid(header, data, data[3] if r.alpha else None, mask) & ~border
    rgb = scale(data[:3], *r.value_range)
    rgb[:, no_data_frame(border, ~valid, np.moveaxis(rgb, 0, -1))] = np.nan
    return np.ascontiguousarray(rgb[:, a - ra:b - ra, c - ca:d - ca])


def _block_mean(data: np.ndarray, f: int) -> np.ndarray:
    """Mean of f x f pixel blocks, ignoring no-data (a partial block at the raster's edge too)."""
    bands, h, w = data.shape
    padded = np.full((bands, -(-h // f) * f, -(-w // f) * f), np.nan, np.float32)
    padded[:, :h, :w] = data
    blocks = padded.reshape(bands, padded.shape[1] // f, f, padded.shape[2] // f, f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks stay NaN
        return np.nanmean(blocks, axis=(2, 4)).astype(np.float32)


def block_factor(r: InputRaster, cell: float) -> int:
    """Pixels averaged per side so a block is not finer than ``cell`` metres."""
    return max(1, int(cell / max(r.px) + 1e-9))
