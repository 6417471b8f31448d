"""Every real raster in ../shared/data/real gives a valid, georeferenced asset (or a one-line error),
never a traceback. Skipped with a reason in a plain clone, which has no ../shared."""
from __future__ import annotations

import json
import math

import pygltflib
import pytest
from conftest import real_file
from helpers_validate import assert_valid_gltf

from satforge.cli import main

CASES = {
    "orthophoto only (JPEG GeoTIFF)": ["--rgb", "nl_aerial_rgb_0p25m.tif"],
    "orthophoto with a black no-data border": ["--rgb", "manila_ortho_rgb_0p1m.tif"],
    "nDSM only": ["--height", "alexandria_ndsm_2m.tif"],
    "DSM + DTM": ["--height", "alexandria_dsm_2m.tif", "--dtm", "alexandria_dtm_2m.tif"],
    "4-band RGB + near-infrared": ["--rgb", "naip_milwaukee_rgbn_0p6m.tif"],
    "terrain DEM in degrees": ["--height", "texas_dem_90m.tif"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_real_raster_gives_a_valid_georeferenced_asset(case, tmp_path, capsys):
    argv = [str(real_file(a)) if a.endswith(".tif") else a for a in CASES[case]]
    code = main(["generate", *argv, "--out", str(tmp_path), "--progress", "none"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert_valid_gltf(tmp_path / "scene.glb")
    geo = json.loads((tmp_path / "scene.geo.json").read_text())["properties"]["georeference"]
    assert geo["crs"] and geo["crs"].startswith("EPSG:")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["triangles"]["total"] > 100


WORLD_CASES = {
    "DSM + DTM (metres)": (["--height", "alexandria_dsm_2m.tif", "--dtm", "alexandria_dtm_2m.tif"], "EPSG:26918"),
    "terrain DEM in degrees": (["--height", "texas_dem_90m.tif"], "EPSG:4326"),
}


@pytest.mark.parametrize("case", sorted(WORLD_CASES))
def test_world_over_a_real_raster_is_seamless_at_its_edge(case, tmp_path):
    """A chunk inside the raster's south-west corner and its neighbour outside it: one terrain at the
    border, valid files, the world origin at the raster's corner in its CRS."""
    from helpers_world import assert_borders_identical

    args, crs = WORLD_CASES[case]
    argv = [str(real_file(a)) if a.endswith(".tif") else a for a in args]
    out = tmp_path / "w"
    assert main(["world", "--out", str(out), "--tiles", "-1:0,0:0", *argv, "--progress", "none"]) == 0
    assert assert_borders_identical(out, 0) == 1
    for path in sorted(out.glob("tiles/0/*.glb")):
        assert_valid_gltf(path)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["crs"] == crs and manifest["inputs"]["heights"] in ("dsm-dtm", "terrain")
    # The chunk's centre in the CRS: 64 m east and north of the origin, in the CRS's own units.
    geo = pygltflib.GLTF2.load(str(out / "tiles/0/tile_x0_y0.glb")).asset.extras["georeference"]
    assert geo["crs_units"] == manifest["crs_units"]
    cos_lat = math.cos(math.radians(manifest["northing"]))
    metres_per_unit = (1.0, 1.0) if geo["crs_units"] == "metre" else (111_320.0 * cos_lat, 110_540.0)
    assert (geo["easting"] - manifest["easting"]) * metres_per_unit[0] == pytest.approx(64, rel=0.03)
    assert (geo["northing"] - manifest["northing"]) * metres_per_unit[1] == pytest.approx(64, rel=0.03)
