"""Textured scenes -> GLB, .gltf + .bin + .png, OBJ + MTL + PNG, and a ``.geo.json`` sidecar.

``write_scene_files`` writes them into a folder; ``export_scene`` does it all-or-nothing through
``core.output_dir.staged_folder`` (the pipeline stages its report and scene.npz with them).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ..core.contract import EXPORT_FORMATS as FORMATS
from ..core.contract import FORMAT_PARTS as _PARTS
from ..core.contract import OUTPUT_STEM
from ..core.meshes import TexturedScene
from ..core.output_dir import staged_folder
from . import geojson, gltf, obj
from .textures import encode_png

_EXTENSIONS = (".png", ".bin", ".mtl", ".glb", ".gltf", ".obj", ".geo.json")


def export_scene(scene: TexturedScene, out_dir: Path, stem: str = OUTPUT_STEM,
                 formats: Sequence[str] = ("glb",)) -> dict[str, list[Path]]:
    """``write_scene_files`` all-or-nothing: a failure leaves ``out_dir`` as it was."""
    with staged_folder(out_dir) as stage:
        plan = write_scene_files(scene, stage, stem, formats)
    return {fmt: [Path(out_dir) / p.name for p in paths] for fmt, paths in plan.items()}


def write_scene_files(scene: TexturedScene, out_dir: Path, stem: str = OUTPUT_STEM,
                      formats: Sequence[str] = ("glb",)) -> dict[str, list[Path]]:
    """Write ``scene`` as ``out_dir/{stem}.*`` in each of ``formats`` plus ``{stem}.geo.json``.

    Returns format ("glb", "gltf", "obj", "geojson") -> the files written for it. Meshes without
    faces are left out; the PNG atlas is encoded once and shared by .gltf and .obj.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown export format(s) {', '.join(unknown)}; use {', '.join(FORMATS)}")
    file = {ext: Path(out_dir) / f"{stem}{ext}" for ext in _EXTENSIONS}
    plan = {fmt: [file[ext] for ext in _PARTS[fmt]] for fmt in (*formats, "geojson")}
    exts = {ext for fmt in plan for ext in _PARTS[fmt]}
    png = encode_png(scene.atlas)
    if ".png" in exts:
        file[".png"].write_bytes(png)
    if "glb" in plan:
        gltf.write_glb(scene, png, file[".glb"])
    if "gltf" in plan:
        gltf.write_gltf(scene, file[".gltf"], file[".bin"], bin_name=file[".bin"].name,
                        png_name=file[".png"].name)
    if "obj" in plan:
        obj.write_mtl(scene, file[".mtl"], file[".png"].name)
        obj.write_obj(scene, file[".obj"], file[".mtl"].name)
    listed = [file[ext].name for ext in _EXTENSIONS[:-1] if ext in exts]  # the sidecar lists the others
    sidecar = geojson.sidecar(scene, listed)
    file[".geo.json"].write_text(json.dumps(sidecar, indent=1, allow_nan=False) + "\n")
    return plan
