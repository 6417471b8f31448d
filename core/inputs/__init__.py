"""Read inputs: orthophoto, height and semantic files -> one co-registered, masked ``Tile``.

Every user mistake raises ``InputError`` (one line: the file or option, what is wrong, what to do).

Rules this stage applies:

Formats
  Anything GDAL reads through rasterio: PNG, JPEG, TIFF/GeoTIFF (deflate, LZW, JPEG), 8/16-bit.
  The header is checked first (missing, empty, over ``max_pixels``, rotated grid) before any pixel is
  decoded. A truncated file is refused (GDAL's read error; for PNG, a missing IEND chunk).
  South-up or east-left grids (negative pixel height / width) are flipped: row 0 is always north.

Orthophoto (``rgb``): 3 or 4 bands, uint8 or uint16, kept at its own resolution (image grid).
  - 4th band is near-infrared when its description says "nir"/"infrared", when it is not labelled
    alpha, or when a GeoTIFF labels it alpha but fewer than 95 % of its values are 0 or full-scale
    (NAIP files label NIR as an alpha extra sample). Otherwise it is alpha, and alpha 0 = no-data.
  - 8-bit: value / 255. 16-bit: value / 65535 when the 98th percentile is above 4095 (full-range
    data); else one linear stretch from the 2nd to the 98th percentile of all bands together (10-12-bit
    sensor counts would be nearly black at /65535). NIR gets the same rule on its own percentiles.
  - No-data: the file's nodata value (on all colour bands), alpha 0, a GDAL internal mask, and an
    undeclared black frame: exactly (0, 0, 0) regions connected to the image edge, grown by up to
    16 px into near-black (<= 16/255) pixels to drop JPEG ringing along the frame, then closed by 2 px
    so dark specks inside the frame are not kept. (Real black touching the edge is lost with it.)

Heights (``height``, ``dtm``): one band, metres; integer rasters are value * height_scale +
  height_offset. Nodata and non-finite values -> NaN.
  - With a DTM: nDSM = DSM - DTM clipped at 0; DTM holes where the DSM has data are filled from the
    nearest DTM value; ground = DTM - median(DTM), and that median is ``georef.elevation``.
  - Without: if the 2nd percentile lies within -1..3 m it is an nDSM (clipped at 0, no ground);
    otherwise it is an absolute surface (DSM/DEM) taken as terrain: ground = value - median,
    nDSM = 0, elevation = median. (A low-lying DSM near sea level is mistaken for an nDSM: pass --dtm.)

Semantic map (``semantic``): one band of class ids, or an 8-bit RGB(A) palette image whose colours are
  exactly the scheme's. Nodata, alpha 0 and id 0 are "unknown". Any other value is refused, naming the
  first values, the pixel count, and a --palette that fits when one does. Classes are resampled by
  nearest neighbour (read at full resolution so every pixel is checked).

Georeference and grids
  - GSD and CRS from the geotransform. Geographic CRS: pixel size converted to metres at the centre
    latitude (111320 * cos(lat) m per degree east, 110540 m per degree north); crs_units "degree" and
    lon/lat of the centre in easting/northing. Projected CRS in feet: converted to metres.
  - Without a geotransform: --gsd is the pixel size of the largest such raster, the others cover its
    extent; without --gsd they cover the extent of a georeferenced input; with neither, an error.
    A raster stretched onto another's extent must have the same aspect ratio (2 %).
  - GSD outside 0.01..1000 m is refused. All located inputs must share one CRS and agree on their
    bounds within one pixel (the coarser) or 2 % of the extent; the later file is named at fault.
  - Analysis grid GSD = the finest height/semantic raster's GSD (the photo's when there is none), but
    never finer than half the photo's GSD nor than 0.5 m (MIN_ANALYSIS_GSD). Its extent and
    georeference come from the first located input in the order rgb, height, dtm, semantic.
    ``georef.gsd`` is the mean of x/y pixel sizes.
  - Heights are downsampled by averaging during the GDAL read (memory follows the output, nodata
    ignored) and upsampled by NaN-aware bilinear interpolation.
  - ``Tile.valid`` = any input has data there: photo valid (nearest onto the grid), nDSM or ground
    finite, or a known class.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..contract import INPUT_ROLES
from ..errors import InputError
from ..schemes import get_scheme
from ..tile import Tile
from .grid import Grid, analysis_grid, check_gsd_option, check_same_place, place
from .height import Heights, read_heights
from .image import Image, read_image
from .raster import open_raster
from .resample import nearest
from .semantic import read_classes

__all__ = ["InputFiles", "check_files", "load_tile"]



@dataclass(frozen=True)
class InputFiles:
    rgb: Path | None = None        # orthophoto
    height: Path | None = None     # DSM or nDSM (float GeoTIFF/TIFF metres, or 16-bit PNG with scale/offset)
    dtm: Path | None = None        # terrain model; with it, nDSM = height - dtm and ground = dtm
    semantic: Path | None = None   # class ids (single band) or RGB palette image
    palette: str = "openearthmap"  # class scheme name (core.schemes.get_scheme)
    gsd: float | None = None       # metres per pixel of the largest raster without georeference
    gsd_flag: str = "--gsd"        # the option that gives ``gsd`` in the command that was run
    height_scale: float = 1.0      # integer height/DTM rasters (16-bit PNG): metres = value*scale + offset
    height_offset: float = 0.0
    max_pixels: int = 100_000_000  # pixel budget per raster, refused before decoding


def check_files(files: InputFiles) -> None:
    """The options' own mistakes, before any file is opened."""
    if files.rgb is None and files.height is None and files.semantic is None:
        raise InputError("--rgb/--height/--semantic", "no input raster given",
                         "pass at least an orthophoto, a height raster or a semantic map")
    if files.dtm is not None and files.height is None:
        raise InputError("--dtm", "a terrain model needs a surface model to subtract from",
                         "pass the DSM with --height, or the DTM itself as --height")
    if not math.isfinite(files.height_scale) or files.height_scale == 0:
        raise InputError("--height-scale", f"{files.height_scale} is not a usable scale",
                         "pass metres per stored unit, e.g. --height-scale 0.01")
    if not math.isfinite(files.height_offset):
        raise InputError("--height-offset", f"{files.height_offset} is not a number", "pass metres")
    check_gsd_option(files.gsd, files.gsd_flag)


