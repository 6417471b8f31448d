"""The ``rs3dada`` generator: RS3DAda estimates what the user did not give (an nDSM and/or a land-cover
map, from the orthophoto alone), then the default generator builds the scene from the completed tile.

A given height raster or semantic map always wins; ``report.json``'s ``estimated`` says which rasters
came from the model and from which weights file. Weights sources come from
``GenerateSettings.weights`` (``height``, ``classes``: local paths or ``hf:`` hub files); without
them the registered files are read from the hub cache (``satforge weights fetch rs3dada``).
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from ...errors import InputError
from ...inputs.resample import area_mean, nearest
from ...scene import Scene
from ...tile import Tile
from ..base import Estimates, GenerateSettings, ProgressFn, chunk_threads, resolve_device
from ..default import DefaultGenerator


class RS3DAdaGenerator:
    name = "rs3dada"
    version = "1.0"
    neighbours = ()     # every chunk stands alone: the model sees the chunk's window
    chunk_safe = True   # deterministic on CPU, a function of the window's pixels
    photo_context = False  # it estimates from the valid pixels (NaN elsewhere)

    def estimate(self, rgb: np.ndarray, need_height: bool, need_classes: bool, settings: GenerateSettings,
                 progress: ProgressFn) -> Estimates:
        """nDSM and/or OpenEarthMap classes of (H, W, 3) float sRGB in [0, 1] (NaN: no data) on its own
        pixels, by the official tiled inference."""
        from .tiled import estimate

        device = resolve_device(settings.device)
        models = _models(settings.weights.get("height"), settings.weights.get("classes"), device, need_height,
                         need_classes)
        pixels = np.nan_to_num(rgb * 255.0).astype(np.float32)  # upstream works in 0-255 units
        with chunk_threads(settings):
            ndsm, classes = estimate(pixels, models, device=device, progress=progress)
        names = {"height": models.height_path, "classes": models.classes_path}
        return Estimates(height=ndsm, classes=classes,
                         sources={role: f"RS3DAda ({path.name})" for role, path in names.items() if path})

    def generate(self, tile: Tile, settings: GenerateSettings, progress: ProgressFn) -> Scene:
        if tile.rgb is None:
            raise InputError("--rgb", "the rs3dada generator estimates from an orthophoto and none was given",
                             "pass --rgb, or use --generator default")
        need_height, need_classes = tile.height is None, tile.classes is None
        sources = {}
        if need_height or need_classes:
            photo = np.where(tile.image_valid[..., None], tile.rgb, np.nan)
            found = self.estimate(photo, need_height, need_classes, settings, lambda f, m: progress(0.3 * f, m))
            tile = _completed(tile, found)
            sources = found.sources
        scene = DefaultGenerator().generate(tile, settings, lambda f, m: progress(0.3 + 0.7 * f, m))
        return dataclasses.replace(scene, generator=f"{self.name}/{self.version}",
                                   provenance={**scene.provenance, **sources})


@functools.lru_cache(maxsize=1)
def _models(height_src: str | None, seg_src: str | None, device: str, need_height: bool, need_classes: bool):
    """Loaded once per process: a world's chunks all use the same networks (~1.5 GB each)."""
    from .model import load_rs3dada

    return load_rs3dada(height_src, seg_src, device, need_height=need_height, need_classes=need_classes)


def _completed(tile: Tile, found: Estimates) -> Tile:
    """The tile with the estimated rasters brought onto its analysis grid."""
    changes = {}
    if found.height is not None:
        changes["height"] = completed_heights(tile, found.height)
    if found.classes is not None:
        changes["classes"] = completed_classes(tile, found.classes)
    return dataclasses.replace(tile, **changes)


def completed_heights(tile: Tile, ndsm: np.ndarray) -> np.ndarray:
    """An nDSM on the photo's pixels -> (H, W) float32 on the analysis grid (averaged), NaN where the
    tile has no data."""
    return np.where(tile.valid, area_mean(ndsm, tile.shape), np.nan).astype(np.float32)


def completed_classes(tile: Tile, classes: np.ndarray) -> np.ndarray:
    """OpenEarthMap ids on the photo's pixels -> (H, W) uint8 ids of the tile's scheme on the analysis
    grid (nearest), 0 where the tile has no data."""
    ids = tile.scheme.openearthmap_lut()[nearest(classes, tile.shape)]
    return np.where(tile.valid, ids, 0).astype(np.uint8)
