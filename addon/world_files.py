"""A world folder as ``satforge world`` writes it, read from the add-on (no bpy; the layout and the
commit check are core/contract.py's).

Chunk (X, Y)'s GLBs have vertices relative to the chunk centre ((X + 1/2) S, (Y + 1/2) S) metres
east and north of the world origin.
"""
from __future__ import annotations

import math
from pathlib import Path

from ..core.contract import chunk_committed, tile_path

# The manifest header fields the CLI takes as options (the rest are fixed or derived).
CLI_SETTINGS = ("chunk_size", "lods", "seed", "preset", "gsd")


def settings(manifest: dict) -> dict:
    return {key: manifest[key] for key in CLI_SETTINGS if key in manifest}


def chunk_file(world_dir: Path, lod: int, x: int, y: int) -> Path:
    return Path(world_dir) / tile_path(lod, x, y)


def chunk_centre(chunk_size: float, x: int, y: int) -> tuple[float, float]:
    """Metres east and north of the world origin; a multiple of S/2, exact in float32."""
    return (x + 0.5) * chunk_size, (y + 0.5) * chunk_size


def chunk_at(chunk_size: float, east: float, north: float) -> tuple[int, int]:
    """The chunk holding a point given in metres from the world origin."""
    return math.floor(east / chunk_size), math.floor(north / chunk_size)


def block(x: int, y: int, rings: int) -> list[tuple[int, int]]:
    """The (2 rings + 1)^2 chunks centred on (x, y), rows south to north as the CLI orders them."""
    return [(i, j) for j in range(y - rings, y + rings + 1) for i in range(x - rings, x + rings + 1)]


def chunk_on_disk(world_dir: Path, manifest: dict | None, lod: int, x: int, y: int) -> bool:
    """Whether the chunk is committed in the manifest and its file at ``lod`` has the committed hash."""
    return chunk_committed(world_dir, manifest, x, y, lod)
