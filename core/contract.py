"""The contracts the core and the Blender add-on share: input roles, palettes, preset fields,
output file names and the world folder's layout.

Standard library only: the add-on imports this inside Blender, where numpy-heavy core modules
(and torch) are not loaded. Everything else in ``core`` that names one of these things takes it
from here, so the two sides cannot drift apart.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
from pathlib import Path

# ---- inputs -------------------------------------------------------------------------------------

# Input rasters by role; also the order that picks a tile's name and georeference.
INPUT_ROLES = ("rgb", "height", "dtm", "semantic")

# Class schemes (core/schemes.py holds their tables): name -> (label, description).
PALETTES = {
    "openearthmap": ("OpenEarthMap", "8 classes (SynRS3D / OpenEarthMap ids)"),
    "earthcrafter25": ("EarthCrafter 25", "25 classes of the Aerial-Earth3D dataset"),
}

# Built-in generators: name -> (label, description). ``rs3dada`` needs weights
# (``satforge weights fetch rs3dada``, or local files).
GENERATORS = {
    "default": ("Default", "No weights: land cover from colour, heights from the rasters or seeded priors"),
    "rs3dada": ("RS3DAda", "Learned heights and land cover from the orthophoto alone (SynRS3D)"),
    "sat3dgen": ("Sat3DGen", "Full 3D (overhangs, walls) from the orthophoto alone: a learned density volume"),
}
# Options that give a learned generator's weights, by role.
WEIGHTS_OPTIONS = {"height": "--height-weights", "classes": "--seg-weights", "volume": "--weights"}

# ---- presets --------------------------------------------------------------------------------------

# The fields of a preset file (presets/*.toml), in file order; every field is required.
PRESET_FIELDS = ("name", "description", "triangles_per_128m", "atlas_side_per_128m", "texels_per_image_pixel",
                 "max_atlas_side", "feature_ids")
FEATURE_IDS = ("attribute", "ext_mesh_features")
# Each number's type and allowed values: a hand-written preset is checked against these before any
# work, and a wrong value is named with its key and range instead of failing deep in a stage.
PRESET_NUMBERS = {  # key: (type, lowest, highest)
    "triangles_per_128m": (int, 2000, 20_000_000),
    "atlas_side_per_128m": (int, 64, 16384),
    "texels_per_image_pixel": (float, 0.05, 16.0),
    "max_atlas_side": (int, 64, 16384),  # what glTF viewers and GPUs load
}


def preset_problem(values: dict) -> tuple[str, str] | None:
    """What is wrong with a preset's values, as (problem, fix); None when they are usable."""
    unknown = sorted(set(values) - set(PRESET_FIELDS))
    missing = [k for k in PRESET_FIELDS if k not in values]
    if unknown or missing:
        what = "; ".join(part for part in (f"unknown key(s) {', '.join(unknown)}" if unknown else "",
                                           f"missing {', '.join(missing)}" if missing else "") if part)
        return what, f"a preset has exactly the keys {', '.join(PRESET_FIELDS)}"
    for key in ("name", "description"):
        if not isinstance(values[key], str) or (key == "name" and not values[key].strip()):
            return f"{key} = {values[key]!r} is not a usable text", f'write {key} = "..."'
    if values["feature_ids"] not in FEATURE_IDS:
        return f"feature_ids = {values['feature_ids']!r}", f"use one of {', '.join(FEATURE_IDS)}"
    for key, (kind, low, high) in PRESET_NUMBERS.items():
        value = values[key]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        whole = kind is not int or (number and value == int(value))
        if not (number and whole and low <= value <= high):
            problem = "is outside" if number and whole else f"is not {'a whole number' if kind is int else 'a number'}"
            return (f"{key} = {value!r} {problem} (allowed: {low:,} to {high:,})",
                    f"write {key} = {kind(low)!r}, or a value up to {high:,}")
    return None

# ---- outputs of `satforge generate` ------------------------------------------------------------------

OUTPUT_STEM = "scene"
REPORT = "report.json"
# Extensions written per format, each format's files in the order an export renames them last.
FORMAT_PARTS = {"glb": (".glb",), "gltf": (".gltf", ".bin", ".png"), "obj": (".obj", ".mtl", ".png"),
                "geojson": (".geo.json",)}
