"""`satforge convert scene.ply`: 3DGS / 2DGS splat files become valid, textured, georeferenced GLBs."""
from __future__ import annotations

import json

import numpy as np
import pytest
from helpers_splats import BOX_H, BOX_X, BOX_Y, COLOURS, GROUND, box_surfaces, write_splat_ply
from helpers_validate import assert_valid_gltf
from topdown import load_glb_meshes, psnr, render_top_view

from satforge.cli import main
from satforge.core.inputs.splat_ply import read_splat_ply

GSD = 0.25


def _convert(capsys, ply, out, *options) -> dict:
    code = main(["convert", str(ply), "--out", str(out), "--progress", "none", *map(str, options)])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    return json.loads((out / "report.json").read_text())


def _expected_top() -> tuple[np.ndarray, np.ndarray]:
    """(colour, height) seen from above on the GSD grid, row 0 north."""
    n = round(GROUND / GSD)
    x = (np.arange(n) + 0.5) * GSD - GROUND / 2
    gx, gy = np.meshgrid(x, -x)
    roof = (np.abs(gx) < BOX_X / 2) & (np.abs(gy) < BOX_Y / 2)
    colour = np.where(roof[..., None], COLOURS["roof"], COLOURS["ground"])
    return colour, np.where(roof, BOX_H, 0.0)


@pytest.mark.parametrize("layout, sh_degree", [("3dgs", 0), ("2dgs", 0), ("3dgs", 3)])
def test_a_splat_block_becomes_a_valid_textured_block(tmp_path, capsys, layout, sh_degree):
    ply = write_splat_ply(tmp_path / "block.ply", layout, sh_degree)
    assert read_splat_ply(ply).sh_degree == sh_degree
    report = _convert(capsys, ply, tmp_path / "out", "--formats", "glb,gltf")
    glb = tmp_path / "out" / "scene.glb"
    assert_valid_gltf(glb)
    assert_valid_gltf(tmp_path / "out" / "scene.gltf")
    assert report["triangles"]["building"] > 0 and report["splats"]["overhangs"]["columns"] == 0
    for name, vertices, *_ in load_glb_meshes(str(glb)):  # glTF y up: every solid reaches under the ground
        assert vertices[:, 1].min() <= -0.5, name  # (an underside on the ground fights with the top)
    view = render_top_view(str(glb), GROUND, GROUND, GSD)
    colour, height = _expected_top()
    inner = np.zeros(height.shape, bool)
    inner[8:-8, 8:-8] = True  # the scene's outermost splats end a little inside its extent
    edges = np.zeros(height.shape, bool)  # the roof outline: a texel either side may blend
    step_ns, step_we = np.abs(np.diff(height, axis=0)) > 0, np.abs(np.diff(height, axis=1)) > 0
    edges[1:-1, 1:-1] = step_ns[1:, 1:-1] | step_we[1:-1, 1:]
    keep = inner & ~ndimage_dilate(edges)
    assert psnr(view.colour, colour, keep) >= 28
    assert np.abs(view.height - height)[keep].max() <= 0.3


def ndimage_dilate(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=2)


