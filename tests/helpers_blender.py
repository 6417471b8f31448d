"""Import an exported file into Blender (the pip ``bpy`` module, in this process) and summarise it."""
from __future__ import annotations

from pathlib import Path

import pytest


def _has_image_texture(obj) -> bool:
    """True when a material of ``obj`` has an Image Texture node holding a loaded, non-empty image."""
    for slot in obj.material_slots:
        material = slot.material
        if material is None or material.node_tree is None:
            continue
        for node in material.node_tree.nodes:
            if node.type == "TEX_IMAGE" and node.image is not None and node.image.size[0] > 0:
                return True
    return False


def import_in_blender(path: str | Path) -> dict:
    """Import a .glb/.gltf/.obj into an empty Blender scene.

    Returns {object name: {'vertices', 'faces', 'uv_layers', 'materials', 'has_image_texture',
    'bbox' ((min x, y, z), (max x, y, z)) in Blender world space (Z up)}} for every mesh object.
    Skips the calling test when ``bpy`` cannot be imported.
    """
    bpy = pytest.importorskip("bpy", reason="Blender's bpy module is not installed (pip install bpy)")
    from mathutils import Vector

    path = Path(path)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    if path.suffix.lower() in (".glb", ".gltf"):
        bpy.ops.import_scene.gltf(filepath=str(path))
    elif path.suffix.lower() == ".obj":
        bpy.ops.wm.obj_import(filepath=str(path))
    else:
        raise ValueError(f"cannot import {path} into Blender: not .glb, .gltf or .obj")
    summary = {}
    for obj in bpy.context.scene.objects:
        if obj.type != "MESH":
            continue
        corners = [obj.matrix_world @ Vector(corner) for corner in obj.bound_box]
        summary[obj.name] = {
            "vertices": len(obj.data.vertices),
            "faces": len(obj.data.polygons),
            "uv_layers": [layer.name for layer in obj.data.uv_layers],
            "materials": [slot.material.name for slot in obj.material_slots if slot.material],
            "has_image_texture": _has_image_texture(obj),
            "bbox": (tuple(min(c[i] for c in corners) for i in range(3)),
                     tuple(max(c[i] for c in corners) for i in range(3))),
        }
    return summary
