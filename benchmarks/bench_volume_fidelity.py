"""Benchmark: how faithful the textured mesh of a volume scene is to the volume, and what it costs.

    python benchmarks/bench_volume_fidelity.py [--budgets 40000,15000] [--seed 0]

A synthetic 128 m x 128 m density volume at Sat3DGen's 0.28 m (a ground slab, boxes, boxes on
pillars with overhanging roofs, a bridge over open ground) goes through what
``generate --generator sat3dgen`` does after the model: volume -> scene (shells + surfels) ->
convert / unwrap / bake at the ``game`` preset's budget. Fidelity is the one-sided distance from
upstream's own mesh (marching cubes at the iso level on the density, what Sat3DGen's OBJ export
is) to ours: sample points on the marching-cubes surface, distance to the nearest point of our
mesh. Prints seconds per stage, triangles and the distance's mean, 95th percentile and maximum.
Not a test.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import trimesh
from scipy.spatial import cKDTree
from skimage.measure import marching_cubes

ROOT = Path(__file__).resolve().parents[1]
SIZE = 128 / 457


def synthetic_volume(seed: int) -> np.ndarray:
    """(457, 457, 160) density, [x east, y north, z up]: 10 units inside solids, 0 outside."""
    rng = np.random.default_rng(seed)
    density = np.zeros((457, 457, 160), np.float32)
    density[:, :, 10:40] = 10                                     # the ground slab, top at z index 39
    for _ in range(25):
        x, y = rng.integers(20, 400, 2)
        w, d, h = rng.integers(20, 60, 3)
        if rng.random() < 0.4:                                    # a roof on a pillar: an overhang
            density[x + w // 3:x + 2 * w // 3, y + d // 3:y + 2 * d // 3, 40:40 + h] = 10
            density[x:x + w, y:y + d, 40 + h:46 + h] = 10
        else:
            density[x:x + w, y:y + d, 40:40 + h] = 10
    density[100:360, 220:236, 70:76] = 10                         # a bridge deck over open ground
    density[100:110, 220:236, 40:70] = density[350:360, 220:236, 40:70] = 10
    return density


def fidelity(density: np.ndarray, meshes: list, samples: int = 200_000) -> dict:
    """One-sided distance, metres, from the marching-cubes surface at the iso level to our meshes."""
    from satforge.core.generators.sat3dgen.volume import ISO_LEVEL

    verts, faces, _, _ = marching_cubes(np.pad(density, 1), level=ISO_LEVEL)
    reference = trimesh.Trimesh((verts - 1) * SIZE, faces, process=False)
    ground_top = (39 + 0.5) * SIZE                # put z = 0 on the ground, as the generator does
    reference.apply_translation([-457 * SIZE / 2 + SIZE / 2, -457 * SIZE / 2 + SIZE / 2, -ground_top])
    ours = trimesh.util.concatenate([trimesh.Trimesh(m.vertices, m.faces, process=False) for m in meshes])
    points, _ = trimesh.sample.sample_surface(reference, samples, seed=0)
    keep = points[:, 2] > -0.5                    # the slab's sides and base are cut differently on purpose
    # Our surface as a dense point set (about 8 points per 0.1 m square): nearest-point distances then
    # overstate the distance to the surface by at most ~0.05 m.
    dense, _ = trimesh.sample.sample_surface_even(ours, int(ours.area * 800), seed=0)
    distance, _ = cKDTree(dense).query(points[keep])
    return {"mean_m": round(float(distance.mean()), 3), "p95_m": round(float(np.percentile(distance, 95)), 3),
            "max_m": round(float(distance.max()), 3), "points": int(keep.sum())}


def run(budget: int, seed: int) -> dict:
    from satforge.core.generators.sat3dgen.scene import volume_scene_parts
    from satforge.core.generators.sat3dgen.volume import Volume
    from satforge.core.inputs import InputFiles, load_tile
    from satforge.core.presets import load_preset
    from satforge.core.progress import Progress
    from satforge.core.scene import Scene
    from satforge.pipeline import Report, convert_scene

    example = ROOT / "examples/city_block"
    tile = load_tile(InputFiles(rgb=example / "rgb.tif", semantic=example / "semantic.tif"))
    density = synthetic_volume(seed)
    colour = np.full((*density.shape, 3), 0.5, np.float32)
    start = time.perf_counter()
    voxels, splats = volume_scene_parts(tile, Volume(density, colour, np.ones(density.shape, bool), SIZE,
                                                     (0.0, 0.0, 0.0)), np.full(tile.shape, 8, np.uint8))
    parts = time.perf_counter() - start
    scene = Scene(voxels, splats, tile.georef, tile.scheme.name, "bench", 0, tile.image_gsd, solid="volume")
    preset = load_preset("game")
    preset = type(preset)(**{**preset.__dict__, "triangles_per_128m": budget})
    report = Report()
    textured = convert_scene(scene, preset, report, Progress("none"))
    return {"budget": budget, "triangles": textured.triangle_count, "scene_s": round(parts, 2),
            **{f"{k}_s": v["seconds"] for k, v in report.stages.items()},
            "voxels": len(voxels), "surfels": len(splats), **fidelity(density, textured.meshes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="40000,15000")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for budget in (int(b) for b in args.budgets.split(",")):
        print(json.dumps(run(budget, args.seed)), flush=True)


if __name__ == "__main__":
    main()
