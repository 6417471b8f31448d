"""The add-on in Blender (the pip bpy module, headless): generate, cancel, failures, the modal path,
presets, the interpreter check, extend terrain and batch export."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers_addon import (
    TILE_GSD,
    addon_fixture,  # noqa: F401 (the `addon` fixture)
    bpy,
    counts,
    draw_panels,
    fresh_scene,
    small_tile,
    summary,
    world_vertices,
)
from helpers_blender import import_in_blender
from helpers_validate import assert_valid_gltf

from satforge.cli import main

SEED = 0
EXPECTED_CLASSES = {"building": {8}, "road": {4}, "water": {6}, "vegetation": {5}}


def _log(what: str, seconds: float) -> None:
    print(f"\n[addon timing] {what}: {seconds:.2f} s")


@pytest.fixture(autouse=True)
def _no_job_left_running():
    yield
    from satforge.addon import jobs

    jobs.cancel_active()


@pytest.fixture(scope="module")
def tile(tmp_path_factory) -> dict[str, Path]:
    return small_tile(tmp_path_factory.mktemp("tiles") / "block64")


def _inputs(tile) -> dict:
    return {"rgb_path": str(tile["rgb"]), "height_path": str(tile["ndsm"]), "semantic_path": str(tile["semantic"])}


@pytest.fixture(scope="module")
def cli_out(tile, tmp_path_factory) -> Path:
    """What `satforge generate` writes for the tile, run the way a user would."""
    out = tmp_path_factory.mktemp("cli")
    assert main(["generate", "--rgb", str(tile["rgb"]), "--height", str(tile["ndsm"]), "--semantic",
                 str(tile["semantic"]), "--seed", str(SEED), "--preset", "game", "--progress", "none",
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def cli_summary(cli_out) -> dict:
    """The CLI's GLB imported into Blender by Blender's importer, per surface kind."""
    import_in_blender(cli_out / "scene.glb")
    return summary(bpy.context.scene.objects, lambda obj: obj.name.split(".")[0])


def _class_ids(obj) -> set[int]:
    attribute = obj.data.attributes["_FEATURE_ID_0"]
    assert attribute.data_type == "INT" and attribute.domain == "POINT"
    values = np.empty(len(attribute.data), np.int32)
    attribute.data.foreach_get("value", values)
    return set(np.unique(values).tolist())


@pytest.fixture(scope="module")
def generated(addon, tile, cli_summary) -> SimpleNamespace:
    """bpy.ops.satforge.generate on the tile in background mode; what it made, read right away."""
    fresh_scene()
    start = time.perf_counter()
    result = bpy.ops.satforge.generate(**_inputs(tile), palette="openearthmap", gsd=0.0, preset="game", seed=SEED)
    seconds = time.perf_counter() - start
    _log("generate operator, 64 m x 64 m tile (worker start, generate, import)", seconds)
    collection = bpy.data.collections["block64"]
    objects = list(collection.objects)
    return SimpleNamespace(
        result=result, seconds=seconds, collection=dict(collection),
        summary=summary(objects, lambda obj: obj["satforge_kind"]),
        classes={obj["satforge_kind"]: _class_ids(obj) for obj in objects},
        locations={obj["satforge_kind"]: tuple(obj.location) for obj in objects},
        scene={k: bpy.context.scene.get(k) for k in ("crs", "crsx", "crsy")},
        out=Path(collection["satforge_output_dir"]),
        bounds={obj["satforge_kind"]: (world_vertices(obj).min(0), world_vertices(obj).max(0)) for obj in objects})


# --- generate -------------------------------------------------------------------------------------

def test_generate_matches_what_the_cli_writes(generated, cli_summary):
    assert generated.result == {"FINISHED"}
    assert generated.summary == cli_summary, "objects, vertex/face counts, UVs or textures differ from the CLI's GLB"
    assert {"terrain", "building", "road", "vegetation"} <= set(generated.summary)


def test_generate_writes_the_same_glb_as_the_cli(generated, cli_out):
    assert (generated.out / "scene.glb").read_bytes() == (cli_out / "scene.glb").read_bytes()


def test_generated_objects_have_uvs_image_textures_and_integer_class_ids(generated):
    for kind, info in generated.summary.items():
        assert info["uv"] and info["image_texture"], kind
    for kind, expected in EXPECTED_CLASSES.items():
        if kind in generated.classes:
            assert generated.classes[kind] == expected, kind



def test_class_ids_are_those_of_the_glb(generated, cli_out):
    """Per kind, the same set of class ids as the GLB's _FEATURE_ID_0 accessor."""
    from satforge.addon import glb

    doc, blob = glb.read_glb(cli_out / "scene.glb")
    for mesh in doc["meshes"]:
        ids = glb.accessor(doc, blob, mesh["primitives"][0]["attributes"]["_FEATURE_ID_0"])[:, 0]
        assert generated.classes[mesh["name"]] == set(np.unique(ids).tolist()), mesh["name"]


