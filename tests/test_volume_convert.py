"""Volume scenes (a density volume, as Sat3DGen makes it) through convert / unwrap / bake / export:
overhangs are kept, walls stay vertical and roofs flat, every kind's mesh is closed, the budget
holds, and the GLB is valid and opens in Blender."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers_blender import import_in_blender
from helpers_validate import assert_valid_gltf

from satforge.core.convert import scene_to_meshes
from satforge.core.generators.sat3dgen.scene import volume_scene_parts
from satforge.core.generators.sat3dgen.volume import ISO_LEVEL, Volume
from satforge.core.inputs import InputFiles, load_tile
from satforge.core.presets import load_preset
from satforge.core.progress import Progress
from satforge.core.scene import Scene
from satforge.core.schemes import SurfaceKind
from satforge.exporters import export_scene
from satforge.pipeline import Report, convert_scene

ROOT = Path(__file__).resolve().parent.parent
SIZE = 128 / 457        # metres per voxel: the model's ~0.28 m over the 128 m example tile
GROUND_K, ROOF_K = 39, 90
PILLAR = (slice(200, 240), slice(200, 240))      # a 11 m square pillar ...
SLAB = (slice(170, 270), slice(170, 270))        # ... under a 28 m roof slab: a 8.4 m overhang all round


@pytest.fixture(scope="module")
def tile():
    example = ROOT / "examples/city_block"
    return load_tile(InputFiles(rgb=example / "rgb.tif", semantic=example / "semantic.tif"))


@pytest.fixture(scope="module")
def scene(tile) -> Scene:
    n = 457
    density = np.zeros((n, n, 110), np.float32)
    density[:, :, 8:GROUND_K + 1] = 2 * ISO_LEVEL                 # the ground slab
    density[(*PILLAR, slice(GROUND_K, ROOF_K))] = 2 * ISO_LEVEL   # the pillar ...
    density[(*SLAB, slice(ROOF_K - 6, ROOF_K))] = 2 * ISO_LEVEL   # ... and its roof slab
    colour = np.broadcast_to(np.linspace(0.2, 0.8, 110, dtype=np.float32)[None, None, :, None], (n, n, 110, 3))
    classes = tile.classes.copy()
    rows, cols = tile.shape
    classes[rows // 2 - 70:rows // 2 + 20, cols // 2 - 20:cols // 2 + 70] = 8  # building under the slab
    volume = Volume(density, np.ascontiguousarray(colour), np.ones(density.shape, bool), SIZE, (0.0, 0.0, 0.0))
    voxels, splats = volume_scene_parts(tile, volume, classes)
    return Scene(voxels, splats, tile.georef, tile.scheme.name, "sat3dgen/test", 0, tile.image_gsd, solid="volume")


def _normals(mesh) -> tuple[np.ndarray, np.ndarray]:
    a, b, c = (mesh.vertices[mesh.faces[:, i]].astype(np.float64) for i in range(3))
    n = np.cross(b - a, c - a)
    return n / np.linalg.norm(n, axis=1, keepdims=True), (a + b + c) / 3


def test_every_kind_is_closed_and_the_budget_holds(scene):
    meshes = scene_to_meshes(scene, 20000)
    assert sum(len(m.faces) for m in meshes) <= 20000
    for mesh in meshes:
        edges = np.sort(np.concatenate([mesh.faces[:, [0, 1]], mesh.faces[:, [1, 2]], mesh.faces[:, [2, 0]]]), 1)
        _, counts = np.unique(edges, axis=0, return_counts=True)
        assert (counts == 2).all(), f"{mesh.kind.label} is not closed"


def test_the_overhang_is_kept_with_flat_roof_and_vertical_walls(scene):
    building = next(m for m in scene_to_meshes(scene, 20000) if m.kind == SurfaceKind.BUILDING)
    normal, centre = _normals(building)
    x0, x1 = (-64 + np.array([SLAB[0].start, SLAB[0].stop]) * SIZE)
    under_z = (ROOF_K - 6 - GROUND_K - 1) * SIZE   # the slab's underside above the ground
    overhang = (np.abs(centre[:, 2] - under_z) < 0.3) & (normal[:, 2] < -0.95)
    assert overhang.sum() > 50, "the slab's underside (the overhang) is gone"
    assert (centre[overhang, 0] > x0 - 0.5).all() and (centre[overhang, 0] < x1 + 0.5).all()
    roof = centre[:, 2] > (ROOF_K - GROUND_K - 1) * SIZE - 0.3
    assert np.median(normal[roof & (normal[:, 2] > 0.5), 2]) > 0.99, "the roof is flat"
    pillar = (centre[:, 2] > 2) & (centre[:, 2] < under_z - 2)
    assert pillar.any() and np.percentile(np.abs(normal[pillar, 2]), 90) < 0.1, "the pillar's walls are vertical"


def test_scene_file_keeps_the_volume_flag(scene, tmp_path):
    scene.save(tmp_path / "v.npz")
    assert Scene.load(tmp_path / "v.npz").solid == "volume"


def test_textured_glb_is_valid_and_opens_in_blender(scene, tmp_path):
    textured = convert_scene(scene, load_preset("game"), Report(), Progress("none"))
    assert textured.triangle_count <= 40000
    paths = export_scene(textured, tmp_path, "scene", ["glb"])
    assert_valid_gltf(paths["glb"][0])
    objects = import_in_blender(paths["glb"][0])
    assert any("building" in name for name in objects) and all(o["has_image_texture"] for o in objects.values())
