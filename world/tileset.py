"""An OGC 3D Tiles 1.1 ``tileset.json`` over the world's chunk GLBs.

Frame: the world has a projected CRS (or none) and no ECEF conversion, so the root transform is
the identity and the tileset's frame is the world's local frame: metres east (x), north (y) and up
(z) of the world origin (the south-west corner), whose CRS position is in ``asset.extras`` and
``extras`` as ``georeference``. Each chunk's first tile translates to its centre; glTF content is
y-up, which 3D Tiles runtimes turn to z-up, giving the chunk frame back.

Each chunk is a chain: its coarsest LOD at the top, each finer LOD the only child of the one
above (``refine: REPLACE``); geometric error halves per level, down to 0 at LOD 0.
"""
from __future__ import annotations

import json

from .. import __version__
from ..core.contract import tile_path
from .layout import WorldSpec


def level_error(spec: WorldSpec, lod: int) -> float:
    """Geometric error (metres) of showing ``lod`` instead of the finer LODs: S/128 * 2^lod, 0 for LOD 0."""
    return 0.0 if lod == 0 else spec.chunk_size / 128 * 2 ** lod


def _box(bounds: list[float]) -> list[float]:
    lo, hi = bounds[:3], bounds[3:]
    c = [(a + b) / 2 for a, b in zip(lo, hi)]
    h = [max((b - a) / 2, 0.01) for a, b in zip(lo, hi)]
    return [*c, h[0], 0, 0, 0, h[1], 0, 0, 0, h[2]]


def _chunk_tile(spec: WorldSpec, x: int, y: int, bounds: list[float]) -> dict:
    tile = None
    for lod in range(spec.lods):  # finest first: each tile wraps the finer one
        node = {"boundingVolume": {"box": _box(bounds)}, "geometricError": level_error(spec, lod),
                "refine": "REPLACE", "content": {"uri": tile_path(lod, x, y)}}
        if tile is not None:
            node["children"] = [tile]
        tile = node
    cx, cy = spec.centre(x, y)
    tile["transform"] = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, cx, cy, 0, 1]
    return tile


def _world_box(spec: WorldSpec, chunks: dict) -> list[float]:
    """Bounds (world frame) of every chunk's bounds moved to its centre."""
    moved = []
    for entry in chunks.values():
        cx, cy = spec.centre(entry["x"], entry["y"])
        b = entry["bounds"]
        moved.append([b[0] + cx, b[1] + cy, b[2], b[3] + cx, b[4] + cy, b[5]])
    return [min(m[i] for m in moved) for i in range(3)] + [max(m[i] for m in moved) for i in range(3, 6)]


def tileset(spec: WorldSpec, manifest: dict) -> dict:
    chunks = manifest["chunks"]
    georef = {"crs": spec.crs, "crs_units": spec.crs_units, "easting": spec.easting, "northing": spec.northing,
              "elevation": spec.elevation, "origin": "south-west corner of chunk (0, 0)",
              "frame": "x east, y north, z up, metres from the origin; root transform identity (no ECEF)"}
    root_error = level_error(spec, spec.lods) or spec.chunk_size / 64
    # Sorted: the file does not depend on the order chunks finished in.
    ordered = sorted(chunks.values(), key=lambda e: (e["x"], e["y"]))
    children = [_chunk_tile(spec, e["x"], e["y"], e["bounds"]) for e in ordered]
    root = {"boundingVolume": {"box": _box(_world_box(spec, chunks)) if chunks else _box([0] * 6)},
            "geometricError": root_error, "refine": "REPLACE",
            "transform": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], "children": children}
    return {"asset": {"version": "1.1", "generator": f"SatForge {__version__}",
                      "extras": {"georeference": georef}},
            "geometricError": root_error, "extras": {"georeference": georef}, "root": root}


def tileset_bytes(spec: WorldSpec, manifest: dict) -> bytes:
    return (json.dumps(tileset(spec, manifest), indent=1) + "\n").encode()
