"""Sat3DGen end to end on a tiny checkpoint built here: `satforge estimate --generator sat3dgen` writes
the raw volume with its frame, `generate --generator sat3dgen` turns an orthophoto alone into a valid
GLB that opens in Blender, and the scene keeps the model's 3D solids (a volume scene)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers_blender import import_in_blender
from helpers_sat3dgen import save_checkpoint, tiny_sat3dgen
from helpers_validate import assert_valid_gltf
from rasterio.transform import from_origin

from satforge.cli import main
from satforge.core.generators.sat3dgen.model import load_sat3dgen
from satforge.core.generators.sat3dgen.volume import density_grid, planes

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_checkpoint(tiny_sat3dgen(3), tmp_path_factory.mktemp("sat3dgen") / "tiny")


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A 36 m x 36 m GeoTIFF at 0.28 m: one model window, so the test stays small."""
    with rasterio.open(ROOT / "examples/city_block/rgb.tif") as src:
        data, crs = src.read()[:, :128, :128], src.crs
    path = tmp_path_factory.mktemp("photo") / "block.tif"
    with rasterio.open(path, "w", driver="GTiff", width=128, height=128, count=3, dtype="uint8", crs=crs,
                       transform=from_origin(500000.0, 4000000.0, 0.28, 0.28)) as dst:
        dst.write(data)
    return path


def test_estimate_writes_the_volume_and_its_frame(photo, checkpoint, tmp_path):
    out = tmp_path / "vol"
    assert main(["estimate", "--generator", "sat3dgen", "--rgb", str(photo), "--weights", str(checkpoint),
                 "--grid", "40", "--progress", "none", "--out", str(out)]) == 0
    density, colour = np.load(out / "density.npy"), np.load(out / "colour.npy")
    assert density.shape == (40, 40, 40) and colour.shape == (40, 40, 40, 3) and density.dtype == np.float32
    report = json.loads((out / "report.json").read_text())
    assert report["axes"] == ["x east", "y north", "z up"] and report["iso"] == 5.0
    # The image (128 px of 0.28 m) is the model's 256 px input: 0.14 m per model pixel, cube +-22.4 m.
    assert report["bounds_m"][0] == pytest.approx([-22.4, 22.4])
    assert report["voxel_size_m"] == pytest.approx(44.8 / 40)
    model = load_sat3dgen(str(checkpoint), "cpu")
    with rasterio.open(photo) as src:
        pixels = src.read().transpose(1, 2, 0).astype(np.float32)
    expected = density_grid(model, planes(model, pixels), 40, metres_per_pixel=0.14)
    np.testing.assert_allclose(density, expected.density, rtol=1e-5, atol=1e-5)
    assert (density >= 5.0).any() and density.std() > 0.5, "random weights must give a varied volume"


def test_generate_from_an_orthophoto_alone(photo, checkpoint, tmp_path):
    out = tmp_path / "gen"
    assert main(["generate", "--rgb", str(photo), "--generator", "sat3dgen", "--weights", str(checkpoint),
                 "--height-weights", str(tmp_path / "no_such.pth"), "--progress", "none", "--save-scene",
                 "--out", str(out)]) == 2, "RS3DAda weights given explicitly but missing must be an error"
    assert main(["generate", "--rgb", str(photo), "--generator", "sat3dgen", "--weights", str(checkpoint),
                 "--progress", "none", "--save-scene", "--out", str(out)]) == 0
    assert_valid_gltf(out / "scene.glb")
    report = json.loads((out / "report.json").read_text())
    assert report["generator"] == "sat3dgen/1.0" and report["estimated"]["volume"].startswith("Sat3DGen")
    assert report["estimated"]["classes"].startswith("heuristic")  # no semantic map, no RS3DAda weights here
    assert 0 < report["triangles"]["total"] <= 15000
    from satforge.core.scene import Scene

    assert Scene.load(out / "scene.npz").solid == "volume"
    objects = import_in_blender(out / "scene.glb")
    assert objects and all(o["uv_layers"] for o in objects.values())


def test_sat3dgen_without_weights_offline_is_one_line(photo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    out = tmp_path / "never"
    assert main(["generate", "--rgb", str(photo), "--generator", "sat3dgen", "--progress", "none",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "satforge weights fetch sat3dgen" in err and not out.exists()
