"""A world's 3D Tiles: geometric errors that are measured and mean what OGC 3D Tiles 1.1 says, the
quadtree of upper tiles (HLOD) kept up to date incrementally, a 64×64-chunk tileset a viewer can show
whole, and a real viewer (3d-tiles-renderer in Chromium) drawing a world framed whole and close up."""
from __future__ import annotations

import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers_tileset import check_tileset, whole_world_view
from helpers_validate import assert_valid_gltf
from helpers_viewer import assert_drawn, served, view
from helpers_world import ARGS, LODS, S, assert_borders_identical, make_world, tiles
from topdown import render_top_view

from satforge.cli import main
from satforge.core.contract import HLOD_INDEX, chunk_key, hlod_path, tile_path
from satforge.world import hlod, run
from satforge.world.layout import WorldSpec
from satforge.world.tileset import tileset


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return make_world(tmp_path_factory.mktemp("tiles") / "w", "0:2,0:2")


def _doc(world: Path) -> dict:
    return json.loads((world / "tileset.json").read_text())


def _upper(world: Path) -> dict:
    return json.loads((world / HLOD_INDEX).read_text())["tiles"]


def test_tileset_follows_the_spec(world):
    assert check_tileset(world / "tileset.json") == []


@pytest.mark.parametrize("breach, rule", [
    (lambda d: d["asset"].update(version="1.0"), "asset.version"),
    (lambda d: d["root"]["children"][0]["children"][0].update(geometricError=1e6), "above its parent"),
    (lambda d: d["root"].update(geometricError=0.001), "does not refine"),
    (lambda d: d["root"]["children"][1]["boundingVolume"]["box"].__setitem__(2, 500.0), "not inside"),
    (lambda d: d["root"]["children"][1]["boundingVolume"]["box"].__setitem__(11, 0.5), "does not contain"),
    (lambda d: d["root"]["children"][2]["content"].update(uri="tiles/hlod/9/none.glb"), "does not resolve"),
    (lambda d: d["root"]["children"].extend(d["root"]["children"][:1]), "children (at most 4)"),
])
def test_the_checker_catches_each_rule(world, tmp_path, breach, rule):
    doc = _doc(world)
    breach(doc)
    (tmp_path / "tiles").symlink_to(world / "tiles")
    (tmp_path / "tileset.json").write_text(json.dumps(doc))
    problems = check_tileset(tmp_path / "tileset.json")
    assert any(rule in p for p in problems), problems


def test_chunk_errors_are_measured(world):
    manifest = json.loads((world / "manifest.json").read_text())
    errors = [[f["error"] for f in e["files"]] for e in manifest["chunks"].values()]
    assert all(e[0] == 0 < e[1] for e in errors), "LOD 0 has no children; a coarser LOD has an error"
    assert len({e[1] for e in errors}) > 1, f"one value for every chunk is a constant, not a measure: {errors}"
    print("LOD 1 errors (m):", sorted(e[1] for e in errors))


def test_errors_shrink_from_the_root_to_the_chunks(world):
    root = _doc(world)["root"]
    assert "content" not in root and len(root["children"]) == 4
    assert all(root["geometricError"] > kid["geometricError"] for kid in root["children"])
    for upper in root["children"]:
        assert upper["content"]["uri"].startswith("tiles/hlod/1/")
        assert 0 < upper["geometricError"] and 1 <= len(upper["children"]) <= 4
        for chunk in upper["children"]:
            assert chunk["geometricError"] <= upper["geometricError"]
            assert chunk["content"]["uri"].startswith(f"tiles/{LODS - 1}/")
            assert chunk["children"][0]["geometricError"] == 0


def test_upper_tiles_are_valid_glbs_whose_borders_meet(world):
    for entry in _upper(world).values():
        assert_valid_gltf(world / entry["path"])
    # Level-1 tiles (0, 0) and (1, 0) meet at x = 128 m; (0, 0) and (0, 1) at y = 128 m.
    for (a, b, axis) in (((0, 0), (1, 0), 0), ((0, 0), (0, 1), 1)):
        ea, eb = _border(world, *a, axis, S), _border(world, *b, axis, -S)
        assert len(ea) == len(eb) > 64 and ea == eb