EXPORT_FORMATS = ("glb", "gltf", "obj")  # what --formats accepts; the .geo.json sidecar always comes


def output_files(fmt: str, stem: str = OUTPUT_STEM) -> tuple[str, ...]:
    """File names an export writes for one format: ``output_files("gltf")`` -> scene.gltf, .bin, .png."""
    return tuple(f"{stem}{ext}" for ext in FORMAT_PARTS[fmt])


# Every file a `generate` or `convert` result may hold: a new result replaces all of an earlier one's.
RESULT_FILES = frozenset({*(f for fmt in FORMAT_PARTS for f in output_files(fmt)), f"{OUTPUT_STEM}.npz", REPORT})


# ---- a world folder (`satforge world`) ----------------------------------------------------------------

MANIFEST, TILESET = "manifest.json", "tileset.json"
WORLD_LOCK = "world.lock"  # held by the one run writing the world (world/lock.py)
MAX_CHUNKS_PER_RUN = 4096  # `world --tiles` above this many chunks needs --max-chunks (64 x 64)


def tile_path(lod: int, x: int, y: int) -> str:
    """A chunk's GLB at one LOD, relative to the world folder."""
    return f"tiles/{lod}/tile_x{x}_y{y}.glb"


def hlod_path(level: int, x: int, y: int) -> str:
    """An upper (merged, simplified) tile of the world's quadtree, relative to the world folder: at
    ``level`` it covers chunks [x·2^level, (x+1)·2^level) × [y·2^level, (y+1)·2^level)."""
    return f"tiles/hlod/{level}/tile_x{x}_y{y}.glb"


HLOD_INDEX = "tiles/hlod/index.json"  # what each upper tile was built from, and its measured errors


def chunk_key(x: int, y: int) -> str:
    """A chunk's key in the manifest's ``chunks``."""
    return f"{x},{y}"


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in blocks (weights files are over a gigabyte)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def read_world_manifest(world_dir: Path) -> dict | None:
    """The world's manifest, or None when the folder holds no world. Raises ValueError (with the
    reason) when it is unreadable."""
    path = Path(world_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"unreadable world manifest ({exc})") from None


def chunk_committed(world_dir: Path, manifest: dict | None, x: int, y: int, lod: int | None = None) -> bool:
    """Whether the manifest commits chunk (x, y) and its files (every LOD, or only ``lod``) are on
    disk with the committed SHA-256: the manifest is the commit point of every chunk."""
    entry = (manifest or {}).get("chunks", {}).get(chunk_key(x, y))
    if entry is None:
        return False
    files = [item for item in entry["files"] if lod is None or item["lod"] == lod]
    return bool(files) and all((Path(world_dir) / item["path"]).is_file()
                               and sha256_file(Path(world_dir) / item["path"]) == item["sha256"] for item in files)


def manifest_preset_name(manifest: dict) -> str:
    """The name of the preset a world was made with (its values are stored; older manifests
    stored only the name)."""
    preset = manifest.get("preset", "")
    return str(preset.get("name", "")) if isinstance(preset, dict) else str(preset)


# ---- temporary files (core/atomic.py, the add-on's exports) -------------------------------------------

TEMP_SEP, TEMP_SUFFIX = "~", ".part"  # "~" is never in a host name: a name splits from the right


def temp_host() -> str:
    """This machine's name as temporary names carry it."""
    return socket.gethostname().replace(TEMP_SEP, "-")


def temp_name(name: str) -> str:
    """``.{name}~{host}~{pid}~{token}.part``: a hidden temporary sibling of ``name``, unique to this run,
    that says whose it is, so only its run, or a later run once that process is gone, removes it."""
    return f".{name}{TEMP_SEP}{temp_host()}{TEMP_SEP}{os.getpid()}{TEMP_SEP}{secrets.token_hex(4)}{TEMP_SUFFIX}"


def temp_owner(entry: str) -> tuple[str, int] | None:
    """(host, pid) of the run that made a ``temp_name`` entry; None for any other name."""
    if not (entry.startswith(".") and entry.endswith(TEMP_SUFFIX)):
        return None
    parts = entry[:-len(TEMP_SUFFIX)].rsplit(TEMP_SEP, 3)
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    return parts[1], int(parts[2])
