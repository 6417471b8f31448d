"""How a world looks where level designers judge it: where chunks meet, and beyond a real tile.

    python benchmarks/world_look.py --out DIR [--tiles -1:2,-1:2] [--rgb F] [--height F] [--dtm F]
                                    [--semantic F] [--workers 2] [--seed 0] [--oblique]

Makes the world (or reuses DIR/world), places every chunk's finest LOD at its centre and samples the
top surface from straight above every 0.25 m. Prints, and writes to DIR/look.json:

- border steps: the share of samples 0.125 m either side of a chunk border whose top surfaces differ
  by more than 0.3 m, inside the input area and beyond it; the same on lines through the chunks'
  middles (not borders) as the control: what a line anywhere crosses (walls, crowns). "seam": the
  same 0.02 m either side, where only a wall or rim right on the line, or a seam, steps;
- land-cover shares (building, vegetation, water, road) of the top view inside the inputs and beyond;
- roof over roof: the share of building-roof area that lies above another building roof.

Writes DIR/top.png (colour from above), DIR/height.png (hillshade) and, with --oblique (pip bpy),
DIR/oblique.png (Blender, Cycles on the CPU). Not a test: figures for the session note.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from satforge.core.contract import INPUT_ROLES, MANIFEST
from satforge.core.schemes import SurfaceKind, get_scheme
from satforge.world.hlod import read_glb
from satforge.world.surface import Grid, Soup, heights, sample

STEP_M, SAMPLE_M, SEAM_M = 0.3, 0.25, 0.04


def make_world(out: Path, args: argparse.Namespace) -> dict:
    if not (out / MANIFEST).is_file():
        inputs = [a for role in INPUT_ROLES if getattr(args, role) for a in (f"--{role}", getattr(args, role))]
        subprocess.run([sys.executable, "-m", "satforge", "world", "--out", str(out), f"--tiles={args.tiles}",
                        "--workers", str(args.workers), "--seed", str(args.seed), *inputs, "--progress", "none"],
                       check=True)
    return json.loads((out / MANIFEST).read_text())


def world_soup(out: Path, manifest: dict) -> tuple[Soup, list[tuple[int, int]]]:
    size, parts, chunks = manifest["chunk_size"], [], []
    for entry in manifest["chunks"].values():
        meshes, atlas = read_glb((out / entry["files"][0]["path"]).read_bytes())
        parts.append((meshes, atlas, ((entry["x"] + 0.5) * size, (entry["y"] + 0.5) * size)))
        chunks.append((entry["x"], entry["y"]))
    return Soup.of(parts), chunks


def border_steps(soup: Soup, chunks: list[tuple[int, int]], size: float, inside) -> dict:
    """Step shares across chunk borders and across mid-chunk control lines, split by ``inside``:
    "step" between points SAMPLE_M apart (what the issue measures: slopes, walls and crown rims
    crossing the line count too), "seam" between points SEAM_M apart (what the line itself adds)."""
    have = set(chunks)
    result = {}
    for name, offset in (("border", 0.0), ("control", size / 2)):
        steps = {(side, gap): [] for side in (True, False) for gap in (SAMPLE_M, SEAM_M)}
        for x, y in chunks:
            for axis, (nx, ny) in ((0, (x + 1, y)), (1, (x, y + 1))):
                if offset == 0.0 and (nx, ny) not in have:
                    continue
                line = (x + 1) * size - offset if axis == 0 else (y + 1) * size - offset
                along = np.arange(SAMPLE_M / 2, size, SAMPLE_M) + (y if axis == 0 else x) * size
                for gap in (SAMPLE_M, SEAM_M):
                    a, b, px, py = _pair(soup, axis, line, along, gap)
                    ok = np.isfinite(a) & np.isfinite(b)
                    where = inside(px, py)
                    for side in (True, False):
                        steps[side, gap].append((np.abs(a - b) > STEP_M)[ok & (where == side)])
        for side, label in ((True, "inside"), (False, "beyond")):
            entry = {}
            for gap, key in ((SAMPLE_M, "step"), (SEAM_M, "seam")):
                values = np.concatenate(steps[side, gap]) if steps[side, gap] else np.zeros(0, bool)
                entry["samples"] = int(values.size)
                entry[f"{key}_share_over_0.3m"] = round(float(values.mean()), 4) if values.size else None
            result[f"{name}_{label}"] = entry
    return result


def _pair(soup: Soup, axis: int, line: float, along: np.ndarray, gap: float):
    """Top heights gap / 2 before and after ``line`` (x = line for axis 0, y = line for axis 1)."""
    if axis == 0:
        grid = Grid(west=line - gap, north=along.max() + SAMPLE_M / 2, dx=gap, dy=SAMPLE_M,
                    cols=2, rows=len(along))
        h = heights(soup.xyz[_near(soup, 0, line)], grid)[::-1]
        return h[:, 0], h[:, 1], np.full_like(along, line), along
    grid = Grid(west=along.min() - SAMPLE_M / 2, north=line + gap, dx=SAMPLE_M, dy=gap,
                cols=len(along), rows=2)
    h = heights(soup.xyz[_near(soup, 1, line)], grid)
    return h[1], h[0], along, np.full_like(along, line)


def _near(soup: Soup, axis: int, line: float) -> np.ndarray:
    lo, hi = soup.xyz[..., axis].min(1), soup.xyz[..., axis].max(1)
    return (lo <= line + SAMPLE_M) & (hi >= line - SAMPLE_M)


def top_view(soup: Soup, chunks, size: float):
    xs, ys = [c[0] for c in chunks], [c[1] for c in chunks]
    west, north = min(xs) * size, (max(ys) + 1) * size
    cols, rows = round((max(xs) + 1 - min(xs)) * size / SAMPLE_M), round((max(ys) + 1 - min(ys)) * size / SAMPLE_M)
    grid = Grid(west=west, north=north, dx=SAMPLE_M, dy=SAMPLE_M, cols=cols, rows=rows)
    return grid, sample(soup, grid)


def shares(view, kinds_of, mask: np.ndarray) -> dict:
    kinds = kinds_of[view.class_id]
    hit = mask & np.isfinite(view.height)
    total = max(int(hit.sum()), 1)
    return {kind.name.lower(): round(float((hit & (kinds == kind)).sum()) / total, 4)
            for kind in (SurfaceKind.BUILDING, SurfaceKind.VEGETATION, SurfaceKind.WATER, SurfaceKind.ROAD)}


def roof_over_roof(soup: Soup, grid: Grid) -> float:
    """Share of roof samples where two roofs lie one above the other: the highest and the lowest
    upward-facing building surface over a point differ by more than 0.3 m."""
    xyz = soup.xyz[soup.kind == int(SurfaceKind.BUILDING)]
    roofs = xyz[np.cross(xyz[:, 1] - xyz[:, 0], xyz[:, 2] - xyz[:, 0])[:, 2] > 1e-9]
    if not len(roofs):
        return 0.0
    top = heights(roofs, grid)
    lowest = -heights(roofs * [1, 1, -1], grid)
    seen = np.isfinite(top)
    return round(float((seen & (lowest < top - STEP_M)).sum()) / max(int(seen.sum()), 1), 4)


def save_images(view, out: Path) -> None:
    Image.fromarray(view.colour).save(out / "top.png")
    h = np.nan_to_num(view.height, nan=np.nanmin(view.height))
    gy, gx = np.gradient(h, SAMPLE_M)
    shade = np.clip((1 - gx - gy) / np.sqrt(1 + gx * gx + gy * gy) / np.sqrt(3) * 255, 0, 255)
    Image.fromarray(shade.astype(np.uint8)).save(out / "height.png")


def render_oblique(out: Path, manifest: dict, path: Path, samples: int = 8) -> bool:
    """The world from the south-west at 35 degrees, in Blender (pip bpy, Cycles on the CPU), each
    chunk's finest LOD placed at its centre. False when bpy is not importable."""
    try:
        import bpy
    except ImportError:
        return False
    from mathutils import Vector

    bpy.ops.wm.read_factory_settings(use_empty=True)
    size, lo, hi = manifest["chunk_size"], np.full(2, np.inf), np.full(2, -np.inf)
    for entry in manifest["chunks"].values():
        before = set(bpy.data.objects)
        bpy.ops.import_scene.gltf(filepath=str(out / entry["files"][0]["path"]))
        centre = np.array([(entry["x"] + 0.5) * size, (entry["y"] + 0.5) * size])
        for obj in set(bpy.data.objects) - before:
            obj.location = (*centre, 0.0)
        lo, hi = np.minimum(lo, centre - size / 2), np.maximum(hi, centre + size / 2)
    mid, span = (lo + hi) / 2, float((hi - lo).max())
    scene = bpy.context.scene
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    scene.collection.objects.link(camera)
    camera.location = (mid[0] - 0.55 * span, mid[1] - 0.75 * span, 0.6 * span)
    camera.rotation_euler = (Vector((*mid, 0.0)) - camera.location).to_track_quat("-Z", "Y").to_euler()
    camera.data.lens = 30
    scene.camera = camera
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    sun.data.energy, sun.rotation_euler = 3.0, (0.7, 0.2, 0.6)
    scene.collection.objects.link(sun)
    scene.world = bpy.data.worlds.new("sky")
    scene.world.color = (0.6, 0.7, 0.8)
    scene.render.engine, scene.cycles.samples, scene.cycles.device = "CYCLES", samples, "CPU"
    scene.render.resolution_x, scene.render.resolution_y = 1280, 800
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tiles", default="-1:2,-1:2")
    for role in INPUT_ROLES:
        parser.add_argument(f"--{role}")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--oblique", action="store_true", help="also render DIR/oblique.png with pip bpy")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = make_world(args.out / "world", args)
    size = manifest["chunk_size"]
    soup, chunks = world_soup(args.out / "world", manifest)
    bounds = manifest["inputs"]["bounds"] if manifest.get("inputs") else None

    def inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if bounds is None:
            return np.zeros(np.shape(x), bool)
        w, s, e, n = bounds
        return (x >= w) & (x <= e) & (y >= s) & (y <= n)

    figures = {"chunks": len(chunks), "steps": border_steps(soup, chunks, size, inside)}
    grid, view = top_view(soup, chunks, size)
    gx, gy = grid.points()
    kinds_of = get_scheme(manifest["inputs"]["palette"] if bounds else "openearthmap").kind_lut()
    figures["shares_inside"] = shares(view, kinds_of, inside(gx, gy))
    figures["shares_beyond"] = shares(view, kinds_of, ~inside(gx, gy))
    figures["roof_over_roof"] = roof_over_roof(soup, grid)
    save_images(view, args.out)
    if args.oblique and not render_oblique(args.out / "world", manifest, args.out / "oblique.png"):
        print("no pip bpy here: oblique.png left out")
    (args.out / "look.json").write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
