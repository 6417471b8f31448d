"""Open rasters safely: header checks before decoding, every GDAL failure turned into an InputError."""
from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.coords import BoundingBox
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from ..errors import InputError

_FIX_CORRUPT = "re-download or re-export the file"
_PNG_END = b"IEND\xaeB`\x82"  # the last 8 bytes of every complete PNG
_CORRUPT = "the pixels cannot be read: the file is corrupt or truncated"
# A part of a raster: north-up pixel rows [r0, r1) and columns [c0, c1).
PixelWindow = tuple[tuple[int, int], tuple[int, int]]


@dataclass(frozen=True)
class Raster:
    """What the header of one input says; no pixel has been decoded yet."""

    role: str                        # "rgb", "height", "dtm" or "semantic"
    path: Path
    width: int
    height: int
    count: int
    dtype: str
    driver: str
    nodata: float | None
    crs: CRS | None
    res: tuple[float, float] | None  # CRS units per pixel (x, y); None without a geotransform
    bounds: BoundingBox | None       # normalised so left < right and bottom < top
    flip: tuple[bool, bool]             # (rows, columns) stored south-up / east-left
    colorinterp: tuple[ColorInterp, ...]
    descriptions: tuple[str, ...]
    internal_mask: bool                 # GDAL per-dataset mask that is not an alpha band

    @property
    def located(self) -> bool:
        """True when the raster says where it is on Earth (CRS and geotransform)."""
        return self.crs is not None and self.res is not None

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width


def _one_line(err: BaseException) -> str:
    # rasterio hides the GDAL reason in the chained exception; messages may span lines.
    cause = err.__cause__ or err
    return " ".join(str(cause).split())[:200]


@contextmanager
def gdal_errors(path: Path, problem: str, fix: str = _FIX_CORRUPT) -> Iterator[None]:
    """Run GDAL work quietly; a GDAL failure becomes an InputError naming the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # plain PNG/JPEG are expected
        try:
            yield
        except RasterioError as err:
            raise InputError(path, f"{problem} ({_one_line(err)})", fix) from None


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise InputError(path, "file not found", "check the path")
    if not path.is_file():
        raise InputError(path, "is not a file", "pass the raster file itself, not a folder")
    if path.stat().st_size == 0:
        raise InputError(path, "the file is empty (0 bytes)", _FIX_CORRUPT)


def _check_complete(path: Path, driver: str) -> None:
    # GDAL decodes a truncated PNG without complaint (missing rows come back as zeros).
    if driver == "PNG":
        with open(path, "rb") as fh:
            fh.seek(max(0, path.stat().st_size - len(_PNG_END)))
            if fh.read() != _PNG_END:
                raise InputError(path, "the PNG is truncated (no IEND chunk)", _FIX_CORRUPT)


def _geometry(ds: rasterio.DatasetReader, path: Path):
    """(res, bounds, flip) of a north-up grid, or Nones for a raster without a geotransform."""
    t = ds.transform
    if t.is_identity:
        return None, None, (False, False)
    if t.b != 0 or t.d != 0:
        raise InputError(path, "the grid is rotated or sheared",
                         "warp it to a north-up grid first: gdalwarp in.tif out.tif")
    b = ds.bounds
    bounds = BoundingBox(min(b.left, b.right), min(b.bottom, b.top),
                         max(b.left, b.right), max(b.bottom, b.top))
    return (abs(t.a), abs(t.e)), bounds, (t.e > 0, t.a < 0)


MIN_SIDE_PX = 8  # below this a tile has too few pixels for a mesh and its atlas


def open_raster(role: str, path: Path, max_pixels: int) -> Raster:
    """Read the header only, and refuse empty or over-budget rasters before any pixel is decoded."""
    _check_exists(path)
    with gdal_errors(path, "not a raster GDAL can open",
               "pass a PNG, JPEG or GeoTIFF; re-download it if it is one"), rasterio.open(path) as ds:
        # GDAL itself refuses 0 x N rasters; a container (netCDF, HDF) can still open with no band.
        if ds.count == 0:
            raise InputError(path, "the file has no raster band",
                             "pass one of its subdatasets (gdalinfo lists them)")
        if min(ds.width, ds.height) < MIN_SIDE_PX and role != "dtm":  # a coarse terrain model is fine
            raise InputError(path, f"{ds.width}x{ds.height} pixels is too small to make an asset from",
                             f"pass a raster of at least {MIN_SIDE_PX}x{MIN_SIDE_PX} pixels")
        if ds.width * ds.height > max_pixels:
            raise InputError(path, f"{ds.width}x{ds.height} = {ds.width * ds.height} pixels is over "
                             f"the budget of {max_pixels}",
                             "crop or downsample it, e.g. gdal_translate -outsize 50% 50%")
        res, bounds, flip = _geometry(ds, path)
        raster = Raster(
            role=role, path=path, width=ds.width, height=ds.height, count=ds.count,
            dtype=ds.dtypes[0], driver=ds.driver, nodata=ds.nodata, crs=ds.crs, res=res,
            bounds=bounds, flip=flip, colorinterp=tuple(ds.colorinterp),
            descriptions=tuple(d or "" for d in ds.descriptions),
            internal_mask=ds.mask_flag_enums[0] == [MaskFlags.per_dataset])
    _check_complete(path, raster.driver)
    return raster


def read(r: Raster, out_shape: tuple[int, int] | None = None,
         resampling: Resampling = Resampling.nearest, masked: bool = False,
         window: PixelWindow | None = None) -> np.ndarray:
    """All bands as (bands, rows, cols), row 0 north; ``out_shape`` makes GDAL decimate while reading;
    ``window`` reads only that part of the raster (only its blocks are decoded)."""
    shape = (r.count, *out_shape) if out_shape else None
    with gdal_errors(r.path, _CORRUPT), rasterio.open(r.path) as ds:
        data = ds.read(out_shape=shape, resampling=resampling, masked=masked, window=_file_window(r, window))
    return north_up(data, r.flip)


def read_internal_mask(r: Raster, window: PixelWindow | None = None) -> np.ndarray:
    """(rows, cols) bool validity from a GDAL internal mask band, north-up."""
    with gdal_errors(r.path, "the mask cannot be read: the file is corrupt or truncated"), \
            rasterio.open(r.path) as ds:
        mask = ds.dataset_mask(window=_file_window(r, window)) > 0
    return north_up(mask, r.flip)


def _file_window(r: Raster, window: PixelWindow | None) -> Window | None:
    """A north-up pixel window as the file stores it (south-up or east-left grids are mirrored)."""
    if window is None:
        return None
    (a, b), (c, d) = window
    if r.flip[0]:
        a, b = r.height - b, r.height - a
    if r.flip[1]:
        c, d = r.width - d, r.width - c
    return Window(c, a, d - c, b - a)


def north_up(a: np.ndarray, flip: tuple[bool, bool]) -> np.ndarray:
    """Flip the last two axes of a south-up or east-left grid so row 0 is north, column 0 west."""
    if flip[0]:
        a = a[..., ::-1, :]
    if flip[1]:
        a = a[..., ::-1]
    return a


def all_no_data(r: Raster, what: str = "every pixel is no-data") -> InputError:
    return InputError(r.path, what, "check the file's nodata value, or pass a raster with data")
