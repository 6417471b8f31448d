"""Benchmark: `satforge world` chunks per minute and peak memory against world size and workers.

    python benchmarks/bench_world.py [--sizes 2,4] [--workers 1,2] [--lods 1] [--chunk-size 128]
                                     [--start X,Y] [--rgb F] [--height F] [--dtm F] [--semantic F]

With input rasters the world is made over them (from chunk --start, e.g. -1,-1 to include the
hand-over ring); without, it is the procedural world.

Each case is a fresh world made by its own `satforge world` process (so the peak memory, the
largest of that process and its workers, belongs to the case alone). Prints a table; not a test.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from satforge.core.contract import INPUT_ROLES


def run_case(side: int, workers: int, args: argparse.Namespace, work: Path) -> dict:
    out = work / f"w{side}_{workers}"
    x0, y0 = (int(v) for v in args.start.split(","))
    inputs = [a for role in INPUT_ROLES if getattr(args, role)
              for a in (f"--{role}", getattr(args, role))]
    proc = subprocess.run([sys.executable, "-m", "satforge", "world", "--out", str(out),
                           f"--tiles={x0}:{x0 + side - 1},{y0}:{y0 + side - 1}", "--lods", str(args.lods),
                           "--chunk-size", str(args.chunk_size), "--workers", str(workers), "--seed", "19",
                           *inputs, "--progress", "json"], check=True, capture_output=True, text=True)
    report = json.loads(proc.stdout.strip().splitlines()[-1])["report"]
    chunks = report["chunks"]["made"]
    return {"world": f"{side}x{side}", "workers": workers, "chunks": chunks,
            "seconds": report["total_seconds"],
            "chunks_per_minute": round(60 * chunks / report["total_seconds"], 1),
            "peak_rss_mb": report["peak_rss_mb"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,4", help="world sides in chunks")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--lods", type=int, default=1)
    parser.add_argument("--chunk-size", type=float, default=128.0)
    parser.add_argument("--start", default="0,0", help="south-west chunk of every world")
    for role in INPUT_ROLES:
        parser.add_argument(f"--{role}", help="input raster (default: a procedural world)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for side in (int(s) for s in args.sizes.split(",")):
            for workers in (int(w) for w in args.workers.split(",")):
                rows.append(run_case(side, workers, args, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
    print(f"{'world':>7} {'workers':>7} {'chunks':>6} {'s':>7} {'chunks/min':>10} {'peak MB':>8}")
    for r in rows:
        print(f"{r['world']:>7} {r['workers']:>7} {r['chunks']:>6} {r['seconds']:>7} "
              f"{r['chunks_per_minute']:>10} {r['peak_rss_mb']:>8}")


if __name__ == "__main__":
    main()
