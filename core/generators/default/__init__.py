"""The built-in generator: no weights, deterministic, numpy on the CPU (no torch: its work is
array bookkeeping and elementwise maths, which a GPU would not speed up).

Geometry follows the height raster when there is one (buildings: sharp prisms whose roofs follow
the roof pixels; trees: rounded canopies; roads and water: flat; terrain: the DTM), else seeded
priors (priors.py); land cover comes from the semantic map, else from a colour heuristic
(classify.py). Appearance: the orthophoto at full resolution as surfels on roofs and ground, and
synthesized facades on walls (facade.py).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from ...arrays import to_u8
from ...landcover import building_heights, classify, first_cells, hash_uniform, photo_on_grid, tree_heights, value_noise
from ...scene import Scene, Splats
from ...schemes import SurfaceKind
from ...tile import Tile
from ..base import GenerateSettings, ProgressFn
from .facade import facade_base
from .layers import ColumnLayer, build_layers, top_layer_index
from .surfels import Buildings, TopSurface, top_surfels, wall_surfels
from .voxelize import shell_voxels

# Albedo of each kind when the tile has no orthophoto (sRGB).
KIND_COLOURS = {SurfaceKind.TERRAIN: (0.46, 0.49, 0.33), SurfaceKind.ROAD: (0.36, 0.36, 0.37),
                SurfaceKind.BUILDING: (0.58, 0.45, 0.40), SurfaceKind.VEGETATION: (0.22, 0.36, 0.17),
                SurfaceKind.WATER: (0.17, 0.29, 0.40), SurfaceKind.OTHER: (0.50, 0.50, 0.48)}


class DefaultGenerator:
    name = "default"
    version = "1.0"
    neighbours = ()  # every chunk stands alone
    chunk_safe = True
    photo_context = False  # surfels only where the image is valid

    def generate(self, tile: Tile, settings: GenerateSettings, progress: ProgressFn) -> Scene:
        seed = settings.seed
        provenance = {"device": "cpu"}
        rgb, nir = photo_on_grid(tile)
        ground = _fill_nan(tile.ground) if tile.ground is not None else np.zeros(tile.shape, np.float32)
        provenance["ground"] = "input DTM" if tile.ground is not None else "flat"
        ndsm = np.nan_to_num(tile.height, nan=0.0) if tile.height is not None else None
        classes = tile.classes
        provenance["classes"] = "input semantic map"
        if classes is None:
            classes = classify(tile.scheme, rgb, nir, ndsm, tile.gsd ** 2)
            provenance["classes"] = "heuristic: " + ("colour" if rgb is not None else "height") + \
                " classification (core/landcover/classify.py)"
        kinds = tile.scheme.kind_lut()[classes]
        if ndsm is None:
            ndsm = building_heights(kinds == SurfaceKind.BUILDING, tile.gsd, seed) + \
                tree_heights(kinds == SurfaceKind.VEGETATION, tile.gsd, seed)
            provenance["height"] = "prior (core/landcover/priors.py)"
        else:
            provenance["height"] = "input height raster"
        progress(0.3, "layers")
        layers = build_layers(kinds, classes, tile.valid, ground, ndsm.astype(np.float32))
        top = _top_surface(layers, tile.gsd)
        colour = rgb if rgb is not None else _synth_colours(top.kind, tile.gsd, seed)
        provenance["colour"] = "input orthophoto" if tile.rgb is not None else "synthesized per kind"
        building = next((la for la in layers if la.kind == SurfaceKind.BUILDING), None)
        buildings = _buildings(building, colour, seed, tile.shape)
        progress(0.5, "voxels")
        side = buildings.base[buildings.labels]
        voxels = shell_voxels(layers, tile.gsd, to_u8(colour), to_u8(np.where(buildings.labels[..., None] > 0,
                                                                          side, colour * 0.8)), top.normal,
                              lambda done: progress(0.5 + 0.2 * done, "voxels"))
        progress(0.7, "surfels")
        image, image_valid = (tile.rgb, tile.image_valid) if tile.rgb is not None else (colour, tile.valid)
        # Roof and ground surfels are as fine as the orthophoto; facade surfels twice as fine, since
        # the atlas has ~2 texels per image pixel and windows should stay crisp at that density.
        spacing = tile.georef.width_m / image_valid.shape[1]
        parts = [top_surfels(top, image, image_valid)]
        if building is not None:
            progress(0.8, "facade surfels")
            parts.append(wall_surfels(building.top, building.bottom, ground, top, buildings,
                                      tile.scheme.class_for_kind(SurfaceKind.BUILDING), spacing / 2, seed,
                                      lambda done: progress(0.8 + 0.2 * done, "facade surfels")))
        progress(1.0, "scene")
        return Scene(voxels=voxels, splats=Splats.concat(parts), georef=tile.georef, scheme=tile.scheme.name,
                     generator=f"{self.name}/{self.version}", seed=seed,
                     image_gsd=spacing, provenance=provenance)


def _fill_nan(values: np.ndarray) -> np.ndarray:
    """NaNs replaced by the nearest valid value (no-data inside a DTM)."""
    nan = np.isnan(values)
    if not nan.any():
        return values.astype(np.float32)
    if nan.all():
        return np.zeros(values.shape, np.float32)
    idx = ndimage.distance_transform_edt(nan, return_distances=False, return_indices=True)
    return values[tuple(idx)].astype(np.float32)


def _top_surface(layers: list[ColumnLayer], gsd: float) -> TopSurface:
    idx = top_layer_index(layers)
    z = np.full(idx.shape, -np.inf, np.float32)
    kind = np.zeros(idx.shape, np.uint8)
    cls = np.zeros(idx.shape, np.uint8)
    for i, layer in enumerate(layers):
        sel = idx == i
        z[sel], kind[sel], cls[sel] = layer.top[sel], int(layer.kind), layer.class_id[sel]
    return TopSurface(z=z, kind=kind, class_id=cls, normal=_normals(z, idx, gsd), gsd=gsd)


def _slope(z: np.ndarray, idx: np.ndarray, axis: int, gsd: float) -> np.ndarray:
    """dz along +axis direction using only neighbours of the same top layer (edges stay sharp)."""
    zp = np.pad(z, 1, mode="edge")
    ip = np.pad(idx, 1, constant_values=-2)
    sl = lambda o: (slice(1 + o, zp.shape[0] - 1 + o), slice(1, -1)) if axis == 0 else \
        (slice(1, -1), slice(1 + o, zp.shape[1] - 1 + o))
    same_p, same_m = ip[sl(1)] == idx, ip[sl(-1)] == idx
    zpl, zmi = np.where(same_p, zp[sl(1)], z), np.where(same_m, zp[sl(-1)], z)
    span = (same_p.astype(np.float32) + same_m) * gsd
    return np.where(span > 0, (zpl - zmi) / np.maximum(span, 1e-9), 0.0)


def _normals(z: np.ndarray, idx: np.ndarray, gsd: float) -> np.ndarray:
    zf = np.where(np.isfinite(z), z, 0.0)
    dzdx = _slope(zf, idx, 1, gsd)
    dzdy = -_slope(zf, idx, 0, gsd)  # rows run south, y runs north
    n = np.stack([-dzdx, -dzdy, np.ones_like(zf)], -1)
    return (n / np.linalg.norm(n, axis=-1, keepdims=True)).astype(np.float32)


def _synth_colours(kind: np.ndarray, gsd: float, seed: int) -> np.ndarray:
    h, w = kind.shape
    lut = np.zeros((256, 3), np.float32)
    for k, rgb in KIND_COLOURS.items():
        lut[int(k)] = rgb
    y, x = np.mgrid[0:h, 0:w] * gsd
    shade = 0.85 + 0.3 * value_noise(seed, x, y, 4.0)
    return np.clip(lut[kind] * shade[..., None], 0, 1).astype(np.float32)


def _buildings(layer: ColumnLayer | None, colour: np.ndarray, seed: int, shape) -> Buildings:
    if layer is None:
        return Buildings(np.zeros(shape, np.int32), np.zeros((1, 3), np.float32), np.ones(1, np.float32))
    labels, n = ndimage.label(layer.mask)
    index = np.arange(1, n + 1)
    roof = np.stack([ndimage.mean(colour[..., i], labels, index) for i in range(3)], -1).reshape(n, 3)
    key = first_cells(labels, n)
    base = np.concatenate([np.zeros((1, 3)), facade_base(roof, key, seed)]).astype(np.float32)
    bay = np.concatenate([[1.0], 2.4 + 1.2 * hash_uniform(seed, 5, key)]).astype(np.float32)
    return Buildings(labels.astype(np.int32), base, bay)
