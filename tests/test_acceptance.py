"""End to end, measured the way the issue measures it: a 128 m tile at 0.5 m (RGB + nDSM + semantic)
-> GLB/glTF/OBJ, checked by the Khronos validator, Blender, and a top-down view against the inputs."""
from __future__ import annotations

import json

import numpy as np
import pytest
from helpers_blender import import_in_blender
from helpers_validate import assert_valid_gltf
from scipy import ndimage
from tiles import BUILDING
from topdown import coverage, psnr, render_top_view, rmse, texel_density

from satforge.cli import main

GSD, SIZE = 0.5, 256


@pytest.fixture(scope="module")
def result(city_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("acceptance")
    code = main(["generate", "--rgb", str(city_files["rgb"]), "--height", str(city_files["ndsm"]),
                 "--semantic", str(city_files["semantic"]), "--formats", "glb,gltf,obj",
                 "--progress", "none", "--out", str(out)])
    assert code == 0
    view = render_top_view(out / "scene.glb", SIZE * GSD, SIZE * GSD, GSD)
    return out, view


def test_every_gltf_passes_the_khronos_validator(result):
    out, _ = result
    assert_valid_gltf(out / "scene.glb")
    assert_valid_gltf(out / "scene.gltf")


def test_blender_imports_glb_and_obj_with_uvs_and_image_textures(result):
    out, _ = result
    for name in ("scene.glb", "scene.obj"):
        objects = import_in_blender(out / name)
        assert {"terrain", "building", "road"} <= {n.split(".")[0].lower() for n in objects}, objects
        for info in objects.values():
            assert info["uv_layers"] and info["has_image_texture"], (name, info)


def test_seen_from_above_it_covers_the_tile(result):
    assert coverage(result[1]) >= 0.99


def test_seen_from_above_heights_match_the_ndsm(result, city_tile):
    view = result[1]
    assert rmse(view.height, city_tile["ndsm"]) <= 0.75


def test_each_building_roof_height_within_30_cm(result, city_tile):
    view = result[1]
    labels, n = ndimage.label(city_tile["semantic"] == BUILDING)
    index = np.arange(1, n + 1)
    got = ndimage.median(np.nan_to_num(view.height), labels, index)
    want = ndimage.median(city_tile["ndsm"], labels, index)
    assert np.abs(np.asarray(got) - np.asarray(want)).max() <= 0.3


def test_seen_from_above_colours_match_the_orthophoto_unmirrored(result, city_tile):
    view = result[1]
    assert psnr(view.colour, city_tile["rgb"] / 255.0) >= 28.0
    # Mirrored or rotated, the same image scores far lower.
    assert psnr(view.colour[:, ::-1], city_tile["rgb"] / 255.0) < 20.0
    assert psnr(np.rot90(view.colour), city_tile["rgb"] / 255.0) < 20.0


def test_walls_carry_at_least_half_the_roof_texel_density(result):
    density = texel_density(result[0] / "scene.glb")
    assert density["building/wall"] >= 0.5 * density["building/top"], density
    assert density["wall"] >= 0.5 * density["top"], density


def test_game_preset_triangle_budget(result):
    report = json.loads((result[0] / "report.json").read_text())
    assert report["triangles"]["total"] <= 15000
