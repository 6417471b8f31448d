"""An OGC 3D Tiles 1.1 ``tileset.json`` over the world's chunk GLBs and upper tiles (world.hlod).

Frame: the world has a projected CRS (or none) and no ECEF conversion, so the root transform is
the identity and the tileset's frame is the world's local frame: metres east (x), north (y) and up
(z) of the world origin (the south-west corner), whose CRS position is in ``asset.extras`` and
``extras`` as ``georeference``. Every tile with content is translated to its centre (a transform is
relative to the parent's); glTF content is y-up, which 3D Tiles runtimes turn to z-up, giving the
tile's frame back.

Tree: a root without content holding the top level of the upper-tile quadtree (at most 4 tiles;
the chunks themselves in a world of at most 4), each upper tile holding its at most 4 children,
down to the chunks; each chunk a chain, its coarsest LOD at the top and each finer LOD the only child
of the one above. ``refine: REPLACE`` throughout.

Geometric error (the spec's: metres of error when a tile is drawn instead of its children):
- chunk LOD k: measured when the chunk was made (world.surface.lod_errors): its vertical deviation
  from LOD 0, at least one texel of its texture; LOD 0: 0. A LOD never claims less than a finer one.
- upper tile: its measured vertical deviation from its children's content plus the largest of their
  errors (so, by the triangle inequality, a bound of its deviation from the finest), at least one texel.
- root: it draws nothing, so its error is the world's size (the diagonal of its box), and at least
  twice its children's: a viewer always refines it.
Bounding volumes: boxes aligned with the world's axes in each tile's frame, holding its content and
its children's boxes (objects reaching past a chunk's square included), padded by PAD.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..core.contract import TILESET
from . import hlod
from .layout import WorldSpec, write_if_changed
from .surface import lod_errors

PAD = 0.01  # metres around every box: the manifest's bounds are rounded to 0.1 mm


@dataclass
class _Node:
    tile: dict
    box: list[float]  # world frame: min x, y, z, max x, y, z
    error: float


def _union(boxes: list[list[float]]) -> list[float]:
    return [min(b[i] for b in boxes) for i in range(3)] + [max(b[i] for b in boxes) for i in range(3, 6)]


def _moved(bounds: list[float], centre: tuple[float, float]) -> list[float]:
    """Bounds in a tile's frame -> the world frame."""
    cx, cy = centre
    return [bounds[0] + cx, bounds[1] + cy, bounds[2], bounds[3] + cx, bounds[4] + cy, bounds[5]]


def _box(world: list[float], centre: tuple[float, float]) -> list[float]:
    """A 3D Tiles box (centre, half axes) in the frame of a tile centred on ``centre``."""
    lo = [world[0] - centre[0], world[1] - centre[1], world[2]]
    hi = [world[3] - centre[0], world[4] - centre[1], world[5]]
    c = [(a + b) / 2 for a, b in zip(lo, hi)]
    h = [(b - a) / 2 + PAD for a, b in zip(lo, hi)]
    return [*c, h[0], 0, 0, 0, h[1], 0, 0, 0, h[2]]


def _translation(centre: tuple[float, float], parent: tuple[float, float]) -> list[float]:
    return [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, centre[0] - parent[0], centre[1] - parent[1], 0, 1]


def _chunk(spec: WorldSpec, entry: dict, parent: tuple[float, float]) -> _Node:
    centre = spec.centre(entry["x"], entry["y"])
    world = _moved(entry["bounds"], centre)
    tile, error = None, 0.0
    for item in entry["files"]:  # finest first: each tile wraps the finer one
        error = max(error, item["error"])
        node = {"boundingVolume": {"box": _box(world, centre)}, "geometricError": error, "refine": "REPLACE",
                "content": {"uri": item["path"]}}
        if tile is not None:
            node["children"] = [tile]
        tile = node
    tile["transform"] = _translation(centre, parent)
    return _Node(tile, world, error)


