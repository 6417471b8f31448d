"""Where the inputs sit: pixel sizes in metres, one CRS, one extent, and the analysis grid."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InputError
from ..georef import Georeference
from .raster import Raster

# Metres per degree at the tile centre (spherical approximation, good to ~0.5 % for a tile).
M_PER_DEG_LON_EQUATOR = 111_320.0
M_PER_DEG_LAT = 110_540.0
_GSD_RANGE = (0.01, 1000.0)  # metres: finer than 1 cm or coarser than 1 km is a units mistake
_EXTENT_TOLERANCE = 0.02     # fraction of the extent two inputs may disagree by
_FIX_EXTENT = "crop both to the same extent, e.g. gdalwarp -te xmin ymin xmax ymax"


@dataclass(frozen=True)
class Placed:
    """A raster with its pixel size in metres (x, y), from its georeference or from --gsd."""

    raster: Raster
    px: tuple[float, float]

    @property
    def gsd(self) -> float:
        return (self.px[0] + self.px[1]) / 2

    @property
    def size_m(self) -> tuple[float, float]:
        return self.raster.width * self.px[0], self.raster.height * self.px[1]


@dataclass(frozen=True)
class Grid:
    """The analysis grid every height/class raster is brought onto."""

    shape: tuple[int, int]
    georef: Georeference


def check_gsd_option(gsd: float | None, flag: str = "--gsd") -> None:
    """``flag`` is the option of the command that was run (``world`` calls it --input-gsd)."""
    if gsd is not None and not (_GSD_RANGE[0] <= gsd <= _GSD_RANGE[1]):
        raise InputError(flag, f"{gsd} m per pixel is outside {_GSD_RANGE[0]}..{_GSD_RANGE[1]} m",
                         f"pass the ground sampling distance in metres, e.g. {flag} 0.3")


def _metres_per_pixel(r: Raster) -> tuple[float, float]:
    """Pixel size in metres from the geotransform; degrees are converted at the tile centre."""
    rx, ry = r.res
    if r.crs is not None and r.crs.is_geographic:
        lat = math.radians((r.bounds.bottom + r.bounds.top) / 2)
        px = (rx * M_PER_DEG_LON_EQUATOR * math.cos(lat), ry * M_PER_DEG_LAT)
    elif r.crs is not None and r.crs.is_projected:
        factor = r.crs.linear_units_factor[1]  # US survey feet and friends
        px = (rx * factor, ry * factor)
    else:
        px = (rx, ry)  # a geotransform without CRS: assume metres, the range check catches degrees
    if not all(_GSD_RANGE[0] <= p <= _GSD_RANGE[1] for p in px):
        raise InputError(r.path, f"pixel size {px[0]:.4g} x {px[1]:.4g} m is outside "
                         f"{_GSD_RANGE[0]}..{_GSD_RANGE[1]} m", "check the file's georeference with gdalinfo")
    return px


def _check_aspect(r: Raster, ref: Raster) -> None:
    """A raster stretched onto another's extent must have the same shape, or it would be distorted."""
    if abs(r.width / r.height - ref.width / ref.height) > _EXTENT_TOLERANCE * ref.width / ref.height:
        raise InputError(r.path, f"is {r.width}x{r.height} pixels; {ref.path.name} is "
                         f"{ref.width}x{ref.height}: the shapes differ", _FIX_EXTENT)


def _scaled_to(r: Raster, ref: Placed) -> Placed:
    """Pixel size of a raster without georeference that covers the same extent as ``ref``."""
    _check_aspect(r, ref.raster)
    w, h = ref.size_m
    return Placed(r, (w / r.width, h / r.height))


def place(rasters: list[Raster], gsd: float | None, flag: str = "--gsd") -> list[Placed]:
    """Pixel sizes for every raster. Rasters without a geotransform: ``gsd`` (option ``flag``) sets
    the largest of them and the others cover its extent; without it they cover the extent of a
    georeferenced input."""
    known = [Placed(r, _metres_per_pixel(r)) for r in rasters if r.res is not None]
    unknown = [r for r in rasters if r.res is None]
    if unknown and gsd is not None:
        anchor = Placed(max(unknown, key=lambda r: r.width * r.height), (gsd, gsd))
    elif unknown and known:
        anchor = reference(known)
    elif unknown:
        raise InputError(flag, f"no ground sampling distance: {unknown[0].path} has no georeference",
                         f"pass {flag} METRES")
    placed = known + [anchor if r is anchor.raster else _scaled_to(r, anchor) for r in unknown]
    order = [r.role for r in rasters]
    return sorted(placed, key=lambda p: order.index(p.raster.role))