def test_class_ids_are_rebuilt_when_an_importer_drops_them(addon, cli_out):
    """Blender 5's importer keeps _FEATURE_ID_0; for one that does not, we read the accessor."""
    from satforge.addon import glb, importing

    fresh_scene()
    collection = bpy.data.collections.new("fallback")
    bpy.context.scene.collection.children.link(collection)
    objects = importing.import_tile_glb(cli_out / "scene.glb", collection, prefix="fallback_")
    doc, blob = glb.read_glb(cli_out / "scene.glb")
    for obj in objects:
        values = np.empty(len(obj.data.vertices), np.int32)
        obj.data.attributes["_FEATURE_ID_0"].data.foreach_get("value", values)
        obj.data.attributes.remove(obj.data.attributes["_FEATURE_ID_0"])
        importing.ensure_class_ids(obj, doc, blob)
        again = np.empty_like(values)
        obj.data.attributes["_FEATURE_ID_0"].data.foreach_get("value", again)
        assert (again == values).all(), obj.name


def test_georeference_on_scene_and_collection_tile_centre_at_origin(generated):
    georef = json.loads((generated.out / "scene.geo.json").read_text())["properties"]["georeference"]
    assert generated.scene == {"crs": georef["crs"], "crsx": georef["easting"], "crsy": georef["northing"]}
    for key in ("crs", "crsx", "crsy"):
        assert generated.collection[key] == generated.scene[key]
    assert json.loads(generated.collection["satforge_georeference"]) == georef
    assert set(generated.locations.values()) == {(0.0, 0.0, georef["elevation"])}
    low = np.min([b[0] for b in generated.bounds.values()], axis=0)
    high = np.max([b[1] for b in generated.bounds.values()], axis=0)
    half = georef["width_m"] / 2
    assert np.allclose(low[:2], -half, atol=0.01) and np.allclose(high[:2], half, atol=0.01)


def test_generate_from_images_already_in_the_blend(addon, tmp_path):
    """Packed/generated images (no file behind them) go to the worker as temporary files, exactly."""
    import rasterio
    from tiles import make_city_tile

    raw = make_city_tile(64, TILE_GSD, seed=5)
    fresh_scene()

    def image(name, rows, float_buffer=False):
        rows = np.asarray(rows, np.float32)
        rgba = np.ones(rows.shape[:2] + (4,), np.float32)
        rgba[:, :, :3] = rows[:, :, None] if rows.ndim == 2 else rows
        img = bpy.data.images.new(name, rows.shape[1], rows.shape[0], float_buffer=float_buffer)
        img.pixels.foreach_set(rgba[::-1].ravel())  # Blender's first row is the bottom one
        return img

    image("ortho", raw["rgb"] / 255.0)
    image("heights", raw["ndsm"], float_buffer=True)
    image("landcover", raw["semantic"] / 255.0)
    assert bpy.ops.satforge.generate(rgb_image="ortho", height_image="heights", semantic_image="landcover",
                                     gsd=TILE_GSD, tile_name="from_blend") == {"FINISHED"}
    made = summary(bpy.data.collections["from_blend"].objects, lambda obj: obj["satforge_kind"])
    # The same rasters as GeoTIFFs through the CLI give the same meshes.
    from tiles import write_tile

    files = write_tile(tmp_path / "same", raw, gsd=TILE_GSD)
    out = tmp_path / "out"
    assert main(["generate", "--rgb", str(files["rgb"]), "--height", str(files["ndsm"]), "--semantic",
                 str(files["semantic"]), "--progress", "none", "--out", str(out)]) == 0
    with rasterio.open(files["ndsm"]) as src:
        assert src.read(1).dtype == np.float32
    import_in_blender(out / "scene.glb")
    assert made == summary(bpy.context.scene.objects, lambda obj: obj.name.split(".")[0])


