"""Benchmark: seconds and peak memory of one 256² Sat3DGen tile (image -> planes -> 320³ density and
colour) with a full-size model: DINOv3 ViT-L/16, the published decoder widths and MLP.

    python benchmarks/bench_sat3dgen.py [--grid 320] [--modes dense,coarse] [--occupied 0.1]
                                        [--device cpu|cuda]

The model has the published files' 3D shapes (``Sat3DGenConfig.published()``) and random weights
(time and memory of the forward passes do not depend on them), except that the density head is
rescaled so that ``--occupied`` of the kept cube is at or above the iso level: how much the
coarse-to-fine grid saves depends on how much of the cube is near a surface. ``dense`` evaluates
every cell inside the image footprint (``coarse_stride=1``, what upstream's ``forward_grid`` evaluates),
``coarse`` the default coarse-to-fine pass. Each mode runs in its own process, so its peak memory is
its own. Prints one JSON object per mode and a table; not a test.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def calibrate(model, planes, occupied: float) -> None:
    """Density head rescaled: raw spread 3, the (1 - occupied) quantile at the iso level, over
    random points of the kept cube (image footprint, above the zeroed bottom slab)."""
    import torch

    from satforge.core.generators.sat3dgen.volume import ISO_LEVEL

    points = (torch.rand(50000, 3, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8).to(planes.device)
    points[:, 2] = points[:, 2] * 1.125 + 0.1
    with torch.inference_mode():
        plane, line = model.split(planes)
        raw = model.mlp.raw_density(model.mlp.hidden(model.features(plane, line, points)))
    head = model.mlp.net1_density
    with torch.no_grad():
        scale = 3 / raw.std()
        target = 1 + torch.log(torch.expm1(torch.tensor(ISO_LEVEL)))
        head.weight *= scale
        head.bias.copy_(head.bias * scale + target - torch.quantile(raw.cpu() * scale, 1 - occupied).to(head.bias))


def run_case(mode: str, args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from satforge.core.generators.sat3dgen.model import Sat3DGenConfig, build_sat3dgen
    from satforge.core.generators.sat3dgen.volume import ISO_LEVEL, density_grid, planes
    from satforge.core.progress import peak_rss_mb

    torch.manual_seed(0)
    start = time.perf_counter()
    model = build_sat3dgen(Sat3DGenConfig.published(), args.device).eval()
    build = time.perf_counter() - start
    rgb = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    start = time.perf_counter()
    feature_planes = planes(model, rgb)
    _sync(args.device)
    planes_seconds = time.perf_counter() - start
    calibrate(model, feature_planes, args.occupied)
    start = time.perf_counter()
    vol = density_grid(model, feature_planes, args.grid, coarse_stride=1 if mode == "dense" else 4)
    _sync(args.device)
    grid_seconds = time.perf_counter() - start
    return {
        "mode": mode, "grid": args.grid, "device": args.device, "threads": torch.get_num_threads(),
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "build_seconds": round(build, 1), "planes_seconds": round(planes_seconds, 1),
        "grid_seconds": round(grid_seconds, 1), "evaluated": round(float(vol.evaluated.mean()), 3),
        "occupied": round(float((vol.density >= ISO_LEVEL).mean()), 3), "peak_rss_mb": peak_rss_mb(),
        "cuda_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if args.device == "cuda" else None,
    }


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=320)
    parser.add_argument("--modes", default="dense,coarse")
    parser.add_argument("--occupied", type=float, default=0.1)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one mode, print JSON
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args)))
        return
    passthrough = ["--grid", str(args.grid), "--occupied", str(args.occupied), "--device", args.device]
    rows = []
    for mode in args.modes.split(","):
        out = subprocess.run([sys.executable, __file__, "--case", mode, *passthrough],
                             check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    print(f"{'mode':>6} {'planes s':>8} {'grid s':>7} {'evaluated':>9} {'peak RSS MB':>11} {'CUDA MB':>8}")
    for r in rows:
        print(f"{r['mode']:>6} {r['planes_seconds']:>8} {r['grid_seconds']:>7} {r['evaluated']:>9} "
              f"{r['peak_rss_mb']:>11} {r['cuda_peak_mb'] or '-':>8}")


if __name__ == "__main__":
    main()
