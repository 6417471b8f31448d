"""Batch export of anything else (edited, hand-made, whole worlds): Blender's own exporters.

glTF: +Y up, modifiers applied, class ids kept (``_FEATURE_ID_0`` via the attributes option), no
custom properties as extras; the georeference of Blender's origin goes in
``asset.extras.georeference`` as our own files have it. OBJ: the same axes, and textures written by
us (Blender's OBJ exporter skips packed images, which is how the glTF importer stores them).
Both cap texture sides at what the preset allows for the exported ground area.
"""

from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

import bpy
import numpy as np
from mathutils import Vector

from . import georef, glb, presets, raster_files
from .blend_images import pixels


def ground_area(objects) -> float:
    """Square metres covered by the objects' world-space bounding box (x east, y north)."""
    corners = [obj.matrix_world @ Vector(corner) for obj in objects if obj.type == "MESH" for corner in obj.bound_box]
    if not corners:
        return 1.0
    width = max(c.x for c in corners) - min(c.x for c in corners)
    depth = max(c.y for c in corners) - min(c.y for c in corners)
    return max(width, 1.0) * max(depth, 1.0)


def _texture_nodes(objects):
    for obj in objects:
        for slot in obj.material_slots:
            material = slot.material
            if material is None or material.node_tree is None:
                continue
            for node in material.node_tree.nodes:
                if node.type == "TEX_IMAGE" and node.image is not None:
                    yield material, node


def _scaled_copy(image, cap: int):
    """A temporary copy of ``image`` no larger than ``cap`` on its longer side (or None if it fits)."""
    width, height = image.size
    if max(width, height) <= cap:
        return None
    factor = cap / max(width, height)
    copy = image.copy()
    copy.scale(max(1, round(width * factor)), max(1, round(height * factor)))
    return copy


@contextmanager
def capped_textures(objects, cap: int):
    """While inside, image nodes of the objects' materials use copies scaled to ``cap``; afterwards
    the materials are exactly as before and the copies are gone."""
    swapped, copies = [], {}
    try:
        for _material, node in _texture_nodes(objects):
            image = node.image
            if image.name not in copies:
                copies[image.name] = _scaled_copy(image, cap)
            if copies[image.name] is not None:
                swapped.append((node, image))
                node.image = copies[image.name]
        yield
    finally:
        for node, image in swapped:
            node.image = image
        for copy in copies.values():
            if copy is not None:
                bpy.data.images.remove(copy)


@contextmanager
def only_selected(context, objects):
    """Select exactly ``objects`` for an exporter's 'selected only' option; restore afterwards."""
    layer = context.view_layer
    before = {obj.name: obj.select_get() for obj in layer.objects}
    active = layer.objects.active
    try:
        for obj in layer.objects:
            obj.select_set(False)
        for obj in objects:
            if obj.name in layer.objects:
                obj.select_set(True)
        yield
    finally:
        for obj in layer.objects:
            obj.select_set(before.get(obj.name, False))
        layer.objects.active = active


def _supported(operator, options: dict) -> dict:
    known = operator.get_rna_type().properties.keys()
    return {key: value for key, value in options.items() if key in known}


def export_gltf(context, path: Path, export_format: str, objects, collection, preset: dict) -> list[Path]:
    """One .glb or .gltf (+ .bin + images) of ``collection`` (or of ``objects`` when None)."""
    options = {"export_format": export_format, "export_yup": True, "export_apply": True,
               "export_attributes": True, "export_extras": False, "export_cameras": False,
               "export_lights": False, "export_animations": False, "export_image_format": "AUTO"}
    with capped_textures(objects, presets.texture_cap(preset, ground_area(objects))):
        if collection is not None and "collection" in bpy.ops.export_scene.gltf.get_rna_type().properties:
            bpy.ops.export_scene.gltf(filepath=str(path), collection=collection.name,
                                      **_supported(bpy.ops.export_scene.gltf, options))
        else:
            with only_selected(context, objects):
                bpy.ops.export_scene.gltf(filepath=str(path), use_selection=True,
                                          **_supported(bpy.ops.export_scene.gltf, options))
    scene_georef = georef.scene_georeference(context.scene)
    if scene_georef is not None:
        glb.set_georeference(path, scene_georef)
    return [Path(path)] + _external_files(Path(path))


def _external_files(path: Path) -> list[Path]:
    """The .bin and images a .gltf refers to (none for a .glb)."""
    if path.suffix.lower() != ".gltf":
        return []
    doc = glb.read_document(path)
    uris = [item["uri"] for item in doc.get("buffers", []) + doc.get("images", []) if "uri" in item]
    return [path.parent / unquote(uri) for uri in uris if not uri.startswith("data:")]


def _write_texture(image, path: Path, cap: int) -> None:
    """Our own PNG of ``image`` (capped): the bytes do not depend on Blender's colour management."""
    copy = _scaled_copy(image, cap)
    try:
        data = pixels(copy or image)
        channels = 4 if data.shape[2] == 4 and (data[:, :, 3] < 1.0).any() else 3
        values = np.clip(np.rint(data[:, :, :channels] * 255.0), 0, 255).astype(np.uint8)
        raster_files.write(path, raster_files.png_bytes(values))
    finally:
        if copy is not None:
            bpy.data.images.remove(copy)


def _mtl_with_textures(text: str, textures: dict[str, str]) -> str:
    """Replace every ``map_Kd`` with ours: material name -> texture file name."""
    out, material = [], None
    for line in text.splitlines():
        if line.startswith("map_Kd "):
            continue
        out.append(line)
        if line.startswith("newmtl "):
            material = line[len("newmtl "):].strip()
            if material in textures:
                out.append(f"map_Kd {textures[material]}")
    return "\n".join(out) + "\n"


def export_obj(context, path: Path, objects, collection, preset: dict) -> list[Path]:
    """``path`` (.obj) + .mtl + one PNG per texture, Y up, -Z forward (north), modifiers applied."""
    options = {"apply_modifiers": True, "forward_axis": "NEGATIVE_Z", "up_axis": "Y", "export_materials": True,
               "export_uv": True, "export_normals": True, "path_mode": "STRIP"}
    options = _supported(bpy.ops.wm.obj_export, options)
    if collection is not None and "collection" in bpy.ops.wm.obj_export.get_rna_type().properties:
        bpy.ops.wm.obj_export(filepath=str(path), collection=collection.name, **options)
    else:
        with only_selected(context, objects):
            bpy.ops.wm.obj_export(filepath=str(path), export_selected_objects=True, **options)
    cap = presets.texture_cap(preset, ground_area(objects))
    textures, written = {}, {}
    for material, node in _texture_nodes(objects):
        if material.name in textures or not node.outputs["Color"].is_linked:
            continue  # one base-colour texture per material: OBJ has a single map_Kd
        name = f"{path.stem}_{bpy.path.clean_name(node.image.name)}.png"
        if name not in written:
            _write_texture(node.image, path.parent / name, cap)
            written[name] = path.parent / name
        textures[material.name] = name
    mtl = path.with_suffix(".mtl")
    if mtl.is_file():
        mtl.write_text(_mtl_with_textures(mtl.read_text(encoding="utf-8"), textures), encoding="utf-8")
    return [path] + ([mtl] if mtl.is_file() else []) + list(written.values())