def _border(world: Path, x: int, y: int, axis: int, local: float) -> set[tuple]:
    meshes, _ = hlod.read_glb((world / hlod_path(1, x, y)).read_bytes())
    v = next(m for m in meshes if m.kind.label == "terrain").vertices
    on = v[v[:, axis] == np.float32(local)] + np.float32([(x + 0.5) * 2 * S, (y + 0.5) * 2 * S, 0])
    return {tuple(p) for p in on.tolist()}


def test_an_upper_tile_looks_like_its_chunks_from_above(world):
    """Tile (0, 0) of level 1 against chunks 0..1 × 0..1 at their coarsest LOD, from above at 0.5 m."""
    top = render_top_view(world / hlod_path(1, 0, 0), 2 * S, 2 * S, 0.5)
    quarters = [[render_top_view(world / tile_path(LODS - 1, x, y), S, S, 0.5) for x in (0, 1)] for y in (1, 0)]
    height = np.block([[q.height for q in row] for row in quarters])
    colour = np.concatenate([np.concatenate([q.colour for q in row], 1) for row in quarters])
    assert np.nanmedian(np.abs(top.height - height)) < 0.25
    assert np.nanmean(np.abs(top.colour - colour)) < 0.06


def test_extending_rebuilds_only_the_new_chunks_ancestors(world, tmp_path):
    out = shutil.copytree(world, tmp_path / "w")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.glb")}
    make_world(out, "3:3,0:0")
    changed = {str(p.relative_to(out)) for p, t in before.items() if p.stat().st_mtime_ns != t}
    assert changed == {hlod_path(1, 1, 0)}, changed
    assert check_tileset(out / "tileset.json") == []
    assert_borders_identical(out, LODS - 1)