def test_bad_input_reports_the_workers_one_line_and_creates_nothing(addon, tmp_path):
    fresh_scene()
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"this is not a GeoTIFF")
    before, folders = counts(), set((addon.user / "tiles").iterdir())
    scene_keys = set(bpy.context.scene.keys())
    with pytest.raises(RuntimeError) as caught:
        bpy.ops.satforge.generate(rgb_path=str(bad))
    message = str(caught.value).strip()
    assert "satforge: error: " in message and "bad.tif" in message and "not a raster" in message
    assert len(message.splitlines()) == 1, message
    assert counts() == before and set((addon.user / "tiles").iterdir()) == folders
    assert set(bpy.context.scene.keys()) == scene_keys
    with pytest.raises(RuntimeError, match="no input"):
        bpy.ops.satforge.generate()
    assert counts() == before


def test_an_import_that_fails_half_way_leaves_nothing(addon, cli_out):
    """All or nothing: whatever the import created before it broke is removed, scene keys too."""
    from satforge.addon import jobs, ops_generate

    fresh_scene()
    before, keys = counts(), dict(bpy.context.scene)

    def half_then_fail(context, done):
        ops_generate.import_tile(context, cli_out, "half", done)
        assert "half" in bpy.data.collections and "crs" in context.scene
        raise OSError("disk vanished")

    argv = [sys.executable, "-c", "print('{\"event\": \"done\", \"outputs\": []}')"]
    job = jobs.Job("half", argv, None, on_done=half_then_fail)
    assert jobs.run_sync(bpy.context, job) == jobs.FAILED
    assert "importing the result failed: disk vanished" in job.message
    assert counts() == before and dict(bpy.context.scene) == keys


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_a_crashed_worker_is_run_once_more_and_a_second_crash_is_reported(addon, tmp_path):
    """A native crash (SIGSEGV) costs one restart, named in the report; two crashes fail the job."""
    from satforge.addon import jobs

    marker = tmp_path / "crashed-once"
    crash_once = (f"import os, pathlib, signal\nm = pathlib.Path({str(marker)!r})\n"
                  "if not m.exists():\n    m.touch(); os.kill(os.getpid(), signal.SIGSEGV)\n"
                  "print('{\"event\": \"done\", \"outputs\": []}')")
    job = jobs.Job("flaky", [sys.executable, "-c", crash_once], None, on_done=lambda context, done: "made it")
    assert jobs.run_sync(bpy.context, job) == jobs.FINISHED, job.message
    assert job.message.startswith("made it (run twice: satforge: internal error: the worker crashed (SIGSEGV)")
    always = "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)"
    job = jobs.Job("broken", [sys.executable, "-c", always], None, on_done=lambda context, done: "never")
    assert jobs.run_sync(bpy.context, job) == jobs.FAILED
    assert job.message.startswith("satforge: internal error: the worker crashed (SIGSEGV)")
    assert len(job.crashes) == 1 and jobs.active() is None


def test_a_synchronous_run_never_waits_past_its_timeout(addon, tile):
    fresh_scene()
    before = counts()
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"took over 0\.5 s"):
        bpy.ops.satforge.generate(**_inputs(tile), timeout=0.5)
    assert time.monotonic() - start < 2.5 and counts() == before


