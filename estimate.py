"""``satforge estimate``: an orthophoto in, the learned generator's rasters out: ``ndsm.tif`` (float32
metres, >= 0) and ``classes.tif`` (uint8 OpenEarthMap ids 1-8) on the input's grid, with its CRS and
transform, plus ``report.json``. All three files appear together or not at all.
"""
from __future__ import annotations

import json
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .core.atomic import atomic_path
from .core.contract import REPORT
from .core.errors import InputError
from .core.inputs.raster import Raster, north_up, open_raster, read
from .core.inputs.rules import check_orthophoto, declared_valid, fourth_band_is_nir, scale, value_range
from .core.progress import Progress, peak_rss_mb

NDSM, CLASSES = "ndsm.tif", "classes.tif"
MAX_PIXELS = 400_000_000  # an estimate holds a few float32 copies of the image


@dataclass(frozen=True)
class EstimateJob:
    rgb: Path
    out_dir: Path
    height_weights: str | None = None
    seg_weights: str | None = None
    patch: int = 1022
    stride: int = 511
    tta: bool = False
    device: str = "auto"


def photo_pixels(r: Raster) -> np.ndarray:
    """(H, W, 3) float32 of the first three bands in 0-255 units, as the model reads them: an 8-bit
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
    from .core.generators.rs3dada.model import load_rs3dada
    from .core.generators.rs3dada.tiled import estimate

    start = time.perf_counter()
    progress.begin("read")
    raster = open_raster("rgb", job.rgb, MAX_PIXELS)
    pixels = photo_pixels(raster)
    progress.end("read")
    device = resolve_device(job.device)
    models = load_rs3dada(job.height_weights, job.seg_weights, device)
    progress.begin("estimate")
    ndsm, classes = estimate(pixels, models, job.patch, job.stride, job.tta, device, progress=progress.update)
    progress.end("estimate")
    report = {"satforge": __version__, "generator": "rs3dada", "device": device, "input": str(job.rgb),
              "weights": {"height": str(models.height_path), "classes": str(models.classes_path)},
              "patch": job.patch, "stride": job.stride, "tta": job.tta,
              "size": [int(pixels.shape[1]), int(pixels.shape[0])],
              "ndsm_m": {"min": float(ndsm.min()), "max": float(ndsm.max()), "mean": round(float(ndsm.mean()), 3)},
              "class_share": {int(c): round(float(n) / classes.size, 4)
                              for c, n in zip(*np.unique(classes, return_counts=True))},
              "total_seconds": round(time.perf_counter() - start, 3), "peak_rss_mb": peak_rss_mb(),
              "outputs": [NDSM, CLASSES, REPORT]}
    _write(job.out_dir, raster, ndsm, classes, report)
    return report


def _write(out_dir: Path, r: Raster, ndsm: np.ndarray, classes: np.ndarray, report: dict) -> None:
    """Both rasters on the input's grid (its CRS, transform and orientation), then the report."""
    import rasterio

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError("--out", f"cannot create {out_dir} ({exc.strerror})", "pass a writable folder") from None
    with rasterio.open(r.path) as src:
        profile = {"driver": "GTiff", "width": r.width, "height": r.height, "count": 1, "crs": src.crs,
                   "transform": src.transform, "compress": "deflate", "tiled": True}
    with ExitStack() as stack:
        temps = {name: stack.enter_context(atomic_path(out_dir / name)) for name in (REPORT, CLASSES, NDSM)}
        with rasterio.open(temps[NDSM], "w", **profile, dtype="float32") as dst:
            dst.write(north_up(ndsm, r.flip), 1)
            dst.set_band_description(1, "nDSM, metres above ground (RS3DAda)")
        with rasterio.open(temps[CLASSES], "w", **profile, dtype="uint8") as dst:
            dst.write(north_up(classes, r.flip), 1)
            dst.set_band_description(1, "OpenEarthMap class ids 1-8 (RS3DAda)")
        temps[REPORT].write_text(json.dumps(report, indent=2) + "\n")