def test_upper_tiles_rebuild_byte_for_byte_in_worker_processes(world, tmp_path, capsys, monkeypatch):
    """Only the upper tiles to make (every chunk is there): worker processes make them."""
    out = shutil.copytree(world, tmp_path / "w")
    shutil.rmtree(out / "tiles" / "hlod")
    monkeypatch.setattr(run, "_deferred", None)  # not in this process
    capsys.readouterr()
    assert main(["world", "--out", str(out), "--tiles", "0:2,0:2", *ARGS, "--workers", "2", "--progress", "json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    built = [e["message"] for e in events if e.get("stage") == "world" and e["message"].startswith("upper tile")]
    assert sorted(set(built)) == [f"upper tile 1/{x},{y}" for x in (0, 1) for y in (0, 1)]
    assert {p.name: p.read_bytes() for p in out.rglob("hlod/*/*.glb")} == \
        {p.name: p.read_bytes() for p in world.rglob("hlod/*/*.glb")}
    assert (out / "tileset.json").read_bytes() == (world / "tileset.json").read_bytes()
    assert tiles(out) == tiles(world)


def test_upper_tiles_are_built_while_chunks_are_made(world, tmp_path, capsys):
    """A fresh world on 2 workers: an upper tile is built as soon as its chunks are, before the
    world's last chunk (not in a stage of its own after every chunk), and the bytes are the same."""
    out = tmp_path / "w"
    capsys.readouterr()
    assert main(["world", "--out", str(out), "--tiles", "0:2,0:2", *ARGS, "--workers", "2", "--progress", "json"]) == 0
    said = [e["message"] for e in map(json.loads, capsys.readouterr().out.splitlines()) if e.get("message")]
    first_tile = next(i for i, m in enumerate(said) if m.startswith("upper tile"))
    assert first_tile < max(i for i, m in enumerate(said) if m.startswith("chunk")), said
    assert {p.name: p.read_bytes() for p in out.rglob("hlod/*/*.glb")} == \
        {p.name: p.read_bytes() for p in world.rglob("hlod/*/*.glb")}
    assert (out / "tileset.json").read_bytes() == (world / "tileset.json").read_bytes()
    assert tiles(out) == tiles(world)


def test_a_64_by_64_chunk_tileset_is_seen_whole_from_at_most_64_tiles(world, tmp_path):
    """Built from a manifest of 4,096 chunks (no files): each chunk takes the bounds and errors of
    one of this world's, each upper tile the largest deviation measured at level 1, at every level
    (pessimistic: errors add up level by level)."""
    manifest = json.loads((world / "manifest.json").read_text())
    spec, real = WorldSpec.from_header(manifest), list(manifest["chunks"].values())
    chunks = {}
    for i, (x, y) in enumerate(itertools.product(range(64), range(64))):
        model = real[i % len(real)]
        chunks[chunk_key(x, y)] = {**model, "x": x, "y": y,
                                   "files": [{**f, "path": tile_path(f["lod"], x, y)} for f in model["files"]]}
    deviation = max(e["deviation"] for e in _upper(world).values())
    low, high = min(e["bounds"][2] for e in real), max(e["bounds"][5] for e in real)
    levels = hlod.levels((e["x"], e["y"]) for e in chunks.values())
    upper = {f"{level}/{x},{y}": {"path": hlod_path(level, x, y), "deviation": deviation,
                                  "texel": S * 2 ** level / 512,
                                  "bounds": [-S * 2 ** (level - 1), -S * 2 ** (level - 1), low,
                                             S * 2 ** (level - 1), S * 2 ** (level - 1), high]}
             for level in range(1, len(levels)) for x, y in levels[level]}
    doc = tileset(spec, {**manifest, "chunks": chunks}, upper)
    (tmp_path / "tileset.json").write_text(json.dumps(doc))
    assert check_tileset(tmp_path / "tileset.json", max_children=4, files=False) == []
    assert len(levels) == 6 and len(doc["root"]["children"]) == 4  # chunks, then 32² ... 2² tiles
    seen = whole_world_view(doc)
    print(f"whole-world view of 64×64 chunks: {len(seen.drawn)} tiles drawn, {len(seen.loaded)} loaded")
    assert 0 < len(seen.loaded) <= 64


def test_framed_whole_in_3d_tiles_renderer_then_close_up(world):
    """In Chromium: the world framed whole loads and draws content from at most 64 tiles; from close
    above the chunk whose LOD 1 errs most, the viewer refines down to its LOD 0."""
    manifest = json.loads((world / "manifest.json").read_text())
    chunk = max(manifest["chunks"].values(), key=lambda e: e["files"][-1]["error"])
    cx, cy = (chunk["x"] + 0.5) * S, (chunk["y"] + 0.5) * S
    z = (chunk["bounds"][2] + chunk["bounds"][5]) / 2
    # Screen-space error of its LOD 1 from distance d on the 640 px high page: error·640 / (2·tan 30°·d).
    d = chunk["files"][-1]["error"] * 640 / (2 * math.tan(math.radians(30)) * 16) / 2
    close = f"&from={cx},{cy - 0.5 * d},{z + 0.85 * d}&at={cx},{cy},{z}"
    with served(world) as base:
        whole, near = view([(f"{base}/viewer/view.html?tileset=/data/tileset.json", "world_whole"),
                            (f"{base}/viewer/view.html?tileset=/data/tileset.json{close}", "world_close")])
    for report in (whole, near):
        assert_drawn(report)
        print(report["url"], f"{report['seconds']} s", "drawn:", report["result"]["drawn"])
    assert 0 < len(set(whole["result"]["loaded"])) <= 64
    assert any(uri.startswith("tiles/hlod/") for uri in whole["result"]["drawn"]), "upper tiles are drawn"
    assert tile_path(0, chunk["x"], chunk["y"]) in near["result"]["drawn"]
