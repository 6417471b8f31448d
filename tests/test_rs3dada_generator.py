"""The learned generator end to end, on tiny checkpoints built here: `satforge estimate` writes the
model's rasters on the input's grid, `generate --generator rs3dada` turns an orthophoto alone into a
valid GLB, `world --generator rs3dada` makes seamless, order-independent chunks, and missing weights
are one line, exit 2, nothing written."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers_rs3dada import save_state_dict, tiny_model
from helpers_validate import assert_valid_gltf
from helpers_world import assert_borders_identical
from rasterio.transform import from_origin

from satforge.cli import main
from satforge.core.generators.rs3dada.model import load_rs3dada
from satforge.core.generators.rs3dada.tiled import estimate

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "examples/city_block/rgb.tif"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_state_dict(tiny_model(11), tmp_path_factory.mktemp("weights") / "tiny_rs3dada.pth")


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A non-square, south-up GeoTIFF: the outputs must come back on the file's own grid."""
    with rasterio.open(PHOTO) as src:
        data = src.read()[:, :, :200]
        crs = src.crs
    path = tmp_path_factory.mktemp("photo") / "south_up.tif"
    transform = from_origin(500000.0, 4000000.0 - 256 * 0.5, 0.5, -0.5)  # positive e: row 0 is south
    with rasterio.open(path, "w", driver="GTiff", width=200, height=256, count=3, dtype="uint8", crs=crs,
                       transform=transform) as dst:
        dst.write(data[:, ::-1])
    return path


@pytest.fixture
def offline_empty_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_hub"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty_home"))


def test_estimate_writes_the_models_rasters_on_the_inputs_grid(photo, checkpoint, tmp_path, capsys):
    out = tmp_path / "est"
    assert main(["estimate", "--rgb", str(photo), "--height-weights", str(checkpoint), "--patch", "126",
                 "--stride", "63", "--progress", "json", "--out", str(out)]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[-1]["event"] == "done" and any(e.get("stage") == "estimate" for e in events)
    with rasterio.open(photo) as src:
        pixels = src.read()[:, ::-1].transpose(1, 2, 0)  # north-up, as the model sees the place
        crs, transform = src.crs, src.transform
    ndsm, classes = estimate(pixels.astype(np.float32), load_rs3dada(str(checkpoint)), 126, 63)
    with rasterio.open(out / "ndsm.tif") as a, rasterio.open(out / "classes.tif") as b:
        assert a.crs == crs and b.crs == crs and a.transform == transform and b.transform == transform
        assert a.dtypes[0] == "float32" and b.dtypes[0] == "uint8"
        written_ndsm, written_classes = a.read(1)[::-1], b.read(1)[::-1]
    np.testing.assert_allclose(written_ndsm, ndsm, atol=1e-6)
    assert np.array_equal(written_classes, classes)
    assert written_ndsm.min() >= 0 and written_ndsm.std() > 0.05, "random weights must give varied heights"
    assert set(np.unique(written_classes)) <= set(range(1, 9)) and len(np.unique(written_classes)) > 1
    report = json.loads((out / "report.json").read_text())
    assert report["weights"]["height"] == str(checkpoint) and report["size"] == [200, 256]


def test_estimate_without_weights_offline_is_one_line_and_writes_nothing(photo, tmp_path, capsys,
                                                                         offline_empty_hub):
    out = tmp_path / "never"
    assert main(["estimate", "--rgb", str(photo), "--out", str(out), "--progress", "none"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "satforge weights fetch rs3dada" in err and "--height-weights" in err
    assert not out.exists()


def test_generate_from_an_orthophoto_alone(checkpoint, tmp_path):
    out = tmp_path / "gen"
    assert main(["generate", "--rgb", str(PHOTO), "--generator", "rs3dada", "--height-weights", str(checkpoint),
                 "--progress", "none", "--out", str(out)]) == 0
    assert_valid_gltf(out / "scene.glb")
    report = json.loads((out / "report.json").read_text())
    assert report["generator"] == "rs3dada/1.0"
    assert report["estimated"]["height"] == report["estimated"]["classes"] == f"RS3DAda ({checkpoint.name})"
    assert report["triangles"]["total"] > 1000


def test_a_given_semantic_map_wins_over_the_model(checkpoint, tmp_path):
    out = tmp_path / "gen_sem"
    assert main(["generate", "--rgb", str(PHOTO), "--semantic", str(PHOTO.parent / "semantic.tif"),
                 "--generator", "rs3dada", "--seg-weights", str(checkpoint), "--progress", "none",
                 "--out", str(out)]) == 0
    estimated = json.loads((out / "report.json").read_text())["estimated"]
    assert estimated["classes"] == "input semantic map" and estimated["height"].startswith("RS3DAda")


def test_generate_rs3dada_without_an_orthophoto_is_a_user_error(checkpoint, tmp_path, capsys):
    out = tmp_path / "no_photo"
    assert main(["generate", "--height", str(PHOTO.parent / "ndsm.tif"), "--generator", "rs3dada",
                 "--height-weights", str(checkpoint), "--progress", "none", "--out", str(out)]) == 2
    assert "--rgb" in capsys.readouterr().err and not out.exists()


def test_world_chunks_from_the_model_are_seamless_and_order_independent(checkpoint, tmp_path):
    common = ["--rgb", str(PHOTO), "--generator", "rs3dada", "--height-weights", str(checkpoint),
              "--chunk-size", "64", "--progress", "none"]
    whole, alone = tmp_path / "whole", tmp_path / "alone"
    assert main(["world", "--out", str(whole), "--tiles", "0:1,0:0", *common]) == 0
    assert main(["world", "--out", str(alone), "--tiles", "1:1,0:0", *common]) == 0
    tile = "tiles/0/tile_x1_y0.glb"
    assert (whole / tile).read_bytes() == (alone / tile).read_bytes()
    assert assert_borders_identical(whole, 0) == 1
    manifest = json.loads((whole / "manifest.json").read_text())
    assert manifest["generator"] == "rs3dada/1.0" and manifest["weights"] == {"height": str(checkpoint)}
    assert_valid_gltf(whole / "tiles/0/tile_x0_y0.glb")
    assert main(["world", "--out", str(whole), "--tiles", "2:2,0:0", "--progress", "none"]) == 0  # extends


def test_weights_list_says_what_is_missing(offline_empty_hub, capsys):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "rs3dada-height" in out and "rs3dada-seg" in out and "missing" in out


@pytest.mark.parametrize("damage", ["truncated", "foreign"])
def test_bad_weights_files_are_one_line_exit_2_and_write_nothing(damage, checkpoint, photo, tmp_path, capsys):
    import torch

    bad = tmp_path / "bad.pth"
    if damage == "truncated":
        bad.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    else:
        torch.save({"encoder.weight": torch.zeros(3, 3)}, bad)
    out = tmp_path / "never"
    assert main(["estimate", "--rgb", str(photo), "--height-weights", str(bad), "--progress", "none",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err
    assert ("truncated" in err) if damage == "truncated" else ("pretrained." in err or "encoder.weight" in err)
    assert not out.exists()