def test_walls_carry_the_wall_colours(tmp_path, capsys):
    ply = write_splat_ply(tmp_path / "block.ply", "2dgs")
    _convert(capsys, ply, tmp_path / "out")
    building = next(m for m in load_glb_meshes(str(tmp_path / "out" / "scene.glb")) if m[0].startswith("building"))
    _, vertices, faces, uvs, image = building  # glTF frame: x east, y up, z south
    tri = vertices[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    centre_uv = uvs[faces].mean(1)
    h, w = image.shape[:2]
    texel = image[np.clip((centre_uv[:, 1] * h).astype(int), 0, h - 1),
                  np.clip((centre_uv[:, 0] * w).astype(int), 0, w - 1), :3]  # sRGB in [0, 1]
    mid = (tri[:, :, 1].mean(1) > 1.0) & (tri[:, :, 1].mean(1) < BOX_H - 1.0)
    for face, direction in (("east", (1, 0, 0)), ("west", (-1, 0, 0)), ("north", (0, 0, -1)), ("south", (0, 0, 1))):
        facing = mid & (normal @ np.asarray(direction, float) > 0.9)
        assert facing.any(), face
        assert np.abs(np.median(texel[facing], 0) - COLOURS[face]).max() < 0.08, face


def test_placement_up_axis_scale_georef_and_clip(tmp_path, capsys):
    """A y-up file in centimetres with floaters, placed by --up, --scale, --georef and --clip, gives
    the same block where the georeference says."""
    floaters = np.array([[30.0, 30.0, 25.0], [-35.0, 10.0, 40.0]])
    ply = write_splat_ply(tmp_path / "block.ply", "3dgs", up="+y", units_per_metre=100.0, extra=floaters)
    report = _convert(capsys, ply, tmp_path / "out", "--up", "+y", "--scale", "0.01", "--clip",
                      "--georef", "EPSG:25832:500000,5700000,40")
    assert report["splats"]["clipped"]["isolated"] == 2
    glb = tmp_path / "out" / "scene.glb"
    view = render_top_view(str(glb), GROUND, GROUND, GSD)
    _, height = _expected_top()
    assert np.nanmax(view.height) == pytest.approx(BOX_H, abs=0.3)
    georef = json.loads((tmp_path / "out" / "scene.geo.json").read_text())["properties"]["georeference"]
    assert georef["crs"] == "EPSG:25832" and georef["elevation"] == 40.0
    assert (georef["easting"], georef["northing"]) == pytest.approx((500000.0, 5700000.0), abs=0.2)
    assert np.isfinite(view.height[height > 0]).all()


def _bad(tmp_path, name: str) -> object:
    good = write_splat_ply(tmp_path / "good.ply", "3dgs").read_bytes()
    path = tmp_path / name
    header_end = good.index(b"end_header\n") + len(b"end_header\n")
    if name == "truncated.ply":
        path.write_bytes(good[:header_end + 1000])
    elif name == "ascii.ply":
        write_splat_ply(path, "3dgs", ascii=True)
    elif name == "no_opacity.ply":
        path.write_bytes(good.replace(b"property float opacity\n", b"property float opacitx\n"))
    elif name == "nan.ply":
        data = bytearray(good)
        data[header_end:header_end + 4] = np.float32(np.nan).tobytes()
        path.write_bytes(bytes(data))
    elif name == "empty.ply":
        header = good[:header_end].decode()
        count = header.split("element vertex ")[1].split("\n")[0]
        path.write_bytes(header.replace(f"element vertex {count}", "element vertex 0").encode())
    return path


@pytest.mark.parametrize("name, words", [("truncated.ply", ["truncated"]), ("ascii.ply", ["ascii"]),
                                         ("no_opacity.ply", ["missing", "opacity"]), ("nan.ply", ["non-finite"]),
                                         ("empty.ply", ["no splats"])])
def test_a_bad_splat_file_is_one_line_and_writes_nothing(tmp_path, capsys, name, words):
    path = _bad(tmp_path, name)
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["convert", str(path), "--out", str(tmp_path / "out"), "--progress", "none"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and name in err[0], err
    for word in words:
        assert word in err[0], err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_splat_options_are_refused_for_a_scene_npz(tmp_path, capsys):
    code = main(["convert", str(tmp_path / "scene.npz"), "--up", "+y", "--out", str(tmp_path / "o"),
                 "--progress", "none"])
    assert code == 2 and "--up" in capsys.readouterr().err


def test_structure_a_column_model_cannot_hold_is_reported(tmp_path, capsys):
    """A deck over open ground: the report counts its columns; the mesh keeps the deck on top."""
    ply = write_splat_ply(tmp_path / "bridge.ply", "2dgs", bridge=True)
    report = _convert(capsys, ply, tmp_path / "out")
    overhangs = report["splats"]["overhangs"]
    assert overhangs["columns"] >= 100 and overhangs["kept"] == "the top surface of each column"
    assert set(box_surfaces(bridge=True)) == set(COLOURS)


def test_properties_in_any_order_read_the_same(tmp_path):
    ply = write_splat_ply(tmp_path / "a.ply", "3dgs", sh_degree=1)
    raw = ply.read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    names = [line.split()[2] for line in raw[:end].decode().splitlines() if line.startswith("property")]
    data = np.frombuffer(raw[end:], np.dtype([(n, "<f4") for n in names]))
    shuffled = names[::-1]
    out = np.zeros(len(data), np.dtype([(n, "<f4") for n in shuffled]))
    for n in shuffled:
        out[n] = data[n]
    head = raw[:end].decode().split("property")[0] + "".join(f"property float {n}\n" for n in shuffled) + "end_header\n"
    (tmp_path / "b.ply").write_bytes(head.encode() + out.tobytes())
    a, b = read_splat_ply(ply), read_splat_ply(tmp_path / "b.ply")
    for field in ("position", "frames", "scale", "opacity", "colour", "sh1"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.layout == "3dgs" and a.sh_degree == 1
