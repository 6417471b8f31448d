"""Textured scenes -> GLB, .gltf + .bin + .png, OBJ + MTL + PNG, and a ``.geo.json`` sidecar.

An export is all-or-nothing: every file is first written to a temporary sibling, and only when all
are complete are they renamed into place, parts first (PNG, BIN, MTL), then the files that refer to
them, the sidecar last. A failure before the renames leaves neither final nor temporary files; a
crash during them can leave parts without their .gltf/.obj, never a .gltf/.obj without its parts.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from ..core.atomic import atomic_path
from ..core.contract import EXPORT_FORMATS as FORMATS
from ..core.contract import FORMAT_PARTS as _PARTS
from ..core.contract import OUTPUT_STEM
from ..core.meshes import TexturedScene
from . import geojson, gltf, obj
from .textures import encode_png

# Rename order: a file is renamed only after every file it refers to.
_COMMIT_ORDER = (".png", ".bin", ".mtl", ".glb", ".gltf", ".obj", ".geo.json")


@contextmanager
def _staged(targets: Sequence[Path]) -> Iterator[dict[Path, Path]]:
    """Temporary paths for ``targets``, renamed onto them in the given order when the block succeeds."""
    with ExitStack() as stack:
        # ExitStack unwinds last-in first-out, so enter in reverse to rename in ``targets`` order.
        temps = {path: stack.enter_context(atomic_path(path)) for path in reversed(targets)}
        yield temps


def export_scene(scene: TexturedScene, out_dir: Path, stem: str = OUTPUT_STEM,
                 formats: Sequence[str] = ("glb",)) -> dict[str, list[Path]]:
    """Write ``scene`` as ``out_dir/{stem}.*`` in each of ``formats`` plus ``{stem}.geo.json``.

    Returns format ("glb", "gltf", "obj", "geojson") -> the files written for it. Meshes without
    faces are left out; the PNG atlas is encoded once and shared by .gltf and .obj.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown export format(s) {', '.join(unknown)}; use {', '.join(FORMATS)}")
    file = {ext: Path(out_dir) / f"{stem}{ext}" for ext in _COMMIT_ORDER}
    plan = {fmt: [file[ext] for ext in _PARTS[fmt]] for fmt in (*formats, "geojson")}
    exts = {ext for fmt in plan for ext in _PARTS[fmt]}
    targets = [file[ext] for ext in _COMMIT_ORDER if ext in exts]
    png = encode_png(scene.atlas)
    with _staged(targets) as temp:
        if ".png" in exts:
            temp[file[".png"]].write_bytes(png)
        if "glb" in plan:
            gltf.write_glb(scene, png, temp[file[".glb"]])
        if "gltf" in plan:
            gltf.write_gltf(scene, temp[file[".gltf"]], temp[file[".bin"]],
                            bin_name=file[".bin"].name, png_name=file[".png"].name)
        if "obj" in plan:
            obj.write_mtl(scene, temp[file[".mtl"]], file[".png"].name)
            obj.write_obj(scene, temp[file[".obj"]], file[".mtl"].name)
        sidecar = geojson.sidecar(scene, [p.name for p in targets[:-1]])  # the sidecar itself is last
        temp[file[".geo.json"]].write_text(json.dumps(sidecar, indent=1, allow_nan=False) + "\n")
    return plan