def _cancel_when_running(cancelled_at: list, jobs) -> threading.Thread:
    """From another thread (as only Job.request_cancel may be), cancel once the worker reports progress."""
    def watch():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = jobs.active()
            if job is not None and job.progress > 0:
                cancelled_at.append((time.monotonic(), job))
                job.request_cancel()
                return
            time.sleep(0.005)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_cancel_returns_within_2_s_and_leaves_no_data_blocks(addon, tile):
    from satforge.addon import jobs

    fresh_scene()
    before, folders = counts(), set((addon.user / "tiles").iterdir())
    cancelled_at = []
    watcher = _cancel_when_running(cancelled_at, jobs)
    result = bpy.ops.satforge.generate(**_inputs(tile), tile_name="cancelled")
    returned = time.monotonic()
    watcher.join(1)
    assert cancelled_at, "the worker never reported progress"
    when, job = cancelled_at[0]
    _log("generate cancel -> operator returned", returned - when)
    assert result == {"CANCELLED"} and returned - when < 2.0
    assert job.worker.returncode is not None, "the worker is still running"
    assert counts() == before and set((addon.user / "tiles").iterdir()) == folders
    assert "cancelled" not in bpy.data.collections


# --- the UI path: modal steps, progress, panels -------------------------------------------------

def _op_settings(tile, **overrides) -> SimpleNamespace:
    """What the panel's Generate button passes: the operator's properties, as plain attributes."""
    values = {"rgb_path": "", "height_path": "", "dtm_path": "", "semantic_path": "", "rgb_image": "",
              "height_image": "", "dtm_image": "", "semantic_image": "", "palette": "openearthmap", "gsd": 0.0,
              "preset": "game", "seed": SEED, "tile_name": "", "output_dir": "", "generator": "default",
              **_inputs(tile)}
    return SimpleNamespace(**{**values, **overrides})


def test_modal_path_advances_progress_and_the_panels_draw(addon, tile):
    """What the modal operator does on each timer event (the pip module has no event loop, so
    this test sends the events): progress rises, the panels redraw it, the result lands."""
    from satforge.addon import jobs, ops_generate
    from satforge.addon.job_operator import modal_step

    fresh_scene()
    context = bpy.context
    draw_panels(context)  # idle panels draw too
    job = ops_generate.generate_job(context, _op_settings(tile, tile_name="modal"))
    job.start(context)
    state = context.window_manager.satforge_job
    seen, start = [], time.monotonic()
    while True:
        assert modal_step(context, job, "MOUSEMOVE") is None, "other events must pass through"
        result = modal_step(context, job, "TIMER")
        if result != jobs.RUNNING:
            break
        assert state.running and jobs.active() is job
        layout = draw_panels(context)
        ((_args, kwargs),) = layout.calls("progress")
        assert kwargs["factor"] == state.progress
        seen.append(state.progress)
        assert time.monotonic() - start < 120
        time.sleep(0.02)
    assert result == jobs.FINISHED, job.message
    assert seen == sorted(seen) and len(set(seen)) >= 4, seen
    assert not state.running and state.last_message.startswith("modal:")
    assert [c for c in draw_panels(context).calls("label") if c[1]["text"] == state.last_message]
    assert {obj["satforge_kind"] for obj in bpy.data.collections["modal"].objects} >= {"terrain", "building"}


def test_escape_cancels_the_modal_run(addon, tile):
    from satforge.addon import jobs, ops_generate
    from satforge.addon.job_operator import modal_step

    fresh_scene()
    context = bpy.context
    before = counts()
    job = ops_generate.generate_job(context, _op_settings(tile, tile_name="escaped"))
    job.start(context)
    deadline = time.monotonic() + 60
    while job.progress == 0 and modal_step(context, job, "TIMER") == jobs.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with pytest.raises(RuntimeError, match="poll"):  # one job at a time: the buttons are disabled
        bpy.ops.satforge.generate(**_inputs(tile))
    start = time.monotonic()
    assert modal_step(context, job, "ESC") == jobs.CANCELLED
    assert time.monotonic() - start < 2.0 and job.worker.returncode is not None
    assert counts() == before and jobs.active() is None
    assert context.window_manager.satforge_job.last_failed
    draw_panels(context)


def test_the_cancel_button_stops_the_run(addon, tile):
    from satforge.addon import jobs, ops_generate
    from satforge.addon.job_operator import modal_step

    fresh_scene()
    before = counts()
    job = ops_generate.generate_job(bpy.context, _op_settings(tile, tile_name="button"))
    job.start(bpy.context)
    assert bpy.ops.satforge.cancel() == {"FINISHED"}  # only flags it: the next timer event ends it
    assert modal_step(bpy.context, job, "TIMER") == jobs.CANCELLED
    assert job.worker.returncode is not None and counts() == before
    with pytest.raises(RuntimeError, match="poll"):  # nothing left to cancel
        bpy.ops.satforge.cancel()


