"""Benchmark: per-stage seconds and peak memory of `satforge generate` against the naive drape.

    python benchmarks/bench_pipeline.py [--sizes 256,1024] [--gsd 0.5]

Each case runs in its own process so peak memory (ru_maxrss) belongs to that case alone. The naive
drape is what users do today: one vertex per pixel of the height raster, the orthophoto projected
from above, written as one GLB. The Blender case (pip bpy) is what they would do in Blender to get
one textured atlas: the same grid, Smart UV Project and a Cycles bake of the colours. Prints a
table, with time and memory as ratios to satforge's; not a test.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from satforge.core.contract import REPORT

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def run_satforge(size: int, gsd: float, work: Path) -> dict:
    from tiles import make_city_tile, write_tile

    paths = write_tile(work / "in", make_city_tile(size, gsd, seed=3), gsd=gsd)
    out = work / "out"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "satforge", "generate", "--rgb", str(paths["rgb"]),
                    "--height", str(paths["ndsm"]), "--semantic", str(paths["semantic"]),
                    "--out", str(out), "--progress", "none"], check=True)
    report = json.loads((out / REPORT).read_text())
    report["wall_seconds"] = round(time.perf_counter() - start, 2)
    return report


def run_drape(size: int, gsd: float, work: Path) -> dict:
    """One vertex per pixel, top-down UVs, same exporter: the reference users have today."""
    from tiles import make_city_tile

    from satforge.core.georef import Georeference
    from satforge.core.meshes import TexturedMesh, TexturedScene
    from satforge.core.schemes import OPENEARTHMAP, SurfaceKind
    from satforge.exporters import export_scene

    tile = make_city_tile(size, gsd, seed=3)
    start = time.perf_counter()
    h, w = tile["ndsm"].shape
    yy, xx = np.mgrid[0:h, 0:w]
    verts = np.stack([(xx + 0.5) * gsd - w * gsd / 2, h * gsd / 2 - (yy + 0.5) * gsd, tile["ndsm"]], -1)
    idx = np.arange(h * w).reshape(h, w)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel(), idx[1:, :-1].ravel()
    faces = np.concatenate([np.stack([a, d, c], 1), np.stack([a, c, b], 1)]).astype(np.int32)
    uvs = np.stack([(xx + 0.5) / w, (yy + 0.5) / h], -1).reshape(-1, 2).astype(np.float32)
    normals = np.tile(np.float32([0, 0, 1]), (h * w, 1))
    mesh = TexturedMesh(SurfaceKind.TERRAIN, verts.reshape(-1, 3).astype(np.float32), faces, uvs, normals,
                        np.zeros(h * w, np.uint8))
    geo = Georeference(None, 0, 0, 0, w * gsd, h * gsd, gsd)
    scene = TexturedScene([mesh], tile["rgb"], geo, "openearthmap", OPENEARTHMAP.names)
    export_scene(scene, work / "drape", "drape", ["glb"])
    seconds = time.perf_counter() - start
    return {"total_seconds": round(seconds, 3), "triangles": {"total": len(faces)},
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def run_blender(size: int, gsd: float, work: Path) -> dict:
    """Blender's own path for the same tile, through pip bpy: the naive drape's grid as a mesh, the
    orthophoto projected from above, Smart UV Project, then a Cycles bake of the colours (one
    sample, CPU) into one atlas as large as ours would be for this tile, and a GLB export."""
    import bpy
    from PIL import Image
    from tiles import make_city_tile

    tile = make_city_tile(size, gsd, seed=3)
    Image.fromarray(tile["rgb"]).save(work / "photo.png")
    stages, start = {}, time.perf_counter()

    def stage(name: str, begun: float) -> float:
        now = time.perf_counter()
        stages[name] = {"seconds": round(now - begun, 3)}
        return now

    bpy.ops.wm.read_factory_settings(use_empty=True)
    h, w = tile["ndsm"].shape
    yy, xx = np.mgrid[0:h, 0:w]
    verts = np.stack([(xx + 0.5) * gsd, (h - yy - 0.5) * gsd, tile["ndsm"]], -1).reshape(-1, 3)
    idx = np.arange(h * w).reshape(h, w)
    quads = np.stack([idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:], idx[:-1, :-1]], -1).reshape(-1, 4)
    mesh = bpy.data.meshes.new("drape")
    mesh.vertices.add(len(verts))
    mesh.vertices.foreach_set("co", verts.astype(np.float32).ravel())
    mesh.loops.add(quads.size)
    mesh.loops.foreach_set("vertex_index", quads.astype(np.int32).ravel())
    mesh.polygons.add(len(quads))
    mesh.polygons.foreach_set("loop_start", (np.arange(len(quads)) * 4).astype(np.int32))
    mesh.update()
    obj = bpy.data.objects.new("drape", mesh)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    atlas = _material_with_photo_and_atlas(obj, work / "photo.png", _atlas_side(size))
    began = stage("read", start)
    bpy.ops.object.mode_set(mode="EDIT")
    bpy.ops.mesh.select_all(action="SELECT")
    bpy.ops.uv.smart_project(island_margin=0.001)
    bpy.ops.object.mode_set(mode="OBJECT")
    began = stage("unwrap", began)
    scene = bpy.context.scene
    scene.render.engine, scene.cycles.device, scene.cycles.samples = "CYCLES", "CPU", 1
    bpy.ops.object.bake(type="DIFFUSE", pass_filter={"COLOR"}, margin=4, use_clear=True)
    began = stage("bake", began)
    atlas.filepath_raw, atlas.file_format = str(work / "atlas.png"), "PNG"
    atlas.save()
    bpy.ops.export_scene.gltf(filepath=str(work / "blender.glb"), export_format="GLB", use_selection=True)
    stage("export", began)
    return {"total_seconds": round(time.perf_counter() - start, 3), "stages": stages,
            "triangles": {"total": 2 * len(quads)}, "texture": {"width": atlas.size[0], "height": atlas.size[1]},
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _atlas_side(size: int) -> int:
    """The atlas side the game preset gives a tile of size² pixels at 0.5 m (2048 per 128 m)."""
    return min(8192, max(256, 1 << round(np.log2(2048 * size / 256))))


def _material_with_photo_and_atlas(obj, photo: Path, side: int):
    """A material showing the photo projected from above (generated coordinates), with an empty
    side² image node active: the bake's target."""
    import bpy

    material = bpy.data.materials.new("photo")
    material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    coords, photo_node = nodes.new("ShaderNodeTexCoord"), nodes.new("ShaderNodeTexImage")
    photo_node.image = bpy.data.images.load(str(photo))
    links.new(coords.outputs["Generated"], photo_node.inputs["Vector"])
    links.new(photo_node.outputs["Color"], nodes["Principled BSDF"].inputs["Base Color"])
    target = nodes.new("ShaderNodeTexImage")
    target.image = bpy.data.images.new("atlas", side, side)
    nodes.active = target
    obj.data.materials.append(material)
    return target.image


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="256,1024")
    parser.add_argument("--gsd", type=float, default=0.5)
    parser.add_argument("--one", choices=list(CASES))
    parser.add_argument("--size", type=int)
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(CASES[args.one](args.size, args.gsd, Path(tmp))))
        return
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        for case in CASES:
            if case == "blender" and importlib.util.find_spec("bpy") is None:
                print(f"no pip bpy here: the Blender case of {size}² is left out")
                continue
            out = subprocess.run([sys.executable, __file__, "--one", case, "--size", str(size),
                                  "--gsd", str(args.gsd)], check=True, capture_output=True, text=True)
            rows.append((size, case, json.loads(out.stdout.strip().splitlines()[-1])))
    _print_table(rows, args.gsd)


