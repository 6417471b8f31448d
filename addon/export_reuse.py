"""Batch export of unchanged generated collections: hand out the files the worker wrote.

Why reuse rather than re-export: those files are what SatForge's own exporters produced (the CLI
writes the same bytes), they carry the full georeference, the ``.geo.json`` sidecar and, for the
twin preset, EXT_mesh_features, and they have passed the Khronos validator in our tests. Our
exporters cannot run inside Blender (its Python has no pygltflib), and running the worker again
would take seconds for the same bytes. So when nothing changed since import (same objects, same
mesh hash, same placement, no modifiers, no edited image, same preset) we copy the files under the
new name, rewriting only the file names they refer to each other by.
"""

import hashlib
import json
import os
from pathlib import Path
from urllib.parse import quote, unquote

from mathutils import Matrix

from ..core.contract import temp_name
from .mesh_hash import mesh_hash

# Batch export format -> the key under which import recorded the worker's files.
FORMAT_KEYS = {"GLB": "glb", "GLTF_SEPARATE": "gltf", "OBJ": "obj"}


def object_unchanged(obj) -> bool:
    """Still exactly what import made: mesh, materials' images, placement, no modifiers."""
    if obj.type != "MESH" or obj.modifiers or obj.parent is not None or "satforge_mesh_hash" not in obj:
        return False
    recorded = obj.get("satforge_location")
    if recorded is None or obj.matrix_basis != Matrix.Translation(tuple(recorded)):
        return False
    if (obj.delta_location.length or tuple(obj.delta_scale) != (1.0, 1.0, 1.0) or any(obj.delta_rotation_euler)
            or tuple(obj.delta_rotation_quaternion) != (1.0, 0.0, 0.0, 0.0)):
        return False
    if any(node.image.is_dirty for slot in obj.material_slots if slot.material and slot.material.node_tree
           for node in slot.material.node_tree.nodes if node.type == "TEX_IMAGE" and node.image):
        return False
    return obj["satforge_mesh_hash"] == mesh_hash(obj)


def reusable_files(collection, export_format: str, preset_name: str) -> list[Path] | None:
    """The worker's files for ``collection`` in ``export_format`` when the collection is unchanged,
    else None (then Blender's exporter writes the file)."""
    recorded = json.loads(collection.get("satforge_files", "{}")).get(FORMAT_KEYS[export_format])
    if not recorded or collection.get("satforge_preset") != preset_name:
        return None
    objects = list(collection.all_objects)
    if sorted(obj.name for obj in objects) != json.loads(collection.get("satforge_objects", "[]")):
        return None
    if not all(object_unchanged(obj) for obj in objects):
        return None
    for item in recorded:
        path = Path(item["path"])
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != item["sha256"]:
            return None  # moved, deleted or edited since import
    return [Path(item["path"]) for item in recorded]


def _write_atomic(path: Path, data: bytes) -> None:
    part = path.with_name(temp_name(path.name))  # named per run: another Blender never clashes with it
    try:
        part.write_bytes(data)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


def _renamed_gltf(data: bytes, names: dict[str, str]) -> bytes:
    doc = json.loads(data)
    for item in doc.get("buffers", []) + doc.get("images", []):
        if "uri" in item and unquote(item["uri"]) in names:
            item["uri"] = quote(names[unquote(item["uri"])])
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def _renamed_lines(data: bytes, keyword: bytes, names: dict[str, str]) -> bytes:
    """Rewrite ``keyword NAME`` lines (OBJ ``mtllib``, MTL ``map_Kd``) naming one of our files."""
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if line.startswith(keyword + b" "):
            old = line[len(keyword) + 1:].decode("utf-8").strip()
            if old in names:
                lines[i] = keyword + b" " + names[old].encode("utf-8")
    return b"\n".join(lines)


def _renamed_sidecar(data: bytes, names: dict[str, str]) -> bytes:
    doc = json.loads(data)
    props = doc.get("properties", {})
    # Only the files exported with it (the worker's folder also held the other formats).
    props["assets"] = [names[name] for name in props.get("assets", []) if name in names]
    return (json.dumps(doc, indent=1) + "\n").encode("utf-8")


def copy_renamed(sources: list[Path], directory: Path, stem: str) -> list[Path]:
    """Copy ``sources`` (one format's files, plus a ``.geo.json`` beside them when there is one) to
    ``directory/stem.*``, fixing the names they refer to each other by. Returns the files written."""
    sources = list(sources)
    first = sources[0]
    sidecar = first.with_name(first.name.split(".")[0] + ".geo.json")
    if sidecar.is_file() and sidecar not in sources:
        sources.append(sidecar)
    names = {src.name: stem + src.name[len(src.name.split(".")[0]):] for src in sources}
    written = []
    for src in sources:
        data = src.read_bytes()
        if src.suffix == ".gltf":
            data = _renamed_gltf(data, names)
        elif src.suffix == ".obj":
            data = _renamed_lines(data, b"mtllib", names)
        elif src.suffix == ".mtl":
            data = _renamed_lines(data, b"map_Kd", names)
        elif src.name.endswith(".geo.json"):
            data = _renamed_sidecar(data, names)
        target = Path(directory) / names[src.name]
        _write_atomic(target, data)
        written.append(target)
    return written