# --- presets and preferences -------------------------------------------------------------------

def test_user_presets_are_saved_listed_and_passed_to_the_worker(addon):
    from satforge.addon import presets

    fresh_scene()
    assert bpy.ops.satforge.save_preset(name="small_tex", description="test", triangles_per_128m=40000,
                                        atlas_side_per_128m=256, texels_per_image_pixel=1.0,
                                        max_atlas_side=512, feature_ids="attribute") == {"FINISHED"}
    path = addon.user / "presets" / "small_tex.toml"
    assert path.is_file()
    ids = [item[0] for item in presets.enum_items()]
    assert ids[:2] == ["game", "twin"] and "user:small_tex" in ids
    assert bpy.context.scene.satforge.preset == "user:small_tex"
    assert presets.cli_value("user:small_tex") == str(path) and presets.cli_value("game") == "game"
    assert presets.load("user:small_tex")["atlas_side_per_128m"] == 256
    from satforge.core.presets import load_preset  # the worker reads it the same way

    assert load_preset(str(path)).atlas_side_per_128m == 256
    with pytest.raises(RuntimeError, match="shipped preset"):
        bpy.ops.satforge.save_preset(name="game")
    with pytest.raises(RuntimeError, match="preset name"):
        bpy.ops.satforge.save_preset(name="../evil")


def test_check_interpreter_says_what_is_missing(addon, tmp_path):
    assert bpy.ops.satforge.check_interpreter(python=sys.executable) == {"FINISHED"}
    bare = tmp_path / "bare-python"
    bare.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')
    bare.chmod(0o755)
    with pytest.raises(RuntimeError, match=r"missing: satforge, numpy, torch"):
        bpy.ops.satforge.check_interpreter(python=str(bare))
    from helpers_addon import FakeLayout

    from satforge.addon.prefs import SATFORGE_AP_preferences

    layout = FakeLayout()
    prefs = SimpleNamespace(layout=layout, python_path="", check_result="OK", bl_rna=SATFORGE_AP_preferences.bl_rna)
    SATFORGE_AP_preferences.draw(prefs, bpy.context)
    assert [kw for _, kw in layout.calls("label") if kw.get("text") == f"Using: {sys.executable}"]


# --- extend terrain ----------------------------------------------------------------------------

S = 32  # chunk side for the tests: small chunks, same code paths


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world") / "w"
    assert main(["world", "--out", str(out), "--tiles", "0:0,0:0", "--chunk-size", str(S), "--lods", "1",
                 "--seed", "5", "--progress", "none"]) == 0
    return out


def _chunk_objects(x, y, lod=0):
    return list(bpy.data.collections[f"tile_x{x}_y{y}_lod{lod}"].objects)


def _border(x, y, axis: int, value: float) -> set[tuple]:
    """World-space terrain vertices of chunk (x, y) lying on the line ``axis == value``."""
    terrain = next(o for o in _chunk_objects(x, y) if o["satforge_kind"] == "terrain")
    points = world_vertices(terrain)
    return {tuple(p) for p in points[points[:, axis] == np.float32(value)].tolist()}


