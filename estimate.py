"""``satforge estimate``: an orthophoto in, a learned model's own output out, for people who want the
rasters or the volume themselves (and to check them against the original model).

- ``rs3dada``: ``ndsm.tif`` (float32 metres, >= 0) and ``classes.tif`` (uint8 OpenEarthMap ids 1-8)
  on the input's grid, with its CRS and transform.
- ``sat3dgen``: ``density.npy`` (N x N x N float32) and ``colour.npy`` (N x N x N x 3 float32, RGB in
  [0, 1]) of the whole image read as the model's 256 px input, axes [x east, y north, z up];
  ``report.json`` holds the cell size, the centre of cell [0, 0, 0] and the bounds in metres.

Every file of a run appears together with ``report.json``, or none does.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .core.contract import REPORT
from .core.errors import InputError
from .core.inputs.grid import place
from .core.inputs.raster import Raster, north_up, open_raster, read
from .core.inputs.rules import check_orthophoto, declared_valid, fourth_band_is_nir, scale, value_range
from .core.output_dir import check_out_dir, staged_folder
from .core.progress import Progress, peak_rss_mb

NDSM, CLASSES = "ndsm.tif", "classes.tif"
DENSITY, COLOUR = "density.npy", "colour.npy"
MAX_PIXELS = 400_000_000  # an estimate holds a few float32 copies of the image


@dataclass(frozen=True)
class EstimateJob:
    rgb: Path
    out_dir: Path
    generator: str = "rs3dada"
    weights: dict[str, str] = field(default_factory=dict)  # role -> source, as GenerateSettings takes them
    patch: int = 1022
    stride: int = 511
    tta: bool = False
    grid: int = 320
    device: str = "auto"


def photo_pixels(r: Raster) -> np.ndarray:
    """(H, W, 3) float32 of the first three bands in 0-255 units, as the models read them: an 8-bit
    file's values as stored, a 16-bit one through the project's value-range rule."""
    check_orthophoto(r)
    data = read(r)
    if r.dtype == "uint8":
        return np.moveaxis(data[:3], 0, -1).astype(np.float32)
    alpha = data[3] if r.count == 4 and not fourth_band_is_nir(r, data[3]) else None
    valid = declared_valid(r, data, alpha, None)
    return np.moveaxis(scale(data[:3], *value_range(data[:3], valid, r.dtype)) * 255, 0, -1)


def run_estimate(job: EstimateJob, progress: Progress) -> dict:
    """Read, estimate, write; a user mistake raises InputError before any file is written."""
    from .core.generators.base import resolve_device

    start = time.perf_counter()
    check_out_dir(job.out_dir)
    progress.begin("read")
    raster = open_raster("rgb", job.rgb, MAX_PIXELS)
    pixels = photo_pixels(raster)
    progress.end("read")
    device = resolve_device(job.device)
    estimate = _volume if job.generator == "sat3dgen" else _rasters
    report, files = estimate(job, raster, pixels, device, progress)
    report = {"satforge": __version__, "generator": job.generator, "device": device, "input": str(job.rgb),
              "size": [int(pixels.shape[1]), int(pixels.shape[0])], **report,
              "total_seconds": round(time.perf_counter() - start, 3), "peak_rss_mb": peak_rss_mb(),
              "outputs": [*files, REPORT]}
    _write_all(job.out_dir, files, report)
    return report


Writer = Callable[[Path], None]


def _rasters(job: EstimateJob, r: Raster, pixels: np.ndarray, device: str,
             progress: Progress) -> tuple[dict, dict[str, Writer]]:
    from .core.generators.rs3dada.model import load_rs3dada
    from .core.generators.rs3dada.tiled import estimate

    models = load_rs3dada(job.weights.get("height"), job.weights.get("classes"), device)
    progress.begin("estimate")
    ndsm, classes = estimate(pixels, models, job.patch, job.stride, job.tta, device, progress=progress.update)
    progress.end("estimate")
    report = {"weights": {"height": str(models.height_path), "classes": str(models.classes_path)},
              "patch": job.patch, "stride": job.stride, "tta": job.tta,
              "ndsm_m": {"min": float(ndsm.min()), "max": float(ndsm.max()), "mean": round(float(ndsm.mean()), 3)},
              "class_share": {int(c): round(float(n) / classes.size, 4)
                              for c, n in zip(*np.unique(classes, return_counts=True))}}
    files = {NDSM: _geotiff(r, ndsm, "nDSM, metres above ground (RS3DAda)"),
             CLASSES: _geotiff(r, classes, "OpenEarthMap class ids 1-8 (RS3DAda)")}
    return report, files


def _volume(job: EstimateJob, r: Raster, pixels: np.ndarray, device: str,
            progress: Progress) -> tuple[dict, dict[str, Writer]]:
    from .core.generators.sat3dgen.model import load_sat3dgen
    from .core.generators.sat3dgen.volume import density_grid, planes

    if not 2 <= job.grid <= 1024:
        raise InputError("--grid", f"{job.grid} cells", "use 2 to 1024 (320: one cell per model input pixel)")
    model = load_sat3dgen(job.weights.get("volume"), device)
    progress.begin("estimate")
    # The whole image is the model's input: its metres per model pixel follow from its width.
    metres = place([r], None)[0].size_m[0] / model.cfg.input_size if r.located else None
    extra = {"metres_per_pixel": metres} if metres else {}
    volume = density_grid(model, planes(model, pixels), job.grid, progress.update, **extra)
    progress.end("estimate")
    report = {"weights": job.weights.get("volume") or "registered weights (hub cache)", "grid": job.grid,
              "axes": ["x east", "y north", "z up"], "index_0": "west, south, bottom",
              "voxel_size_m": volume.voxel_size, "cell_000_centre_m": list(volume.origin),
              "bounds_m": [list(b) for b in volume.bounds],
              "frame": "x, y from the image centre; z from the model cube's mid-height",
              "iso": volume.iso, "evaluated_share": round(float(volume.evaluated.mean()), 4),
              "occupied_share": round(float((volume.density >= volume.iso).mean()), 4)}
    files = {DENSITY: _npy(volume.density), COLOUR: _npy(volume.colour)}
    return report, files


def _npy(array: np.ndarray) -> Writer:
    def write(path: Path) -> None:
        with open(path, "wb") as fh:
            np.save(fh, array)
    return write


def _geotiff(r: Raster, band: np.ndarray, description: str) -> Writer:
    """A one-band GeoTIFF on the input's grid (its CRS, transform and orientation)."""
    import rasterio

    def write(path: Path) -> None:
        with rasterio.open(r.path) as src:
            crs, transform = src.crs, src.transform
        with rasterio.open(path, "w", driver="GTiff", width=r.width, height=r.height, count=1, crs=crs,
                           transform=transform, compress="deflate", tiled=True, dtype=band.dtype) as dst:
            dst.write(north_up(band, r.flip), 1)
            dst.set_band_description(1, description)
    return write


def _write_all(out_dir: Path, files: dict[str, Writer], report: dict) -> None:
    """Every file and the report, committed all at once."""
    with staged_folder(out_dir, replaces=(NDSM, CLASSES, DENSITY, COLOUR, REPORT)) as stage:
        for name, write in files.items():
            write(stage / name)
        (stage / REPORT).write_text(json.dumps(report, indent=2) + "\n")