class _Tree:
    """The quadtree of a manifest's chunks and the upper tiles' index."""

    def __init__(self, spec: WorldSpec, manifest: dict, upper: dict):
        self.spec, self.upper = spec, upper
        self.chunks = {(e["x"], e["y"]): e for e in manifest["chunks"].values()}
        self.tiles = hlod.levels(self.chunks)
        self.below = hlod.children(self.tiles)

    def node(self, level: int, x: int, y: int, parent: tuple[float, float]) -> _Node:
        if level == 0:
            return _chunk(self.spec, self.chunks[(x, y)], parent)
        centre = hlod.tile_centre(self.spec, level, x, y)
        kids = [self.node(level - 1, kx, ky, centre) for kx, ky in self.below[level][(x, y)]]
        entry = self.upper[f"{level}/{x},{y}"]
        world = _union([_moved(entry["bounds"], centre), *(k.box for k in kids)])
        error = max(entry["texel"], entry["deviation"] + max(k.error for k in kids))
        tile = {"boundingVolume": {"box": _box(world, centre)}, "geometricError": error, "refine": "REPLACE",
                "content": {"uri": entry["path"]}, "transform": _translation(centre, parent),
                "children": [k.tile for k in kids]}
        return _Node(tile, world, error)


def tileset(spec: WorldSpec, manifest: dict, upper: dict) -> dict:
    """The tileset of ``manifest``'s chunks (each file entry with its measured ``error``) and the
    upper tiles' index entries ``upper`` (world.hlod.UpperTiles)."""
    georef = {"crs": spec.crs, "crs_units": spec.crs_units, "easting": spec.easting, "northing": spec.northing,
              "elevation": spec.elevation, "origin": "south-west corner of chunk (0, 0)",
              "frame": "x east, y north, z up, metres from the origin; root transform identity (no ECEF)"}
    tree = _Tree(spec, manifest, upper)
    top = len(tree.tiles) - 1
    kids = [tree.node(top, x, y, (0.0, 0.0)) for x, y in tree.tiles[top]]  # sorted: order-independent
    world = _union([k.box for k in kids]) if kids else [0.0] * 6
    diagonal = math.dist(world[:3], world[3:]) + 2 * PAD
    error = max([diagonal] + [2 * k.error for k in kids])
    root = {"boundingVolume": {"box": _box(world, (0.0, 0.0))}, "geometricError": error, "refine": "REPLACE",
            "transform": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], "children": [k.tile for k in kids]}
    return {"asset": {"version": "1.1", "generator": f"SatForge {__version__}",
                      "extras": {"georeference": georef}},
            "geometricError": error, "extras": {"georeference": georef}, "root": root}


def _measured(out: Path, spec: WorldSpec, manifest: dict) -> dict:
    """The manifest with every LOD's error and bounds of every LOD: chunks committed before errors
    were measured (their bounds held LOD 0 alone) get both from their files now; the manifest on
    disk is left as it is."""
    chunks = {}
    for key, entry in manifest["chunks"].items():
        if any("error" not in item for item in entry["files"]):
            lods = [hlod.read_glb((out / item["path"]).read_bytes()) for item in entry["files"]]
            points = np.concatenate([m.vertices for meshes, _ in lods for m in meshes])
            errors = lod_errors(lods, spec.gsd)
            entry = {**entry, "bounds": [*points.min(0).tolist(), *points.max(0).tolist()],
                     "files": [{**item, "error": e} for item, e in zip(entry["files"], errors)]}
        chunks[key] = entry
    return {**manifest, "chunks": chunks}


def write_tileset(out: Path, spec: WorldSpec, manifest: dict, upper: dict) -> None:
    """(Re)write ``tileset.json`` over the manifest's chunks and the upper tiles' index ``upper``
    (world.hlod.UpperTiles.finish)."""
    data = (json.dumps(tileset(spec, _measured(out, spec, manifest), upper), indent=1) + "\n").encode()
    write_if_changed(out / TILESET, data)
