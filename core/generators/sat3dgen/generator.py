"""The ``sat3dgen`` generator: Sat3DGen's density volume of the place, from the orthophoto alone,
becomes the scene: its occupied cells' shells (``solid == "volume"``: the converter keeps
overhangs) and surfels (the photo on top, the volume's colour on walls).

The photo is resampled to the model's 0.28 m per pixel over the tile and run through upstream's
sliding window (``volume.window_volume``). Land cover (which solids are buildings, trees, road...)
comes from ``--semantic``; else from RS3DAda when its weights are at hand (given, or in the hub
cache); else from the colour heuristic, with the volume's own heights as the nDSM.
"""
from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from ...errors import InputError
from ...landcover import classify, photo_on_grid
from ...scene import Scene
from ...tile import Tile
from ..base import GenerateSettings, ProgressFn, chunk_threads, resolve_device
from .scene import heights_above_ground, volume_scene_parts
from .volume import MODEL_METRES_PER_PIXEL, Volume


class Sat3DGenGenerator:
    name = "sat3dgen"
    version = "1.0"
    neighbours = ()     # every chunk stands alone: the model sees the chunk's window
    chunk_safe = True   # deterministic on CPU, a function of the window's pixels
    photo_context = True  # the model sees the whole window, its surroundings included

    def generate(self, tile: Tile, settings: GenerateSettings, progress: ProgressFn) -> Scene:
        if tile.rgb is None:
            raise InputError("--rgb", "the sat3dgen generator builds the place from an orthophoto and none was "
                             "given", "pass --rgb, or use --generator default")
        from .volume import window_volume

        device = resolve_device(settings.device)
        model = _model(settings.weights.get("volume"), device)
        photo, metres = model_photo(tile)
        with chunk_threads(settings):
            volume = window_volume(model, photo, lambda f, m: progress(0.7 * f, m), metres_per_pixel=metres)
        progress(0.7, "land cover")
        classes, source = _classes(tile, volume, settings)
        progress(0.8, "voxels and surfels")
        voxels, splats = volume_scene_parts(tile, volume, classes)
        provenance = {"device": device, "volume": f"Sat3DGen ({_model_name(settings)})", "classes": source,
                      "colour": "input orthophoto from above, Sat3DGen colour on walls and undersides"}
        return Scene(voxels=voxels, splats=splats, georef=tile.georef, scheme=tile.scheme.name,
                     generator=f"{self.name}/{self.version}", seed=settings.seed,
                     image_gsd=tile.georef.width_m / tile.image_valid.shape[1], provenance=provenance, solid="volume")


def model_photo(tile: Tile) -> tuple[np.ndarray, float]:
    """(the orthophoto over the tile at the model's ~0.28 m per pixel, (H, W, 3) float32 in 0-255
    units; the exact metres per pixel), as the model was trained to see it. The whole image goes in,
    no-data included (a world window's photo carries the surroundings the model needs for context)."""
    width = max(1, round(tile.georef.width_m / MODEL_METRES_PER_PIXEL))
    height = max(1, round(tile.georef.height_m / MODEL_METRES_PER_PIXEL))
    photo = tile.rgb * 255

    def resized(channel: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(channel.astype(np.float32), mode="F").resize((width, height),
                                                                                        Image.BICUBIC))

    out = np.stack([resized(photo[..., c]) for c in range(3)], -1)
    return np.clip(out, 0, 255).astype(np.float32), tile.georef.width_m / width


def _classes(tile: Tile, volume: Volume, settings: GenerateSettings) -> tuple[np.ndarray, str]:
    """(class ids on the analysis grid, where they came from)."""
    if tile.classes is not None:
        return tile.classes, "input semantic map"
    estimated = _rs3dada_classes(tile, settings)
    if estimated is not None:
        return estimated
    from ...inputs.resample import nearest

    rgb, nir = photo_on_grid(tile)
    ndsm = nearest(heights_above_ground(volume), tile.shape)
    ids = classify(tile.scheme, rgb, nir, ndsm, tile.gsd ** 2)
    return np.where(tile.valid, ids, 0).astype(np.uint8), \
        "heuristic: colour classification with the volume's heights (core/landcover/classify.py)"


def _rs3dada_classes(tile: Tile, settings: GenerateSettings) -> tuple[np.ndarray, str] | None:
    """RS3DAda's land cover when its weights are given or in the hub cache; None when they are not
    here (weights given explicitly but broken are still an error)."""
    from ..rs3dada.generator import RS3DAdaGenerator, completed_classes

    given = any(settings.weights.get(role) for role in ("height", "classes"))
    photo = np.where(tile.image_valid[..., None], tile.rgb, np.nan)
    try:
        found = RS3DAdaGenerator().estimate(photo, False, True, settings, lambda *_: None)
    except InputError:
        if given:
            raise
        return None
    return completed_classes(tile, found.classes), found.sources["classes"]


@functools.lru_cache(maxsize=1)
def _model(src: str | None, device: str):
    """Loaded once per process: a world's chunks all use the same network."""
    from .model import load_sat3dgen

    return load_sat3dgen(src, device)


def _model_name(settings: GenerateSettings) -> str:
    return settings.weights.get("volume") or "registered weights"
