"""The default generator: geometry follows the inputs, priors and heuristics are used and labelled
when inputs are missing, walls get facades, and the same seed gives the same scene."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from tiles import BUILDING, TREE

from satforge.core.generators import GenerateSettings, get_generator
from satforge.core.georef import Georeference
from satforge.core.scene import Scene
from satforge.core.schemes import OPENEARTHMAP, SurfaceKind
from satforge.core.tile import Tile

GSD = 0.5


def _tile(city, rgb=True, height=True, semantic=True) -> Tile:
    n = city["semantic"].shape[0]
    geo = Georeference("EPSG:32633", 500000.0, 5000000.0, 0.0, n * GSD, n * GSD, GSD)
    return Tile("t", geo, OPENEARTHMAP, np.ones((n, n), bool),
                height=city["ndsm"] if height else None,
                classes=city["semantic"] if semantic else None,
                rgb=city["rgb"] / 255.0 if rgb else None,
                image_valid=np.ones((n, n), bool) if rgb else None, image_gsd=GSD if rgb else 0.0)


def _generate(tile: Tile, seed: int = 0) -> Scene:
    return get_generator("default").generate(tile, GenerateSettings(seed=seed, device="cpu"), lambda f, m: None)


@pytest.fixture(scope="module")
def scene(city_tile) -> Scene:
    return _generate(_tile(city_tile))


def _up_splats(scene: Scene, kind: SurfaceKind):
    s = scene.splats
    normal_z = s.frames()[:, 2, 2]
    sel = (s.kind == kind) & (normal_z > 0.5)
    return s.position[sel]


def _cells(pos: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    col = np.clip(((pos[:, 0] + n * GSD / 2) / GSD).astype(int), 0, n - 1)
    row = np.clip(((n * GSD / 2 - pos[:, 1]) / GSD).astype(int), 0, n - 1)
    return row, col


def test_roof_surfels_follow_the_height_raster(scene, city_tile):
    pos = _up_splats(scene, SurfaceKind.BUILDING)
    row, col = _cells(pos, 256)
    assert np.all(city_tile["semantic"][row, col] == BUILDING)
    assert np.abs(pos[:, 2] - city_tile["ndsm"][row, col]).max() < 1e-4


def test_one_top_surfel_per_orthophoto_pixel_with_its_colour(scene, city_tile):
    s = scene.splats
    up = s.frames()[:, 2, 2] > 0.01  # walls are exactly vertical; steep tree flanks still face up
    assert up.sum() == 256 * 256
    row, col = _cells(s.position[up], 256)
    assert np.allclose(s.colour[up], city_tile["rgb"][row, col] / 255.0, atol=1e-6)


def test_walls_get_synthesized_facades_not_roof_pixels(scene):
    s = scene.splats
    wall = (s.kind == SurfaceKind.BUILDING) & (np.abs(s.frames()[:, 2, 2]) < 1e-3)
    assert wall.sum() > 10000
    colours = s.colour[wall]
    # Windows are dark glass, walls are lighter: a facade has both.
    dark = colours.mean(1) < 0.25
    assert 0.05 < dark.mean() < 0.6
    # Wall surfels reach from the ground to the roof line.
    assert s.position[wall][:, 2].min() < 0.5


def test_trees_are_rounded_canopies_above_the_ground(scene, city_tile):
    vox = scene.voxels
    veg = vox.kind == SurfaceKind.VEGETATION
    z = vox.origin[2] + vox.coords[veg, 2] * vox.size
    assert z.min() > 0.2  # the canopy floats on its trunk height, not a prism from the ground
    pos = _up_splats(scene, SurfaceKind.VEGETATION)
    row, col = _cells(pos, 256)
    assert np.all(city_tile["semantic"][row, col] == TREE)


def test_same_seed_same_scene_different_seed_different_priors(city_tile, tmp_path):
    tile = _tile(city_tile, height=False)
    a, b, c = _generate(tile, 5), _generate(tile, 5), _generate(tile, 6)
    a.save(tmp_path / "a.npz"), b.save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    assert not np.array_equal(a.splats.position, c.splats.position)


def test_priors_give_one_height_per_building_and_are_labelled(city_tile):
    scene = _generate(_tile(city_tile, height=False))
    assert scene.provenance["height"].startswith("prior")
    pos = _up_splats(scene, SurfaceKind.BUILDING)
    row, col = _cells(pos, 256)
    labels, n = ndimage.label(city_tile["semantic"] == BUILDING)
    for lab in range(1, n + 1):
        heights = pos[labels[row, col] == lab, 2]
        assert np.ptp(heights) < 1e-5 and 3.0 <= heights[0] <= 25


def test_orthophoto_only_uses_a_labelled_colour_heuristic(city_tile):
    scene = _generate(_tile(city_tile, height=False, semantic=False))
    assert scene.provenance["classes"].startswith("heuristic")
    kinds = set(np.unique(scene.splats.kind))
    assert {SurfaceKind.TERRAIN, SurfaceKind.ROAD, SurfaceKind.VEGETATION} <= kinds


def test_height_only_tile_gets_synthesized_colour(city_tile):
    scene = _generate(_tile(city_tile, rgb=False, semantic=False))
    assert scene.provenance["colour"] == "synthesized per kind"
    assert SurfaceKind.BUILDING in set(np.unique(scene.splats.kind))


def test_scene_file_round_trip(scene, tmp_path):
    scene.save(tmp_path / "s.npz")
    back = Scene.load(tmp_path / "s.npz")
    assert np.array_equal(back.voxels.coords, scene.voxels.coords)
    assert np.array_equal(back.splats.rotation, scene.splats.rotation)
    assert back.georef == scene.georef and back.image_gsd == scene.image_gsd


def test_shell_voxels_hold_each_columns_top_and_bottom(scene, city_tile):
    vox = scene.voxels
    b = vox.kind == SurfaceKind.BUILDING
    top = np.zeros((256, 256), int)
    np.maximum.at(top, (255 - vox.coords[b, 1], vox.coords[b, 0]), vox.coords[b, 2] + 1)
    roof = vox.origin[2] + top * vox.size
    mask = city_tile["semantic"] == BUILDING
    # The top voxel contains the roof height.
    assert np.all(roof[mask] >= city_tile["ndsm"][mask] - 1e-4)
    assert np.all(roof[mask] - vox.size <= city_tile["ndsm"][mask] + 1e-4)