def reference(placed: list[Placed]) -> Placed:
    """The input the tile's georeference comes from: the first located one, else the first."""
    return next((p for p in placed if p.raster.located), placed[0])


def _crs_label(r: Raster) -> str:
    epsg = r.crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else r.crs.to_string()[:60]


def _span(lo: float, hi: float, unit: str) -> str:
    digits = 6 if unit == "deg" else 1
    return f"{lo:.{digits}f}..{hi:.{digits}f}"


def _covers(p: Placed) -> str:
    r = p.raster
    if r.located:
        unit = "deg" if r.crs.is_geographic else "m"
        b = r.bounds
        return f"x {_span(b.left, b.right, unit)}, y {_span(b.bottom, b.top, unit)} {unit}"
    w, h = p.size_m
    return f"{w:.1f} x {h:.1f} m"


def _same_place(p: Placed, ref: Placed) -> bool:
    """Extents agree within one (coarser) pixel or 2 % of the extent, whichever is larger."""
    if p.raster.located and ref.raster.located:
        a, b = p.raster.bounds, ref.raster.bounds
        tol_x = max(p.raster.res[0], ref.raster.res[0], _EXTENT_TOLERANCE * (b.right - b.left))
        tol_y = max(p.raster.res[1], ref.raster.res[1], _EXTENT_TOLERANCE * (b.top - b.bottom))
        return (abs(a.left - b.left) <= tol_x and abs(a.right - b.right) <= tol_x
                and abs(a.bottom - b.bottom) <= tol_y and abs(a.top - b.top) <= tol_y)
    tol = [max(p.px[i], ref.px[i], _EXTENT_TOLERANCE * ref.size_m[i]) for i in (0, 1)]
    return all(abs(p.size_m[i] - ref.size_m[i]) <= tol[i] for i in (0, 1))


def check_same_place(placed: list[Placed]) -> None:
    """All inputs must share one CRS and cover the same extent; the second one is named at fault."""
    ref = reference(placed)
    for p in placed:
        if p is ref:
            continue
        if p.raster.located and ref.raster.located and p.raster.crs != ref.raster.crs:
            raise InputError(p.raster.path, f"is in {_crs_label(p.raster)}; {ref.raster.path.name} is in "
                             f"{_crs_label(ref.raster)}",
                             f"reproject to one CRS, e.g. gdalwarp -t_srs {_crs_label(ref.raster)}")
        if not _same_place(p, ref):
            raise InputError(p.raster.path, f"covers {_covers(p)}; {ref.raster.path.name} covers "
                             f"{_covers(ref)}", _FIX_EXTENT)


# The analysis grid sets the voxel size and the mesh resolution. Below 0.5 m every halving costs 4x
# time and memory while the triangle budgets cannot use the detail; the orthophoto still textures
# the surfaces at its own, finer resolution.
MIN_ANALYSIS_GSD = 0.5


def _analysis_gsd(placed: list[Placed]) -> tuple[Placed, float]:
    """The finest height/semantic raster sets the grid, but never finer than half the photo's GSD
    nor than MIN_ANALYSIS_GSD."""
    fine = [p for p in placed if p.raster.role in ("height", "semantic")]
    rgb = next((p for p in placed if p.raster.role == "rgb"), None)
    base = min(fine, key=lambda p: p.gsd) if fine else rgb
    return base, max(base.gsd, 0.5 * rgb.gsd if rgb else 0.0, MIN_ANALYSIS_GSD)


def _crs_string(r: Raster) -> str | None:
    if not r.located:
        return None
    epsg = r.crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else r.crs.to_wkt()


def analysis_grid(placed: list[Placed]) -> Grid:
    """Shape and georeference (elevation datum still 0) of the analysis grid."""
    ref = reference(placed)
    base, gsd = _analysis_gsd(placed)
    width_m, height_m = ref.size_m
    if gsd == base.gsd:
        shape = base.raster.shape  # no resampling of the raster that defines the grid
    else:
        shape = (max(1, round(height_m / gsd)), max(1, round(width_m / gsd)))
    r = ref.raster
    centre = ((r.bounds.left + r.bounds.right) / 2, (r.bounds.bottom + r.bounds.top) / 2) \
        if r.located else (0.0, 0.0)
    georef = Georeference(
        crs=_crs_string(r), easting=centre[0], northing=centre[1], elevation=0.0,
        width_m=width_m, height_m=height_m, gsd=(width_m / shape[1] + height_m / shape[0]) / 2,
        crs_units="degree" if r.located and r.crs.is_geographic else "metre", source=str(r.path))
    return Grid(shape, georef)
