"""Command lines and environment for the worker: ``python -m satforge generate|world ...``.

No ``bpy``: plain data in, argv out, so the exact command is unit-testable and can be shown to
the user to re-run by hand.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..core.contract import INPUT_ROLES, WEIGHTS_OPTIONS

# The folder that holds this package (the repository root, or the installed extension's folder).
PACKAGE_DIR = Path(__file__).resolve().parent.parent
# The formats every generate run asks for: batch export can then hand out the worker's own files
# in any format without running anything again (see export_reuse.py).
GENERATE_FORMATS = "glb,gltf,obj"


def worker_env(base: dict | None = None) -> dict:
    """The child's environment: ``python -m satforge`` must import *this* copy of satforge.

    Installed as an extension, this package's folder is named ``satforge`` (the manifest id), so
    its parent on the child's PYTHONPATH makes it importable, ahead of any other copy. Blender's own
    ``sys.path`` is never touched. In a source checkout the folder may have another name; then the
    interpreter's own installation (``pip install -e .``) provides satforge.
    """
    env = dict(os.environ if base is None else base)
    if PACKAGE_DIR.name == "satforge":
        parts = [str(PACKAGE_DIR.parent)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONUNBUFFERED"] = "1"  # progress lines must arrive as they are printed
    env["PYTHONFAULTHANDLER"] = "1"  # a crash in a native library prints where it happened
    return env


@dataclass
class GenerateArgs:
    """What ``satforge generate`` needs; paths already resolved to files on disk."""

    out: Path
    rgb: Path | None = None
    height: Path | None = None
    dtm: Path | None = None
    semantic: Path | None = None
    palette: str = "openearthmap"
    gsd: float = 0.0                 # 0: from the files' georeference
    preset: str = "game"             # a preset name or a .toml path
    seed: int = 0
    height_scale: float = 1.0
    height_offset: float = 0.0
    generator: str = "default"
    weights: dict | None = None      # role ("height", "classes") -> weights file, for learned generators


def weights_argv(generator: str, weights: dict | None) -> list[str]:
    """``--generator NAME`` and, for a learned one, the weights options that are set."""
    argv = ["--generator", generator]
    if generator != "default":
        argv += [arg for role, option in WEIGHTS_OPTIONS.items() if (weights or {}).get(role)
                 for arg in (option, str(weights[role]))]
    return argv


def fetch_weights_argv(python: str, name: str) -> list[str]:
    """``satforge weights fetch NAME``: the only command that downloads (into the hub cache)."""
    return [python, "-m", "satforge", "weights", "fetch", name, "--progress", "json"]


def generate_argv(python: str, args: GenerateArgs) -> list[str]:
    argv = [python, "-m", "satforge", "generate"]
    for name in INPUT_ROLES:
        path = getattr(args, name)
        if path is not None:
            argv += [f"--{name}", str(path)]
    argv += ["--palette", args.palette]
    if args.gsd > 0:
        argv += ["--gsd", repr(float(args.gsd))]
    if args.height_scale != 1.0 or args.height_offset != 0.0:
        argv += ["--height-scale", repr(float(args.height_scale)), "--height-offset", repr(float(args.height_offset))]
    return argv + [*weights_argv(args.generator, args.weights), "--preset", args.preset, "--seed",
                   str(int(args.seed)), "--formats", GENERATE_FORMATS, "--progress", "json", "--out", str(args.out)]


def convert_splats_argv(python: str, ply: Path, out: Path, up: str, scale: float, georef: str, clip: bool,
                        preset: str) -> list[str]:
    """``satforge convert scene.ply``: a Gaussian-splat file placed and meshed like a tile."""
    argv = [python, "-m", "satforge", "convert", str(ply), "--up", up, "--scale", repr(float(scale))]
    if georef:
        argv += ["--georef", georef]
    if clip:
        argv.append("--clip")
    return argv + ["--preset", preset, "--formats", GENERATE_FORMATS, "--progress", "json", "--out", str(out)]


def tiles_arg(x0: int, x1: int, y0: int, y1: int) -> str:
    """``--tiles=X0:X1,Y0:Y1`` as one token: ``--tiles -1:1,...`` would read -1 as an option."""
    return f"--tiles={x0}:{x1},{y0}:{y1}"


def world_argv(python: str, world_dir: Path, tiles: tuple[int, int, int, int], settings: dict | None = None,
               workers: int = 0) -> list[str]:
    """``satforge world`` for a range of chunks. ``settings`` only for a new world: on an existing
    one the CLI takes every setting (seed, chunk size, LODs, preset, input rasters) from its
    manifest, so the add-on never has to keep up with what a manifest holds. ``workers`` 0: the
    CLI's default, every core."""
    argv = [python, "-m", "satforge", "world", "--out", str(world_dir), tiles_arg(*tiles)]
    for key, option in (("chunk_size", "--chunk-size"), ("lods", "--lods"), ("seed", "--seed"),
                        ("preset", "--preset"), ("gsd", "--gsd")):
        if settings and settings.get(key) is not None:
            value = settings[key]
            argv += [option, repr(float(value)) if isinstance(value, float) else str(value)]
    if settings and settings.get("generator"):
        argv += weights_argv(settings["generator"], settings.get("weights"))
    if workers > 0:
        argv += ["--workers", str(workers)]
    return argv + ["--progress", "json"]
