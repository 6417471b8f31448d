"""Benchmark: per-stage seconds and peak memory of `satforge generate` against the naive drape.

    python benchmarks/bench_pipeline.py [--sizes 256,1024] [--gsd 0.5]

Each case runs in its own process so peak memory (ru_maxrss) belongs to that case alone. The naive
drape is what users do today: one vertex per pixel of the height raster, the orthophoto projected
from above, written as one GLB. Prints a table; not a test.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    import numpy as np
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="256,1024")
    parser.add_argument("--gsd", type=float, default=0.5)
    parser.add_argument("--one", choices=["satforge", "drape"])
    parser.add_argument("--size", type=int)
    args = parser.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as tmp:
            fn = run_satforge if args.one == "satforge" else run_drape
            print(json.dumps(fn(args.size, args.gsd, Path(tmp))))
        return
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        for case in ("satforge", "drape"):
            out = subprocess.run([sys.executable, __file__, "--one", case, "--size", str(size),
                                  "--gsd", str(args.gsd)], check=True, capture_output=True, text=True)
            rows.append((size, case, json.loads(out.stdout.strip().splitlines()[-1])))
    _print_table(rows, args.gsd)


def _print_table(rows, gsd) -> None:
    stages = ["read", "generate", "mesh", "unwrap", "bake", "export"]
    print(f"tile at {gsd} m/px | " + " | ".join(f"{s:>8}" for s in stages) +
          " |  total s | wall s | peak MB | triangles | texture")
    for size, case, r in rows:
        st = r.get("stages", {})
        cells = " | ".join(f"{st[s]['seconds']:8.2f}" if s in st else f"{'-':>8}" for s in stages)
        tex = r.get("texture", {})
        print(f"{size:>5}² {case:<10} | {cells} | {r['total_seconds']:8.2f} | {r.get('wall_seconds', '-'):>6} | "
              f"{r['peak_rss_mb']:7.0f} | {r['triangles']['total']:9d} | "
              f"{tex.get('width', '-')}x{tex.get('height', '-')}")


if __name__ == "__main__":
    main()
