"""`satforge world`: seamless, order-independent, resumable chunks with LODs and a 3D Tiles tileset."""
from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pygltflib
import pytest
from helpers_validate import assert_valid_gltf
from helpers_world import (
    ARGS,
    LODS,
    S,
    assert_borders_identical,
    crowns_on_trunks,
    make_world,
    seam_contrast,
    tiles,
    top_view,
)
from scipy.interpolate import griddata

from satforge.cli import main
from satforge.core.schemes import SurfaceKind
from satforge.world import run
from satforge.world.hlod import read_glb


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    return make_world(tmp_path_factory.mktemp("world") / "w", "0:1,0:1")


@pytest.mark.parametrize("lod", range(LODS))
def test_borders_are_bit_identical_at_every_lod(world, lod):
    assert assert_borders_identical(world, lod) == 4


def test_colour_across_borders_is_no_stronger_than_inside(world):
    view, _ = top_view(world, 0, 0.25)
    across, inside = seam_contrast(view, S, 0.25)
    assert across <= inside, f"border contrast {across:.4f} vs {inside:.4f} between adjacent texels inside"


def test_trees_stand_on_trunks(world):
    """A chunk's canopies reach down to its ground (trunks), not floating at their underside."""
    meshes, _ = read_glb((world / "tiles/0/tile_x0_y0.glb").read_bytes())
    ground = next(m for m in meshes if m.kind == SurfaceKind.TERRAIN)
    canopy = next(m for m in meshes if m.kind == SurfaceKind.VEGETATION)
    below = griddata(ground.vertices[:, :2], ground.vertices[:, 2], canopy.vertices[:, :2])
    clearance = canopy.vertices[:, 2] - below
    assert np.nanmax(clearance) > 3, "tall crowns"
    assert (np.abs(clearance) < 0.2).sum() >= 4 * 5, "at least five trunks' feet on the ground"
    # Every crown inside a chunk stands on a trunk at LOD 0, small ones beside tall ones too (crowns
    # a chunk border cuts may stand in the neighbour); a coarser LOD keeps a trunk (a spike where
    # boxes do not fit) under nearly every crown its simplifier keeps, and none under a crown it
    # took away.
    for (x, y), lod in itertools.product(itertools.product((0, 1), (0, 1)), range(LODS)):
        crowns, held, alone = crowns_on_trunks(world / f"tiles/{lod}/tile_x{x}_y{y}.glb", S)
        assert crowns > 10 and held >= (crowns if lod == 0 else 0.9 * crowns) and alone == 0, (x, y, lod, crowns,
                                                                                                  held, alone)


