"""Benchmark: seconds and peak memory of RS3DAda's tiled ``estimate`` with a ViT-L-sized model.

    python benchmarks/bench_rs3dada.py [--sizes 256,1024] [--patch 1022] [--stride 511] [--tta]
                                       [--device cpu|cuda] [--batch N] [--two-files]

The model has the published files' shapes (366.5 M parameters) and random weights: the time and
memory of a forward pass do not depend on the values. ``--two-files`` runs the default setup
(height and classes from separate files: the backbone runs twice per patch); without it one file
gives both rasters in one pass. Each size runs in its own process, so its peak memory is its own.
Prints one JSON object per size and a table; not a test.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def run_case(size: int, args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from satforge.core.generators.rs3dada.model import RS3DAdaConfig, RS3DAdaModels, build_rs3dada
    from satforge.core.generators.rs3dada.tiled import estimate, tile_starts
    from satforge.core.progress import peak_rss_mb

    start = time.perf_counter()
    height = build_rs3dada(RS3DAdaConfig.official(), args.device).eval()
    classes = build_rs3dada(RS3DAdaConfig.official(), args.device).eval() if args.two_files else height
    build = time.perf_counter() - start
    rgb = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    start = time.perf_counter()
    estimate(rgb, RS3DAdaModels(height, classes), patch=args.patch, stride=args.stride, tta=args.tta,
             device=args.device, batch=args.batch)
    if args.device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {
        "size": size, "patches": len(tile_starts(size, args.patch, args.stride)) ** 2, "tta": args.tta,
        "two_files": args.two_files, "device": args.device, "threads": torch.get_num_threads(),
        "build_seconds": round(build, 1), "estimate_seconds": round(seconds, 1), "peak_rss_mb": peak_rss_mb(),
        "cuda_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if args.device == "cuda" else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,1024")
    parser.add_argument("--patch", type=int, default=1022)
    parser.add_argument("--stride", type=int, default=511)
    parser.add_argument("--tta", action="store_true")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--two-files", action="store_true")
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)  # internal: run one size, print JSON
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args)))
        return
    passthrough = ["--patch", str(args.patch), "--stride", str(args.stride), "--device", args.device]
    passthrough += ["--batch", str(args.batch)] if args.batch else []
    passthrough += ["--tta"] * args.tta + ["--two-files"] * args.two_files
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--case", str(size), *passthrough],
                             check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    print(f"{'size':>6} {'patches':>7} {'estimate s':>10} {'peak RSS MB':>11} {'CUDA MB':>8}")
    for r in rows:
        print(f"{r['size']:>6} {r['patches']:>7} {r['estimate_seconds']:>10} {r['peak_rss_mb']:>11} "
              f"{r['cuda_peak_mb'] or '-':>8}")


if __name__ == "__main__":
    main()