def test_extend_terrain_adds_8_neighbours_whose_borders_meet_exactly(addon, world_dir):
    fresh_scene()
    assert bpy.ops.satforge.extend_terrain(world_dir=str(world_dir), x=0, y=0, rings=0) == {"FINISHED"}
    first = {obj.as_pointer() for obj in _chunk_objects(0, 0)}
    start = time.perf_counter()
    assert bpy.ops.satforge.extend_terrain(world_dir=str(world_dir), x=0, y=0, lod=0) == {"FINISHED"}
    _log("extend_terrain, 8 chunks of 32 m (worker start, 8 chunks, import)", time.perf_counter() - start)
    world = bpy.data.collections[f"world_{world_dir.name}"]
    chunks = {(c["satforge_x"], c["satforge_y"]) for c in world.children}
    assert chunks == {(x, y) for x in (-1, 0, 1) for y in (-1, 0, 1)}
    assert {obj.as_pointer() for obj in _chunk_objects(0, 0)} == first, "the first chunk was re-imported"
    for x, y in chunks:
        for obj in _chunk_objects(x, y):
            assert tuple(obj.location) == ((x + 0.5) * S, (y + 0.5) * S, 0.0)
    pairs = 0
    for x, y in chunks:
        if (x + 1, y) in chunks:  # shared east-west border at world x = (x + 1) S
            a, b = _border(x, y, 0, (x + 1) * S), _border(x + 1, y, 0, (x + 1) * S)
            assert len(a) == S + 1 and a == b, (x, y, "east")
            pairs += 1
        if (x, y + 1) in chunks:
            a, b = _border(x, y, 1, (y + 1) * S), _border(x, y + 1, 1, (y + 1) * S)
            assert len(a) == S + 1 and a == b, (x, y, "north")
            pairs += 1
    assert pairs == 12


def test_extend_terrain_skips_what_is_there_from_selection_or_cursor(addon, world_dir):
    # Runs after the test above: the 3 x 3 block is on disk; bring it into a fresh scene.
    fresh_scene()
    assert bpy.ops.satforge.extend_terrain(world_dir=str(world_dir), x=0, y=0) == {"FINISHED"}
    before = counts()
    terrain = next(o for o in _chunk_objects(1, 0) if o["satforge_kind"] == "terrain")
    bpy.context.view_layer.objects.active = terrain
    assert bpy.ops.satforge.extend_terrain(rings=0) == {"FINISHED"}  # the selected chunk: present
    bpy.context.view_layer.objects.active = None
    bpy.context.scene.cursor.location = (-10.0, 40.0, 0.0)  # chunk (-1, 1): present
    assert bpy.ops.satforge.extend_terrain(world_dir=str(world_dir), rings=0) == {"FINISHED"}
    assert counts() == before
    with pytest.raises(RuntimeError, match="lod 3"):
        bpy.ops.satforge.extend_terrain(world_dir=str(world_dir), x=0, y=0, lod=3)


# --- batch export ------------------------------------------------------------------------------

def _import_twice(generated) -> None:
    """Two collections from the worker's files: tileA as generated, tileB with one vertex moved."""
    from satforge.addon import ops_generate

    fresh_scene()
    done = {"report": json.loads((generated.out / "report.json").read_text())}
    for name in ("tileA", "tileB"):
        ops_generate.import_tile(bpy.context, generated.out, name, done)
    terrain = bpy.data.objects["tileB_terrain"]
    terrain.data.vertices[0].co.z += 1.0


def _glb_image_size(path: Path) -> tuple[int, int]:
    from satforge.addon import glb

    doc, blob = glb.read_glb(path)
    view = doc["bufferViews"][doc["images"][0]["bufferView"]]
    png = blob[view.get("byteOffset", 0):view.get("byteOffset", 0) + view["byteLength"]]
    return struct.unpack(">II", png[16:24])