def _faces(path: Path) -> int:
    gltf = pygltflib.GLTF2.load(str(path))
    return sum(gltf.accessors[m.primitives[0].indices].count // 3 for m in gltf.meshes)


def test_lods_halve_triangles(world):
    faces = [_faces(world / f"tiles/{lod}/tile_x0_y0.glb") for lod in range(LODS)]
    assert faces[1] < 0.7 * faces[0]


def test_chunk_alone_equals_chunk_in_a_larger_run(world, tmp_path):
    alone = make_world(tmp_path / "alone", "1:1,1:1")
    for lod in range(LODS):
        name = f"tiles/{lod}/tile_x1_y1.glb"
        assert (alone / name).read_bytes() == (world / name).read_bytes()


@pytest.mark.parametrize("available_kb, workers", [(4_194_304, 2), (1_000, 1), (64_000_000, 8)])
def test_default_workers_leave_the_memory_others_hold(tmp_path, monkeypatch, available_kb, workers):
    """8 cores on a 64 GB machine where Blender holds most of it: the workers fit the memory free
    now (1.5 GB each), at least one, at most one per core."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(f"MemTotal:       67108864 kB\nMemFree:          500000 kB\nMemAvailable:   {available_kb} kB\n")
    monkeypatch.setattr(run, "MEMINFO", meminfo)
    monkeypatch.setattr(run, "cores", lambda: 8)
    assert run.default_workers() == workers


@pytest.mark.parametrize("workers", ["1", "3"])
def test_any_number_of_workers_makes_the_same_bytes(world, tmp_path, workers):
    """One core in this process, or 3 processes (the fixture: every core)."""
    out = tmp_path / "w"
    assert main(["world", "--out", str(out), "--tiles", "0:1,0:1", "--workers", workers, *ARGS]) == 0
    assert tiles(out) == tiles(world)
    assert (out / "manifest.json").read_bytes() == (world / "manifest.json").read_bytes()


def test_world_has_objects_and_valid_glbs(world):
    kinds = set()
    for path in sorted(world.glob("tiles/*/*.glb")):
        assert_valid_gltf(path)
        gltf = pygltflib.GLTF2.load(str(path))
        kinds |= {m.name for m in gltf.meshes}
        assert all(s.wrapS == s.wrapT == pygltflib.CLAMP_TO_EDGE for s in gltf.samplers)
    assert {"terrain", "building", "vegetation"} <= kinds


def test_tileset_structure(world):
    tileset = json.loads((world / "tileset.json").read_text())
    assert tileset["asset"]["version"] == "1.1"
    assert "georeference" in tileset["extras"]
    root = tileset["root"]
    assert root["refine"] == "REPLACE" and len(root["children"]) == 4
    for chunk in root["children"]:
        errors, node = [], chunk
        while True:
            assert node["refine"] == "REPLACE" and (world / node["content"]["uri"]).is_file()
            errors.append(node["geometricError"])
            if "children" not in node:
                break
            node = node["children"][0]
        assert len(errors) == LODS and errors[-1] == 0
        assert all(a == 2 * b for a, b in itertools.pairwise(errors[:-1]))
        assert tileset["geometricError"] == root["geometricError"] >= errors[0]
        assert [c % (S / 2) for c in chunk["transform"][12:14]] == [0, 0]


def test_same_range_twice_does_nothing(world):
    before = {p: p.stat().st_mtime_ns for p in world.rglob("*") if p.is_file()}
    make_world(world, "0:1,0:1")
    assert {p: p.stat().st_mtime_ns for p in world.rglob("*") if p.is_file()} == before


def _running(marker: str) -> list[int]:
    """Processes whose command line holds ``marker`` (Linux /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            pass  # gone meanwhile
    return found


def test_resume_after_kill_matches_uninterrupted_run(world, tmp_path):
    """kill -9 of a run with worker processes: its workers go with it (they would hold the world's
    lock), and the next run finishes the world as one run would have."""
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "satforge", "world", "--out", str(out), "--tiles", "0:1,0:1", *ARGS,
           "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "manifest.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.3)  # into the next chunk's work (or its writes)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if sys.platform.startswith("linux"):
        deadline = time.time() + 10
        while _running(str(out)) and time.time() < deadline:
            time.sleep(0.05)
        assert not _running(str(out)), "the killed run's workers outlived it"
    committed = json.loads((out / "manifest.json").read_text())["chunks"]
    assert 1 <= len(committed) < 4, "the kill should land mid-run"
    make_world(out, "0:1,0:1")
    assert tiles(out) == tiles(world)
    assert (out / "manifest.json").read_bytes() == (world / "manifest.json").read_bytes()
    assert not list(out.rglob("*.part"))


@pytest.mark.parametrize("content, older", [(None, "an older"), (99, "a newer")])
def test_a_world_of_another_content_is_not_extended(world, tmp_path, capsys, content, older):
    """Chunks another SatForge made may not meet this one's at their borders: refused, nothing written."""
    out = tmp_path / "other"
    shutil.copytree(world, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest.pop("content")
    (out / "manifest.json").write_text(json.dumps(manifest if content is None else {**manifest, "content": content}))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["world", "--out", str(out), "--tiles", "2:2,0:0", "--progress", "none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{older} SatForge made" in err[0] and "another --out" in err[0], err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("args", [["--tiles", "3:1,0:0"], ["--tiles", "0:0", "--chunk-size", "100.3"],
                                  ["--tiles", "0:0,0:0", "--rgb", "missing.tif"],
                                  ["--tiles", "0:0,0:0", "--lods", "0"]])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args):
    out = tmp_path / "bad"
    assert main(["world", "--out", str(out), *args]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not out.exists()