def _print_table(rows, gsd) -> None:
    """One line per case; time and memory also as ratios to satforge's for the same tile."""
    stages = ["read", "generate", "mesh", "unwrap", "bake", "export"]
    print(f"tile at {gsd} m/px | " + " | ".join(f"{s:>8}" for s in stages) +
          " |  total s | wall s | peak MB | x time | x mem | triangles | texture")
    ours = {size: r for size, case, r in rows if case == "satforge"}
    for size, case, r in rows:
        st = r.get("stages", {})
        cells = " | ".join(f"{st[s]['seconds']:8.2f}" if s in st else f"{'-':>8}" for s in stages)
        tex = r.get("texture", {})
        time_ratio = r["total_seconds"] / ours[size]["total_seconds"] if size in ours else float("nan")
        mem_ratio = r["peak_rss_mb"] / ours[size]["peak_rss_mb"] if size in ours else float("nan")
        print(f"{size:>5}² {case:<10} | {cells} | {r['total_seconds']:8.2f} | {r.get('wall_seconds', '-'):>6} | "
              f"{r['peak_rss_mb']:7.0f} | {time_ratio:6.2f} | {mem_ratio:5.2f} | {r['triangles']['total']:9d} | "
              f"{tex.get('width', '-')}x{tex.get('height', '-')}")


CASES = {"satforge": run_satforge, "drape": run_drape, "blender": run_blender}


if __name__ == "__main__":
    main()
