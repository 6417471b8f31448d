"""Bring a GLB the worker wrote into the scene: one object per surface kind, in a given collection.

Blender's own glTF importer does the reading (UVs, normals, materials with the atlas as an Image
Texture, packed into the .blend). We then move the objects into our collection, give objects,
meshes, materials and the image tile-specific names, make sure the class id is an integer mesh
attribute, and record what export needs to know later (kind, source file, mesh hash).
"""

import hashlib
import json
import re
from pathlib import Path

import bpy
import numpy as np

from . import glb
from .mesh_hash import FEATURE_ATTRIBUTE, mesh_hash

_SUFFIX = re.compile(r"\.\d{3}$")  # Blender's ".001" for a clashing name


class ImportFailed(RuntimeError):
    pass


def _importer_options() -> dict:
    """What we ask of the importer, limited to the options this Blender's importer has (4.2+)."""
    wanted = {"merge_vertices": False, "import_shading": "NORMALS", "import_pack_images": True,
              "import_select_created_objects": False, "import_scene_extras": False,
              "import_scene_as_collection": False}
    known = bpy.ops.import_scene.gltf.get_rna_type().properties.keys()
    return {key: value for key, value in wanted.items() if key in known}


def run_gltf_importer(path: Path) -> list:
    """Import ``path``; returns the new objects (wherever the importer linked them)."""
    if not hasattr(bpy.types, "IMPORT_SCENE_OT_gltf"):
        raise ImportFailed("Blender's glTF 2.0 importer is disabled: enable the 'glTF 2.0 format' add-on")
    before = {obj.as_pointer() for obj in bpy.data.objects}
    result = bpy.ops.import_scene.gltf(filepath=str(path), **_importer_options())
    if "FINISHED" not in result:
        raise ImportFailed(f"Blender's glTF importer could not read {path}")
    return [obj for obj in bpy.data.objects if obj.as_pointer() not in before]


def _move_to(objects: list, collection) -> None:
    for obj in objects:
        for owner in list(obj.users_collection):
            owner.objects.unlink(obj)
        collection.objects.link(obj)


def _kind(obj) -> str:
    """The surface kind: our GLB nodes are named by kind (and carry it in extras)."""
    return str(obj.get("surface_kind") or _SUFFIX.sub("", obj.name))


def _images_of(obj) -> set:
    return {node.image for slot in obj.material_slots if slot.material and slot.material.node_tree
            for node in slot.material.node_tree.nodes if node.type == "TEX_IMAGE" and node.image}


def _rename(objects: list, prefix: str) -> None:
    """``{prefix}{kind}`` for objects, meshes and materials, ``{prefix}atlas`` for the image: a second
    tile must not end up with a ``terrain.001`` or share another tile's ``atlas``."""
    for obj in objects:
        name = f"{prefix}{obj['satforge_kind']}"
        obj.name = obj.data.name = name
        for slot in obj.material_slots:
            if slot.material is not None and slot.material.users == 1:
                slot.material.name = name
        for image in _images_of(obj):
            image.name = f"{prefix}atlas"


def ensure_class_ids(obj, doc: dict, blob: bytes) -> None:
    """The class id as an INT point attribute ``_FEATURE_ID_0``.

    Blender 5's importer brings it in; older importers drop it. Then read the accessor ourselves and
    give each Blender vertex the id of the glTF vertex at the same position (importers may reorder
    and merge vertices, positions survive exactly: the Y-up to Z-up swap only negates).
    """
    mesh = obj.data
    attribute = mesh.attributes.get(FEATURE_ATTRIBUTE)
    if attribute is not None and attribute.data_type == "INT" and attribute.domain == "POINT":
        return
    if attribute is not None:  # e.g. a float attribute: replace it by the integer one
        mesh.attributes.remove(attribute)
    node = next((n for n in doc.get("nodes", []) if n.get("name") == obj["satforge_kind"] and "mesh" in n), None)
    ids = np.zeros(len(mesh.vertices), np.int32)
    if node is not None:
        prim = doc["meshes"][node["mesh"]]["primitives"][0]
        if FEATURE_ATTRIBUTE in prim["attributes"]:
            pos = glb.accessor(doc, blob, prim["attributes"]["POSITION"]).astype(np.float32)
            cls = glb.accessor(doc, blob, prim["attributes"][FEATURE_ATTRIBUTE])[:, 0].astype(np.int32)
            # "+ 0" turns -0.0 into +0.0 on both sides: equal positions must give equal bytes.
            blender = np.stack([pos[:, 0], -pos[:, 2], pos[:, 1]], 1).astype(np.float32) + np.float32(0)
            lookup = {row.tobytes(): c for row, c in zip(blender, cls)}
            co = np.empty(len(mesh.vertices) * 3, np.float32)
            mesh.vertices.foreach_get("co", co)
            co = co.reshape(-1, 3) + np.float32(0)
            ids = np.array([lookup.get(row.tobytes(), 0) for row in co], np.int32)
    attribute = mesh.attributes.new(FEATURE_ATTRIBUTE, "INT", "POINT")
    attribute.data.foreach_set("value", ids)


def import_tile_glb(path: Path, collection, prefix: str) -> list:
    """Import one of our GLBs into ``collection``; returns its mesh objects sorted by kind.
    Raises ImportFailed (the caller removes whatever was created)."""
    doc, blob = glb.read_glb(path)
    objects = [obj for obj in run_gltf_importer(path) if obj.type == "MESH"]
    if not objects:
        raise ImportFailed(f"{path} holds no mesh")
    _move_to(objects, collection)
    for obj in objects:
        obj["satforge_kind"] = _kind(obj)
        ensure_class_ids(obj, doc, blob)
    _rename(objects, prefix)
    for obj in objects:
        obj["satforge_mesh_hash"] = mesh_hash(obj)
    return sorted(objects, key=lambda o: o["satforge_kind"])


def place(objects: list, location: tuple[float, float, float]) -> None:
    """Put the objects' origin (the tile or chunk centre) at ``location``; export compares it later."""
    for obj in objects:
        obj.location = location
        obj["satforge_location"] = list(obj.location)


def record_source(collection, files: dict[str, list[Path]], objects: list, preset: str) -> None:
    """What batch export checks before handing out the worker's files instead of re-exporting:
    the files of each format with their hashes, the objects that came from them, the preset."""
    collection["satforge_files"] = json.dumps({
        fmt: [{"path": str(p), "sha256": hashlib.sha256(Path(p).read_bytes()).hexdigest()} for p in paths]
        for fmt, paths in files.items()})
    collection["satforge_objects"] = json.dumps(sorted(obj.name for obj in objects))
    collection["satforge_preset"] = preset
