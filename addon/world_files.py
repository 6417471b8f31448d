"""A world folder as ``satforge world`` writes it, read from the add-on (no bpy, no satforge core).

Layout (world/layout.py): ``manifest.json`` with the world's settings and one entry per committed
chunk; ``tiles/{lod}/tile_x{X}_y{Y}.glb`` with vertices relative to the chunk centre
((X + 1/2) S, (Y + 1/2) S) metres east and north of the world origin.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

MANIFEST = "manifest.json"
# The manifest header fields the CLI takes as options (the rest are fixed or derived).
CLI_SETTINGS = ("chunk_size", "lods", "seed", "preset", "gsd")


def read_manifest(world_dir: Path) -> dict | None:
    """The manifest, or None when the folder holds no world yet."""
    path = Path(world_dir) / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def settings(manifest: dict) -> dict:
    return {key: manifest[key] for key in CLI_SETTINGS if key in manifest}


def chunk_file(world_dir: Path, lod: int, x: int, y: int) -> Path:
    return Path(world_dir) / "tiles" / str(lod) / f"tile_x{x}_y{y}.glb"


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
    if manifest is None:
        return False
    entry = manifest.get("chunks", {}).get(f"{x},{y}")
    if entry is None:
        return False
    for item in entry.get("files", []):
        if item.get("lod") == lod:
            path = Path(world_dir) / item["path"]
            return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == item.get("sha256")
    return False