def test_batch_export_two_collections_each_file_valid(addon, generated, tmp_path):
    from satforge.addon import glb

    _import_twice(generated)
    for name in ("tileA_road", "tileB_road"):  # the default: collections of the selected objects
        bpy.data.objects[name].select_set(True)
    assert bpy.ops.satforge.batch_export(directory=str(tmp_path), format="GLB", pattern="{collection}",
                                         preset="game") == {"FINISHED"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tileA.geo.json", "tileA.glb", "tileB.glb"]
    for name in ("tileA.glb", "tileB.glb"):
        assert_valid_gltf(tmp_path / name)
    # Unchanged: the worker's own file; edited: Blender's exporter, with class ids and georeference.
    assert (tmp_path / "tileA.glb").read_bytes() == (generated.out / "scene.glb").read_bytes()
    doc = glb.read_document(tmp_path / "tileB.glb")
    assert {m["name"] for m in doc["meshes"]} == {f"tileB_{k}" for k in generated.summary}
    assert all("_FEATURE_ID_0" in m["primitives"][0]["attributes"] for m in doc["meshes"])
    assert doc["asset"]["extras"]["georeference"]["easting"] == generated.scene["crsx"]
    sidecar = json.loads((tmp_path / "tileA.geo.json").read_text())
    assert sidecar["properties"]["assets"] == ["tileA.glb"]


def test_batch_export_gltf_and_obj(addon, generated, tmp_path):
    _import_twice(generated)
    assert bpy.ops.satforge.batch_export(directory=str(tmp_path / "gltf"), format="GLTF_SEPARATE",
                                         collections="tileA,tileB", pattern="{collection}_{preset}") == {"FINISHED"}
    for name in ("tileA_game.gltf", "tileB_game.gltf"):
        assert_valid_gltf(tmp_path / "gltf" / name)
    assert (tmp_path / "gltf" / "tileA_game.bin").is_file() and (tmp_path / "gltf" / "tileA_game.png").is_file()
    assert bpy.ops.satforge.batch_export(directory=str(tmp_path / "obj"), format="OBJ",
                                         collections="tileA,tileB") == {"FINISHED"}
    for stem in ("tileA", "tileB"):
        obj_text = (tmp_path / "obj" / f"{stem}.obj").read_text()
        assert f"mtllib {stem}.mtl" in obj_text
        textures = [line.split(" ", 1)[1] for line in (tmp_path / "obj" / f"{stem}.mtl").read_text().splitlines()
                    if line.startswith("map_Kd ")]
        assert textures and all((tmp_path / "obj" / t).is_file() for t in textures)
        imported = import_in_blender(tmp_path / "obj" / f"{stem}.obj")
        assert len(imported) == len(generated.summary) and all(i["has_image_texture"] for i in imported.values())


def test_batch_export_caps_textures_with_the_preset_and_restores_the_scene(addon, generated, tmp_path):
    from satforge.addon import presets

    _import_twice(generated)
    presets.save({"name": "tiny_tex", "description": "test", "triangles_per_128m": 40000,
                  "atlas_side_per_128m": 256, "texels_per_image_pixel": 2.0, "max_atlas_side": 8192,
                  "feature_ids": "attribute"})
    atlas = bpy.data.images["tileA_atlas"]
    size, before = tuple(atlas.size), counts()
    assert max(size) > 128
    assert bpy.ops.satforge.batch_export(directory=str(tmp_path), collections="tileA",
                                         preset="user:tiny_tex") == {"FINISHED"}
    assert_valid_gltf(tmp_path / "tileA.glb")
    assert max(_glb_image_size(tmp_path / "tileA.glb")) <= 128  # 256 per 128 m -> 128 for 64 m
    assert tuple(atlas.size) == size and counts() == before
    assert all(node.image == atlas for mat in bpy.data.materials if mat.name.startswith("tileA")
               for node in mat.node_tree.nodes if node.type == "TEX_IMAGE")


def test_extend_terrain_starts_a_new_world(addon, tmp_path):
    fresh_scene()
    new = tmp_path / "fresh_world"
    assert bpy.ops.satforge.extend_terrain(world_dir=str(new), x=2, y=-1, rings=0, chunk_size=16, lods=1,
                                           seed=3, preset="game") == {"FINISHED"}
    manifest = json.loads((new / "manifest.json").read_text())
    assert manifest["chunk_size"] == 16 and manifest["seed"] == 3 and list(manifest["chunks"]) == ["2,-1"]
    (chunk,) = bpy.data.collections["world_fresh_world"].children
    assert {tuple(o.location) for o in chunk.objects} == {(40.0, -8.0, 0.0)}


def test_batch_export_of_a_world_and_name_clashes(addon, world_dir, tmp_path):
    fresh_scene()
    assert bpy.ops.satforge.extend_terrain(world_dir=str(world_dir), x=0, y=0, rings=0) == {"FINISHED"}
    assert bpy.ops.satforge.batch_export(directory=str(tmp_path), collections=f"world_{world_dir.name}",
                                         pattern="{collection}") == {"FINISHED"}
    assert_valid_gltf(tmp_path / f"world_{world_dir.name}.glb")
    with bpy.context.temp_override(selected_ids=[bpy.data.collections["tile_x0_y0_lod0"]]):  # the Outliner
        assert bpy.ops.satforge.batch_export(directory=str(tmp_path), pattern="chunk_{x}_{y}_lod{lod}") == {"FINISHED"}
    assert (tmp_path / "chunk_0_0_lod0.glb").read_bytes() == (world_dir / "tiles/0/tile_x0_y0.glb").read_bytes()
    with pytest.raises(RuntimeError, match="would both be written"):
        bpy.ops.satforge.batch_export(directory=str(tmp_path), collections=f"tile_x0_y0_lod0,world_{world_dir.name}",
                                      pattern="same")
    with pytest.raises(RuntimeError, match="unknown field"):
        bpy.ops.satforge.batch_export(directory=str(tmp_path), collections="tile_x0_y0_lod0", pattern="{nope}")



def test_extend_terrain_on_a_world_made_with_a_user_preset_file(addon, tmp_path):
    """The manifest keeps the preset's values: the .toml may be gone when the world is extended."""
    fresh_scene()
    preset = tmp_path / "mine.toml"
    preset.write_text((Path(__file__).resolve().parent.parent / "presets/game.toml").read_text()
                      .replace('name = "game"', 'name = "mine"'))
    world = tmp_path / "user_preset_world"
    assert main(["world", "--out", str(world), "--tiles", "0:0,0:0", "--chunk-size", "16", "--preset", str(preset),
                 "--progress", "none"]) == 0
    preset.unlink()
    assert bpy.ops.satforge.extend_terrain(world_dir=str(world), x=0, y=0, rings=1) == {"FINISHED"}
    manifest = json.loads((world / "manifest.json").read_text())
    assert len(manifest["chunks"]) == 9 and manifest["preset"]["name"] == "mine"
    assert len(bpy.data.collections[f"world_{world.name}"].children) == 9


# --- learned generators ------------------------------------------------------------------------

def _tiny_rs3dada_checkpoint(path: Path) -> Path:
    """Written by another Python, as the add-on only ever uses torch in its worker: torch loaded into
    this bpy process keeps bpy 4.5's module from shutting Blender down at exit (it then hangs)."""
    code = "import sys; from helpers_rs3dada import save_state_dict, tiny_model; " \
           "save_state_dict(tiny_model(5), sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, cwd=Path(__file__).resolve().parent)
    return path


def test_generate_with_rs3dada_passes_the_preferences_weights(addon, tile, tmp_path, monkeypatch):
    from satforge.addon import ops_generate

    fresh_scene()
    checkpoint = _tiny_rs3dada_checkpoint(tmp_path / "tiny.pth")
    monkeypatch.setattr(ops_generate, "weights_files", lambda _context=None: {"height": str(checkpoint)})
    assert bpy.ops.satforge.generate(rgb_path=str(tile["rgb"]), generator="rs3dada", tile_name="learned") == \
        {"FINISHED"}
    kinds = {obj["satforge_kind"] for obj in bpy.data.collections["learned"].objects}
    assert "terrain" in kinds and len(kinds) >= 2


def test_fetch_weights_offline_reports_the_workers_one_line(addon, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(RuntimeError, match="weights fetch"):
        bpy.ops.satforge.fetch_weights(name="rs3dada")
    assert not (tmp_path / "hub").exists() or not any((tmp_path / "hub").rglob("*.pth"))


def test_import_splats_lands_textured_and_georeferenced(addon, tmp_path):
    """A 2DGS .ply through File > Import > Gaussian Splats: one textured, UV-mapped object per kind."""
    from helpers_splats import write_splat_ply

    fresh_scene()
    ply = write_splat_ply(tmp_path / "block.ply", "2dgs")
    assert bpy.ops.satforge.import_splats(filepath=str(ply), georef="EPSG:25832:500000,5700000,40") == {"FINISHED"}
    objects = list(bpy.data.collections["block"].objects)
    got = summary(objects, lambda obj: obj["satforge_kind"])
    assert set(got) == {"terrain", "building"}
    assert all(part["uv"] and part["image_texture"] for part in got.values())
    assert bpy.context.scene["crs"] == "EPSG:25832"
