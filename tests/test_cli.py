"""The command line as users meet it: outputs, report, progress, and one-line errors with exit 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from PIL import Image
from tiles import write_tile

from satforge.cli import main


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _assert_user_error(capsys, out_dir, *argv, mentions: tuple[str, ...]) -> str:
    code, _, err = _run(capsys, "generate", *argv, "--out", out_dir, "--progress", "none")
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in mentions:
        assert word in lines[0], lines[0]
    assert not out_dir.exists() or not any(out_dir.iterdir()), "nothing may be written on a user error"
    return lines[0]


def test_python_m_satforge_writes_every_format_and_a_report(city_files, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "satforge", "generate", "--rgb", city_files["rgb"], "--height",
         city_files["ndsm"], "--semantic", city_files["semantic"], "--formats", "glb,gltf,obj",
         "--progress", "json", "--save-scene", "--out", out],
        capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    progress = [e["progress"] for e in events if e["event"] == "progress"]
    assert progress == sorted(progress) and progress[-1] == 1.0
    for stage in ("mesh", "unwrap", "bake"):  # long stages report from inside, not only their ends
        assert any(0 < e["stage_progress"] < 1 for e in events if e.get("stage") == stage), stage
    assert events[-1]["event"] == "done"
    for name in ("scene.glb", "scene.gltf", "scene.bin", "scene.obj", "scene.mtl", "scene.geo.json",
                 "report.json", "scene.npz"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert set(report["stages"]) == {"read", "generate", "mesh", "unwrap", "bake", "export"}
    assert all(s["seconds"] >= 0 and s["peak_rss_mb"] > 0 for s in report["stages"].values())
    assert report["estimated"]["height"] == "input height raster"
    assert 0 < report["triangles"]["total"] <= 15000
    assert report["texture"]["width"] <= 2048 and report["texture"]["height"] <= 2048
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_saved_scene_converts_in_another_process(city_files, tmp_path, capsys):
    first = tmp_path / "first"
    assert _run(capsys, "generate", "--height", city_files["ndsm"], "--semantic", city_files["semantic"],
                "--save-scene", "--out", first, "--progress", "none")[0] == 0
    code, _, err = _run(capsys, "convert", first / "scene.npz", "--out", tmp_path / "second",
                        "--progress", "none")
    assert code == 0, err
    assert (tmp_path / "second" / "scene.glb").stat().st_size > 1000


def test_no_input_is_a_one_line_error(capsys, tmp_path):
    _assert_user_error(capsys, tmp_path / "o", mentions=("--rgb",))


def test_missing_file(capsys, tmp_path):
    _assert_user_error(capsys, tmp_path / "o", "--rgb", tmp_path / "nope.tif", mentions=("nope.tif",))


def test_corrupt_file(capsys, tmp_path, city_files):
    bad = tmp_path / "cut.tif"
    bad.write_bytes(city_files["rgb"].read_bytes()[:3000])
    _assert_user_error(capsys, tmp_path / "o", "--rgb", bad, mentions=("cut.tif",))


def test_zero_size_file(capsys, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    _assert_user_error(capsys, tmp_path / "o", "--rgb", empty, mentions=("empty.png",))


def test_ids_outside_the_palette_are_named_and_counted(capsys, tmp_path, city_tile):
    sem = city_tile["semantic"].copy()
    sem[:3, :5] = 42
    paths = write_tile(tmp_path / "in", {**city_tile, "semantic": sem})
    line = _assert_user_error(capsys, tmp_path / "o", "--semantic", paths["semantic"],
                              mentions=("semantic.tif", "42", "15"))
    assert "palette" in line


def test_mismatched_extents(capsys, tmp_path, city_tile):
    a = write_tile(tmp_path / "a", city_tile)
    b = write_tile(tmp_path / "b", city_tile, west=500300.0)
    _assert_user_error(capsys, tmp_path / "o", "--rgb", a["rgb"], "--height", b["ndsm"],
                       mentions=("ndsm.tif",))


def test_absurd_gsd(capsys, tmp_path, city_tile):
    png = tmp_path / "photo.png"
    Image.fromarray(city_tile["rgb"]).save(png)
    _assert_user_error(capsys, tmp_path / "o", "--rgb", png, "--gsd", "5000", mentions=("--gsd",))
    _assert_user_error(capsys, tmp_path / "o", "--rgb", png, mentions=("--gsd",))


def test_image_over_the_pixel_budget_is_refused_before_decoding(capsys, tmp_path):
    huge = tmp_path / "huge.tif"
    import rasterio

    # A sparse 20000 x 20000 GeoTIFF: tiny on disk, 400 MP if decoded.
    with rasterio.open(huge, "w", driver="GTiff", width=20000, height=20000, count=3, dtype="uint8",
                       tiled=True, compress="deflate", sparse_ok=True):
        pass
    _assert_user_error(capsys, tmp_path / "o", "--rgb", huge, "--gsd", "0.5", mentions=("huge.tif", "pixel"))


def test_bad_option_values_are_one_line(capsys, tmp_path, city_files):
    _assert_user_error(capsys, tmp_path / "o", "--rgb", city_files["rgb"], "--formats", "fbx",
                       mentions=("--formats",))
    _assert_user_error(capsys, tmp_path / "o", "--rgb", city_files["rgb"], "--preset", "ultra",
                       mentions=("--preset",))
    _assert_user_error(capsys, tmp_path / "o", "--rgb", city_files["rgb"], "--seed", "x",
                       mentions=("seed",))


def test_twin_preset_writes_ext_mesh_features_feature_ids(city_files, tmp_path, capsys):
    from helpers_validate import assert_valid_gltf
    from pygltflib import GLTF2

    out = tmp_path / "twin"
    code, _, err = _run(capsys, "generate", "--rgb", city_files["rgb"], "--height", city_files["ndsm"],
                        "--semantic", city_files["semantic"], "--preset", "twin", "--out", out,
                        "--progress", "none")
    assert code == 0, err
    assert_valid_gltf(out / "scene.glb")
    gltf = GLTF2().load(str(out / "scene.glb"))
    assert "EXT_mesh_features" in gltf.extensionsUsed and not gltf.extensionsRequired
    prim = gltf.meshes[0].primitives[0]
    assert prim.extensions["EXT_mesh_features"]["featureIds"][0]["attribute"] == 0
    assert gltf.asset.extras["georeference"]["crs"] == "EPSG:32633"
    report = json.loads((out / "report.json").read_text())
    assert report["triangles"]["total"] > 100000  # full detail, not the game budget


def test_the_default_generator_never_imports_torch_and_says_it_started_at_once(city_files, tmp_path):
    """The weights-free generator on a CPU runs without torch (seconds of imports, hundreds of MB);
    the first JSON event comes before the heavy imports."""
    script = ("import json, sys, time\nfrom satforge.cli import main\n"
              f"code = main(['generate', '--rgb', {str(city_files['rgb'])!r}, '--out', {str(tmp_path / 'o')!r},"
              " '--progress', 'json'])\nprint(json.dumps({'code': code, 'torch': 'torch' in sys.modules}))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[-1] == {"code": 0, "torch": False}, proc.stderr
    assert events[0]["event"] == "start" and events[0]["command"] == "generate"
    assert events[0]["elapsed"] < 0.1 and events[1]["event"] == "progress"
