"""`satforge world` over input rasters: the inputs inside their area, read window by window, the
procedural world beyond them with their statistics, and seamless, order-independent chunks."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import real_file
from helpers_validate import assert_valid_gltf
from helpers_world import assert_borders_identical, seam_contrast, tiles, top_view
from scipy import ndimage
from tiles import BUILDING, RANGELAND, TREE, write_tile
from topdown import psnr

from satforge.cli import main
from satforge.world.hlod import read_glb
from satforge.world.layout import WorldSpec
from satforge.world.surface import Grid, Soup, heights
from satforge.world.view import open_view

S, LODS, GSD = 64, 2, 0.5
RANGE = "-1:2,-1:2"   # the 128 m input covers chunks 0..1 x 0..1; a ring of hand-over chunks around it
ARGS = ["--chunk-size", str(S), "--lods", str(LODS), "--seed", "5", "--progress", "none"]


def _inputs(files: dict[str, Path]) -> list[str]:
    return ["--rgb", str(files["rgb"]), "--height", str(files["ndsm"]), "--semantic", str(files["semantic"])]


@pytest.fixture(scope="module")
def world(city_files, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("input_world") / "w"
    assert main(["world", "--out", str(out), "--tiles", RANGE, "--workers", "2", *_inputs(city_files), *ARGS]) == 0
    return out


@pytest.mark.parametrize("lod", range(LODS))
def test_borders_are_bit_identical_at_every_lod(world, lod):
    assert assert_borders_identical(world, lod) == 24


def test_every_chunk_is_valid(world):
    for path in sorted(world.glob("tiles/0/*.glb")):
        assert_valid_gltf(path)


def test_inside_its_area_the_world_is_the_input(world, city_tile):
    view, _ = top_view(world, 0, GSD, [(0, 0), (1, 0), (0, 1), (1, 1)])
    photo = city_tile["rgb"].astype(np.float32) / 255
    assert view.mask.all()
    assert psnr(view.colour, photo) > 28
    roofs = city_tile["semantic"] == BUILDING
    error = np.abs(view.height - city_tile["ndsm"])[roofs]
    assert np.median(error) < 0.1 and np.mean(error < 0.5) > 0.95


def test_colour_is_continuous_across_borders(world, city_tile):
    """Inside the input, a border shows what the photo shows there; beyond it, no border is
    stronger than the contrast between adjacent ground pixels inside a chunk."""
    view, _ = top_view(world, 0, GSD, [(0, 0), (1, 0), (0, 1), (1, 1)])
    photo = city_tile["rgb"].astype(np.float32) / 255
    border = S / GSD
    for axis in (0, 1):
        seen = np.abs(np.diff(view.colour, axis=axis)).take(border - 1, axis=axis).mean()
        truth = np.abs(np.diff(photo, axis=axis)).take(border - 1, axis=axis).mean()
        assert seen <= truth + 0.01
    view, _ = top_view(world, 0, 0.25, [(x, -1) for x in range(-1, 3)])
    across, inside = seam_contrast(view, S, 0.25)
    # The roads that the input's edge cuts go on south of it, and two of their sides lie on chunk
    # borders (x = 0 and 64): there the world itself changes colour.
    assert across <= max(inside, _world_contrast(world, [0.0, 64.0, 128.0], (-S, 0.0))) + 0.01


def _world_contrast(world: Path, borders: list[float], ys: tuple[float, float], gsd: float = 0.25) -> float:
    """The mean ground-colour difference the world function has between points gsd / 2 either
    side of vertical lines x = ``borders``, from y = ys[0] to ys[1]."""
    spec = WorldSpec.from_header(json.loads((world / "manifest.json").read_text()))
    y = np.arange(ys[0] + gsd / 2, ys[1], gsd)
    diffs = []
    for x in borders:
        chunk_y = int(np.floor(ys[0] / spec.chunk_size))
        west = open_view(spec, int(np.floor(x / spec.chunk_size)) - 1, chunk_y).ground_colour(x - gsd / 2 + 0 * y, y)
        east = open_view(spec, int(np.floor(x / spec.chunk_size)), chunk_y).ground_colour(x + gsd / 2 + 0 * y, y)
        diffs.append(np.abs(west - east).mean(-1))
    return float(np.concatenate(diffs).mean())


def test_what_the_edge_cuts_goes_on_beyond_it(world, city_tile):
    """Roads that cross the input's edge go on beyond it at full width up to the procedural street
    they meet (here an E-W street 48 to 55 m out), and no further; a road along the edge is not
    doubled; a tree the edge cuts goes on past it as a whole crown that ends within 20 m, and no
    procedural object stands on a continued road."""
    spec = WorldSpec.from_header(json.loads((world / "manifest.json").read_text()))
    road = 4  # the tile's road class (OpenEarthMap); N-S roads at x = 0..8 and 64..72 m cross its south edge
    south, far_south = open_view(spec, 0, -1), open_view(spec, 0, -2)
    ys = -np.arange(0.25, 48.0, 0.5)
    for x in (1.25, 6.75, 65.25, 70.75):
        assert (south.ground_class(np.full_like(ys, x), ys) == road).all()
        assert south.ground_class(np.array([x] * 3), np.array([-50.0, -54.0, -60.0])).tolist() == [road, road, 3]
        assert far_south.ground_class(np.array([x]), np.array([-100.0]))[0] != road
    beside = south.ground_class(np.full_like(ys, 12.25), ys)
    assert (beside != road).mean() > 0.8  # the procedural street grid crosses it too
    # The E-W road along the north edge (y = 120..128 m) stays 8 m wide (x = 41..48 m: a procedural street).
    north = open_view(spec, 0, 2)
    assert (north.ground_class(np.arange(10.25, 40, 0.5), np.full(60, 131.0)) != road).all()

    rows = np.flatnonzero(city_tile["semantic"][:, -1] == TREE)  # a crown cut by the east edge
    view, _ = top_view(world, 0, GSD, [(1, y) for y in range(0, 2)] + [(2, y) for y in range(0, 2)])
    inside, beyond, far = (view.height[rows, round((x - S) / GSD)] for x in (127.75, 128.25, 148.25))
    assert np.median(inside) > 2 and np.median(beyond) > 2
    assert np.nanmax(far) < 1.0

    south_tile, cells = south.object_tile().tile, south.window.centres()
    continued = (south.ground_class(*cells) == road) & (np.abs(cells[0] - 4) < 4) & (cells[1] > -48)
    assert continued.sum() > 1000 and (south_tile.height[continued] == 0).all()


def test_cut_objects_meet_at_chunk_borders(tmp_path):
    """On the real NL orthophoto alone, seen from above, the top surfaces 2 cm either side of the
    border between two chunks agree within 0.3 m: a roof or canopy the border cuts goes on, at the
    same height, in the chunk beyond, and ends where it ends there, after both chunks simplified it
    to the lean preset's budget."""
    out = tmp_path / "w"
    assert main(["world", "--out", str(out), "--tiles", "0:0,0:1", "--rgb", str(real_file("nl_aerial_rgb_0p25m.tif")),
                 "--workers", "2", "--progress", "none", "--preset", "game"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    size, parts = manifest["chunk_size"], []
    for entry in manifest["chunks"].values():
        meshes, atlas = read_glb((out / entry["files"][0]["path"]).read_bytes())
        parts.append((meshes, atlas, ((entry["x"] + 0.5) * size, (entry["y"] + 0.5) * size)))
    # The border y = size, from x = 0 to size: its south side, then its north side.
    tops = heights(Soup.of(parts).xyz, Grid(west=0.0, north=size + 0.04, dx=0.25, dy=0.04, cols=round(size / 0.25),
                                            rows=2))
    assert (np.maximum(tops[0], tops[1]) > 2).mean() > 0.2  # it cuts canopies and roofs
    assert np.mean(np.abs(tops[0] - tops[1]) > 0.3) < 0.005


def test_ground_eases_into_the_procedural_world(world):
    """The terrain seen from above along a line across the input's west and east edges: flat (the
    nDSM's ground) inside, no step anywhere, relief further out."""
    view, _ = top_view(world, 0, 1.0, [(x, 0) for x in range(-1, 3)], only="terrain")
    zs = view.height[S // 2]  # the row at y = 32 m, x from -64 to 192 m
    xs = np.arange(len(zs)) - S + 0.5
    assert np.isfinite(zs).all()
    inside = (xs >= 0) & (xs <= 128)
    assert np.abs(zs[inside]).max() < 1e-3
    assert np.abs(np.diff(zs)).max() < 0.5, "no step: at most 0.5 m per metre"
    assert np.ptp(zs[xs < -40]) > 0.1 or np.ptp(zs[xs > 168]) > 0.1, "relief beyond the hand-over"


def test_a_river_the_edge_cuts_flows_on_level(city_tile, tmp_path):
    """A river crossing the input's east edge goes on beyond it at the edge's level, where the
    procedural relief eased in around it is not level; its banks rise without a step. It goes on
    straight out at the width it crosses with and ends round 96 m out; a paved yard (too wide for a
    road) and a path (too narrow) that reach the edge do not go on."""
    from tiles import ROAD, WATER, write_tile

    from satforge.core.inputs import InputFiles
    from satforge.world.run import world_settings

    tile = {k: v.copy() for k, v in city_tile.items()}
    river = slice(100, 120)  # rows: y from 68 to 78 m, x from 60 m to the east edge at 128 m
    tile["semantic"][river, 120:], tile["ndsm"][river, 120:], tile["rgb"][river, 120:] = WATER, 0, (30, 56, 84)
    for rows, west in ((slice(148, 152), 120), (slice(160, 240), 180)):  # a 2 m path (y 52-54), a 40 m yard (y 8-48)
        tile["semantic"][rows, west:], tile["ndsm"][rows, west:], tile["rgb"][rows, west:] = ROAD, 0, (90, 90, 92)
    paths = write_tile(tmp_path / "in", tile, gsd=GSD)
    spec, _ = world_settings(tmp_path / "w", InputFiles(rgb=paths["rgb"], height=paths["ndsm"],
                                                        semantic=paths["semantic"]), {"chunk_size": 64.0, "seed": 5})
    view = open_view(spec, 2, 1)  # x from 128 to 192 m, y from 64 to 128 m
    xs = np.arange(130.0, 190.0, 0.5)
    on_river = view.ground(xs, np.full_like(xs, 73.0))
    assert (view.ground_class(xs, np.full_like(xs, 73.0)) == WATER).all()
    assert np.abs(on_river - view.ground(np.array([127.0]), np.array([73.0]))).max() < 1e-6
    relief = view.world.ground(xs, np.full_like(xs, 73.0))
    assert np.ptp(relief[xs > 170]) > 0.1, "the relief there is not level: the river was levelled"
    ys = np.arange(64.0, 128.0, 0.25)
    across = view.ground(np.full_like(ys, 185.0), ys)
    assert np.abs(np.diff(across)).max() < 0.25, "banks rise without a step"

    end = open_view(spec, 3, 1)  # x from 192 m: the river's end, 96 m out at its middle
    centre, side = np.full(4, 73.0), np.full(4, 68.25)
    assert (end.ground_class(np.array([210.0, 218.0, 221.0, 223.0]), centre) == WATER).all()
    assert (end.ground_class(np.array([210.0, 216.0, 218.0, 219.0]), side) == WATER).all()
    assert (end.ground_class(np.array([222.0, 223.0, 226.0, 240.0]), side) != WATER).all()
    assert end.ground_class(np.array([224.5]), np.array([73.0]))[0] != WATER

    south = open_view(spec, 2, 0)  # beside the path and the yard
    xs = np.arange(129.0, 190.0, 1.0)
    goes_on = south.ground_class(xs, np.full_like(xs, 60.0)) == ROAD  # to the N-S street at x = 137 to 144 m
    assert goes_on[xs < 144].all() and not goes_on[xs > 145].any()
    for y in (53.0, 12.0, 24.0, 36.0):  # (a procedural street runs along y = 41 to 48 m)
        assert (south.ground_class(xs, np.full_like(xs, y)) == ROAD).mean() < 0.2, y


def test_buildings_the_edge_cuts_go_on_straight_or_end_there(city_tile, tmp_path):
    """Beyond the input's east edge, a building crossing it 20 degrees off square goes on straight
    along its own line (not as its mirror image, a chevron) for 20 m, where it ends, keeping its
    height and roof colour; one grazing the edge (15 degrees off its direction) ends at it (its
    mirror image would cross it)."""
    from tiles import DEVELOPED, write_tile

    from satforge.core.inputs import InputFiles
    from satforge.world.run import world_settings

    tile = {k: v.copy() for k, v in city_tile.items()}
    area = (slice(0, 170), slice(170, 256))  # x from 85 m to the east edge at 128 m, y from 43 to 128 m
    tile["semantic"][area], tile["ndsm"][area], tile["rgb"][area] = DEVELOPED, 0, 128
    rows, cols = np.mgrid[0:170, 170:256]
    x, y = (cols + 0.5) * GSD, 128 - (rows + 0.5) * GSD
    crossing = np.abs((y - 100) - np.tan(np.radians(20)) * (x - 128)) * np.cos(np.radians(20)) < 1.5
    grazing = np.abs((x - 128) - np.tan(np.radians(15)) * (y - 75)) * np.cos(np.radians(15)) < 1.5
    for stripe in (crossing, grazing):
        tile["semantic"][area][stripe], tile["ndsm"][area][stripe], tile["rgb"][area][stripe] = BUILDING, 9.0, 180
    paths = write_tile(tmp_path / "in", tile, gsd=GSD)
    spec, _ = world_settings(tmp_path / "w", InputFiles(rgb=paths["rgb"], height=paths["ndsm"],
                                                        semantic=paths["semantic"]), {"chunk_size": 64.0, "seed": 5})
    view = open_view(spec, 2, 1)  # x from 128 to 192 m, y from 64 to 128 m
    objects = view.object_tile().tile
    wx, wy = view.window.centres()
    beyond = (objects.classes == BUILDING) & (wx > 128) & (wx < 160)
    on = beyond & (wy > 95) & (wy < 128)
    off_line = np.abs((wy - 100) - np.tan(np.radians(20)) * (wx - 128)) * np.cos(np.radians(20))
    assert (off_line[on] < 1.5 + 1.0).all(), "along its own line (its mirror image strays 13 m by 19 m out)"
    assert 18 < (wx[on] - 128).max() < 20.5
    assert np.abs(objects.height[on] - 9.0).max() < 0.01
    per_cell = objects.rgb.shape[0] // wx.shape[0]
    assert np.abs(objects.rgb[::per_cell, ::per_cell][on] - 180 / 255).max() < 0.02, "its roof's colour"
    assert not (beyond & (wy > 66) & (wy < 90)).any(), "the grazing one ends at the edge"


def test_statistics_come_from_the_inputs(world, city_tile):
    manifest = json.loads((world / "manifest.json").read_text())
    inputs = manifest["inputs"]
    semantic = city_tile["semantic"]
    assert inputs["shares"][0] == pytest.approx(np.mean(semantic == BUILDING), abs=0.02)
    assert inputs["building_height"] == pytest.approx(np.median(city_tile["ndsm"][semantic == BUILDING]), abs=1.0)
    assert manifest["style"]["storeys"] == round(2 * (inputs["building_height"] - 0.5) / 3)
    assert manifest["style"]["urban"] < 0.55, "a built-up input makes a more urban continuation"
    assert inputs["heights"] == "ndsm" and [r["role"] for r in inputs["rasters"]] == ["rgb", "height", "semantic"]


@pytest.mark.parametrize("chunk", [(-1, 0), (1, 1)])
def test_chunk_alone_equals_chunk_in_a_larger_run(world, city_files, tmp_path, chunk):
    x, y = chunk
    alone = tmp_path / "alone"
    assert main(["world", "--out", str(alone), "--tiles", f"{x}:{x},{y}:{y}", *_inputs(city_files), *ARGS]) == 0
    for lod in range(LODS):
        name = f"tiles/{lod}/tile_x{x}_y{y}.glb"
        assert (alone / name).read_bytes() == (world / name).read_bytes()


def test_existing_world_extends_with_its_own_settings(world, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(world, out)
    before = tiles(out)
    assert main(["world", "--out", str(out), "--tiles", "3:3,0:0", "--progress", "none"]) == 0
    after = tiles(out)
    assert {k: after[k] for k in before} == before and len(after) == len(before) + LODS
    assert assert_borders_identical(out, 0) == 24 + 1
    assert main(["world", "--out", str(out), "--tiles", "0:0,0:0", "--seed", "6"]) == 2
    assert "other settings (seed=5" in capsys.readouterr().err


def test_changed_input_is_refused(city_files, tmp_path, capsys):
    files = {k: shutil.copy(v, tmp_path / v.name) for k, v in city_files.items()}
    out = tmp_path / "w"
    assert main(["world", "--out", str(out), "--tiles", "5:5,5:5", *_inputs({k: Path(v) for k, v in files.items()}),
                 *ARGS]) == 0
    with open(files["rgb"], "ab") as fh:
        fh.write(b"\0")
    assert main(["world", "--out", str(out), "--tiles", "6:6,5:5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "rgb.tif" in err[0] and "changed" in err[0]


def test_palette_without_inputs_is_refused(tmp_path, capsys):
    assert main(["world", "--out", str(tmp_path / "w"), "--tiles", "0:0,0:0", "--palette", "earthcrafter25"]) == 2
    assert "--palette" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_an_input_larger_than_memory_is_read_window_by_window(tmp_path):
    """A 20000 x 20000 RGB orthophoto (1.2 GB decoded, a few MB on disk): one chunk stays far below
    the decoded size, because only its window is ever decoded."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    side, strip = 20000, 1024  # strips of whole 512-pixel blocks: no block is written twice
    path = tmp_path / "big.tif"
    profile = dict(driver="GTiff", width=side, height=side, count=3, dtype="uint8", crs="EPSG:32633",
                   transform=from_origin(500000, 5010000, 0.5, 0.5), tiled=True, blockxsize=512,
                   blockysize=512, compress="deflate")
    wave = (40 * np.sin(np.arange(strip) / 37.0)[:, None] * np.cos(np.arange(side) / 53.0)).astype(np.int16)
    bands = np.stack([90 + wave, 110 + wave, 45 + wave // 2]).astype(np.uint8)
    with rasterio.Env(GDAL_CACHEMAX=64), rasterio.open(path, "w", **profile) as dst:
        for top in range(0, side, strip):
            rows = min(strip, side - top)
            dst.write(bands[:, :rows], window=Window(0, top, side, rows))
    out = tmp_path / "w"
    proc = subprocess.run([sys.executable, "-m", "satforge", "world", "--out", str(out), "--rgb", str(path),
                           "--tiles", "50:50,50:50", "--progress", "json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])["report"]
    assert report["peak_rss_mb"] < 700, "well below the 1200 MB the decoded image alone would take"
    assert_valid_gltf(out / "tiles/0/tile_x50_y50.glb")


@pytest.mark.parametrize("wrong", [("rgb", "ndsm"), ("height", "rgb"), ("dtm", "ndsm")])
def test_bad_input_file_exits_2_and_writes_nothing(city_files, tmp_path, capsys, wrong):
    role, given = wrong
    out = tmp_path / "w"
    assert main(["world", "--out", str(out), "--tiles", "0:0,0:0", f"--{role}", str(city_files[given])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("satforge: error:")
    assert not out.exists()


def test_the_hand_over_blends_without_smearing_the_edge_pixels(world):
    """Past the photo's north edge the colour runs on from the edge without a line (the rows either
    side of it differ no more than two rows inside do), and no edge pixel is drawn out as a streak:
    the brightness along the rows 4 m and 8 m out does not follow the edge row's (a smear repeats
    the edge row outward: a correlation near 1). The roads that cross the edge (x = 0..8 m and
    64..72 m) go on beyond it with their own texture; the rows are read between them."""
    view, _ = top_view(world, 0, GSD, [(0, 1), (1, 1), (0, 2), (1, 2)], only="terrain")  # north edge at 128 m

    def row(offset: float) -> np.ndarray:  # the row of pixels centred ``offset`` metres north of the edge
        colours = view.colour[int((3 * S - (2 * S + offset)) / GSD)]
        return np.concatenate([colours[round(12 / GSD):round(60 / GSD)], colours[round(76 / GSD):round(124 / GSD)]])

    edge = GSD / 2
    assert np.abs(row(edge) - row(-edge)).mean() < 1.5 * np.abs(row(-edge) - row(-3 * edge)).mean()
    for out in (4.0, 8.0):
        assert abs(np.corrcoef(row(out + edge).mean(-1), row(edge).mean(-1))[0, 1]) < 0.5, out


def test_the_continuation_is_calibrated_to_the_inputs_shares():
    """Around an input area, the procedural objects cover the inputs' shares of buildings and trees,
    boosted for the band nearest the inputs that holds fewer (measured where the continuation
    shows), within 0.02."""
    from satforge.world import source

    bounds = (0.0, 0.0, 250.0, 250.0)
    style = source.style_from_shares(3, 0.06, 0.15, 9.0, bounds)
    x, y = source._near(bounds)
    objects = source.Procedural(3, style).objects(x, y).class_id
    assert np.mean(objects == source.BUILDING) == pytest.approx(0.06 * source.BOOST, abs=0.02)
    assert np.mean(objects == source.TREE) == pytest.approx(0.15 * source.BOOST, abs=0.02)
    assert style.storeys == 6


def test_trees_line_the_roads_in_rows():
    """Along the procedural roads' edges (SIDEWALK_M inside them), trees stand in rows: where
    roads are lined, a good part of that line is crown (one every AVENUE_SPACING); over the town
    at large, far less is; avenue trees stand on the road's edge only, never in its middle."""
    from satforge.world import source

    x, y = np.meshgrid(np.arange(0, 700, 0.5), np.arange(0, 700, 0.5))

    def edge_cover(style: source.Style) -> tuple[float, float]:
        p = source.Procedural(19, style)
        town = p.ground_class(x, y) == source.DEVELOPED
        trees = p.objects(x, y).class_id == source.TREE
        across = np.mod(x - source.GRID_SHIFT, source.ROAD_PERIOD)
        edge = (np.abs(across - source.SIDEWALK_M) < 0.5) & (p.ground_class(x + 2, y) == source.ROAD)
        edge &= p.ground_class(x - source.SIDEWALK_M - 2, y) == source.DEVELOPED  # a town road's
        return float(trees[edge].mean()), float(trees[town].mean())

    unlined, _ = edge_cover(source.Style(avenues=0.0))
    lined, town = edge_cover(source.Style(avenues=1.0))
    assert lined > 0.3 and lined > 3 * town and lined > 3 * unlined, (lined, town, unlined)
    p = source.Procedural(19, source.Style(avenues=1.0))
    objects = p.objects(x, y)
    anchors = objects.anchor[objects.class_id == source.TREE]
    centres = np.unique(anchors, axis=0)
    across = np.mod(centres - source.GRID_SHIFT, source.ROAD_PERIOD)
    on_road = p.ground_class(centres[:, 0], centres[:, 1]) == source.ROAD
    in_middle = ((across > 1.5) & (across < source.ROAD_WIDTH - 1.5)).any(1)
    assert on_road.any() and not (on_road & in_middle).any()


def test_woods_stand_in_clusters_not_in_a_lattice():
    """Procedural woods: crown centres lie anywhere in their tree cells (no lattice of cell
    centres shows), so crowns now and then touch or overlap (clusters of trees and glades); each
    crown stays within MAX_RADIUS of its anchor (what a chunk's ownership relies on)."""
    from satforge.world import source

    x, y = np.meshgrid(np.arange(0, 500, 0.5) + 0.25, np.arange(0, 500, 0.5) + 0.25)
    objects = source.Procedural(19, source.Style(woods=0.3)).objects(x, y)
    trees = objects.class_id == source.TREE
    anchors, crown = np.unique(objects.anchor[trees], axis=0, return_inverse=True)
    offsets = np.mod(anchors, source.TREE_CELL) / source.TREE_CELL
    assert len(anchors) > 1000 and (np.minimum(offsets, 1 - offsets) < 0.1).any(1).mean() > 0.3
    assert np.hypot(*(np.stack([x[trees], y[trees]], -1) - anchors[crown.ravel()]).T).max() < source.MAX_RADIUS
    labels, count = ndimage.label(trees)
    crowns_per_clump = np.bincount(np.unique(labels[trees] * len(anchors) + crown.ravel()) // len(anchors))
    assert (crowns_per_clump >= 2).sum() > 0.1 * count
    assert (crowns_per_clump[1:] == 1).any()


@pytest.mark.parametrize("style", [{}, {"urban": 0.3, "woods": 0.2}, {"urban": 0.7, "woods": -0.2, "crown": 1.6}])
def test_cover_levels_say_what_the_objects_show(style):
    """The calibration reads every noise level's cover from Procedural.cover_levels: at the style's
    own levels that is exactly where its objects are buildings and trees."""
    from satforge.world import source

    x, y = np.meshgrid(np.arange(-300.0, 300.0, 1.3), np.arange(-200.0, 250.0, 1.3))
    world = source.Procedural(7, source.Style(**style))
    shown = world.objects(x, y).class_id
    buildings = world.cover_levels(x, y, source.BUILDING) > world.style.urban
    trees = world.cover_levels(x, y, source.TREE) > world.style.woods
    np.testing.assert_array_equal(buildings, shown == source.BUILDING)
    np.testing.assert_array_equal(trees, shown == source.TREE)
    assert 0.01 < buildings.mean() + trees.mean() < 0.9


def test_a_chunks_tile_samples_the_photo_only_where_the_generator_reads_it(city_files, tmp_path):
    """Without photo_context (the default generator) a chunk's tile is coloured only where it is
    valid: the scene made from it is the same as from the fully coloured tile."""
    from satforge.core.generators import ChunkPlace, GenerateSettings, get_generator
    from satforge.core.inputs import InputFiles
    from satforge.world.run import world_settings

    spec, _ = world_settings(tmp_path / "w", InputFiles(rgb=city_files["rgb"]), {"chunk_size": 64.0, "seed": 5})
    view = open_view(spec, 1, 1)
    whole, shown = view.object_tile(True).tile, view.object_tile(False).tile
    assert (shown.rgb[~shown.image_valid] == 0).all() and (whole.rgb[~whole.image_valid] > 0).any()
    np.testing.assert_array_equal(shown.rgb[shown.image_valid], whole.rgb[whole.image_valid])
    settings = GenerateSettings(seed=5, device="cpu", chunk=ChunkPlace(1, 1, spec.chunk_size, spec.band))
    generator = get_generator("default")
    a, b = (generator.generate(t, settings, lambda *_: None).splats for t in (whole, shown))
    for name in ("position", "rotation", "colour", "class_id"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_the_continuation_wears_the_photos_own_texture(city_tile, tmp_path):
    """Beyond the photo its own pixels paint the continuation: grass dyed purple and roofs dyed blue
    in the photo make purple open ground (the photo's only kind: meadow, fields and yards alike) as
    grainy as the photo's grass, and blue roofs, 64 m out and further, where the procedural palette
    has smooth green, yellow or grey ground and brown or grey roofs."""
    from satforge.core.inputs import InputFiles
    from satforge.world.exemplars import EXEMPLAR_PX, LAND, PURE
    from satforge.world.run import world_settings

    purple, blue = np.array([0.55, 0.30, 0.50]), np.array([0.25, 0.35, 0.80])
    semantic, rng = city_tile["semantic"], np.random.default_rng(0)
    rgb = city_tile["rgb"].astype(np.float32) / 255
    grass, roofs = semantic == RANGELAND, semantic == BUILDING
    rgb[grass] = purple * (0.8 + 0.4 * rng.random((int(grass.sum()), 1)))
    rgb[roofs] = blue
    files = write_tile(tmp_path / "dyed", {**city_tile, "rgb": np.round(rgb * 255).astype(np.uint8)})
    spec, _ = world_settings(tmp_path / "w", InputFiles(rgb=files["rgb"], semantic=files["semantic"]),
                             {"chunk_size": 64.0, "seed": 5})
    for cls, origins in spec.inputs.exemplars.squares:
        for r, c in origins:
            assert np.mean(semantic[r:r + EXEMPLAR_PX, c:c + EXEMPLAR_PX] == cls) >= PURE

    def chroma(colours: np.ndarray) -> np.ndarray:
        return colours.mean(0) / colours.mean(0).sum()

    def grain(colours: np.ndarray, where: np.ndarray) -> float:  # colour steps between neighbours 0.5 m apart
        return float(np.abs(np.diff(colours, axis=1)).mean(-1)[where[:, 1:] & where[:, :-1]].mean())

    view = open_view(spec, 3, 1)  # 64 to 128 m east of the photo
    x, y = np.meshgrid(192 + np.arange(0, 64, 0.5), 64 + np.arange(0, 64, 0.5))
    meadow, colour = np.isin(view.ground_class(x, y), LAND), view.ground_colour(x, y)
    assert meadow.mean() > 0.5
    np.testing.assert_allclose(chroma(colour[meadow]), purple / purple.sum(), atol=0.03)
    assert grain(colour, meadow) > 0.5 * grain(rgb, grass)
    x, y = np.meshgrid(192 + np.arange(0, 256.0), 64 + np.arange(0, 256.0))
    objects = view.world.objects(x, y)
    built = objects.class_id == BUILDING
    assert built.mean() > 0.02
    np.testing.assert_allclose(chroma(objects.colour[built]), blue / blue.sum(), atol=0.03)


def test_the_photos_texture_shows_no_lattice():
    """The continuation's texture blends its exemplars without seams: the colour steps between
    points 5 cm apart across the exemplars' pixel edges are alike wherever those edges lie in the
    lattice's cells (a tiling of the squares would step harder at the squares' edges, drawing a
    grid), and the texture keeps its exemplars' contrast."""
    from satforge.world.exemplars import Exemplars, Texture

    rng = np.random.default_rng(1)
    pixels = ndimage.gaussian_filter(rng.random((4, 16, 16, 3)), (0, 1.5, 1.5, 0)).astype(np.float32)
    squares = ((RANGELAND, ((0, 0), (0, 16), (16, 0), (16, 16))),)
    texture = Texture.of(3, Exemplars(16, squares), pixels, 0.25)  # 4 m squares on a 2 m lattice
    x = np.arange(0.0, 400.0, 0.05)
    colour = texture.colour(np.full(x.shape, RANGELAND), x, np.full(x.shape, 7.3))
    steps = np.abs(np.diff(colour, axis=0)).mean(-1)
    edge = np.floor((x / texture.cell - 0.5) * 8)  # 16 pixels over the 2 cells an exemplar spans
    crossed = np.flatnonzero(np.diff(edge) != 0)
    by_phase = [steps[crossed[edge[crossed + 1] % 8 == phase]].mean() for phase in range(8)]
    assert max(by_phase) < 1.5 * np.median(by_phase), by_phase
    assert colour.std(0).mean() > 0.7 * pixels.std((1, 2)).mean()