def _valid(grid: Grid, image: Image | None, heights: Heights | None,
           classes: np.ndarray | None) -> np.ndarray:
    """Where any provided raster has data on the analysis grid."""
    valid = np.zeros(grid.shape, bool)
    if image is not None:
        valid |= nearest(image.valid, grid.shape)
    if heights is not None:
        valid |= np.isfinite(heights.height)
        if heights.ground is not None:
            valid |= np.isfinite(heights.ground)
    if classes is not None:
        valid |= classes > 0
    return valid


def load_tile(files: InputFiles, name: str | None = None) -> Tile:
    """Read, validate and co-register the given files into one ``Tile``."""
    check_files(files)
    scheme = get_scheme(files.palette)
    given = [(role, Path(getattr(files, role))) for role in INPUT_ROLES if getattr(files, role) is not None]
    rasters = [open_raster(role, path, files.max_pixels) for role, path in given]
    placed = place(rasters, files.gsd, files.gsd_flag)
    check_same_place(placed)
    grid = analysis_grid(placed)
    by_role = {r.role: r for r in rasters}
    image = read_image(by_role["rgb"]) if "rgb" in by_role else None
    heights = (read_heights(by_role["height"], by_role.get("dtm"), grid.shape, files.height_scale,
                            files.height_offset) if "height" in by_role else None)
    classes = read_classes(by_role["semantic"], scheme, grid.shape) if "semantic" in by_role else None
    georef = replace(grid.georef, elevation=heights.elevation) if heights else grid.georef
    return Tile(
        name=name or given[0][1].stem, georef=georef, scheme=scheme,
        valid=_valid(grid, image, heights, classes),
        height=heights.height if heights else None, ground=heights.ground if heights else None,
        classes=classes, rgb=image.rgb if image else None, nir=image.nir if image else None,
        image_valid=image.valid if image else None,
        image_gsd=next(p.gsd for p in placed if p.raster.role == "rgb") if image else 0.0,
        sources={role: str(path) for role, path in given})
