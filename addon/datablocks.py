"""All-or-nothing imports: remember which data-blocks existed, remove whatever was added since.

A failed or cancelled run must leave the .blend as it was, never a half-built tile.
"""

import bpy

# The bpy.data collections an import can add to (glTF importer: objects, meshes, materials,
# images, node groups; ours: collections).
KINDS = ("collections", "objects", "meshes", "materials", "images", "textures", "node_groups", "actions",
         "cameras", "lights", "curves")


# Scene custom properties an import may set (the BlenderGIS georeference of the origin).
SCENE_KEYS = ("crs", "crsx", "crsy")


def snapshot(scene=None) -> dict:
    """Pointers of every data-block of the watched kinds (and ``scene``'s georeference keys)."""
    state = {kind: {block.as_pointer() for block in getattr(bpy.data, kind)} for kind in KINDS}
    if scene is not None:
        state["scene"] = (scene, {key: scene[key] for key in SCENE_KEYS if key in scene})
    return state


def counts() -> dict[str, int]:
    return {kind: len(getattr(bpy.data, kind)) for kind in KINDS}


def remove_new(before: dict) -> int:
    """Remove the data-blocks added since ``before`` (objects first, so their data has no users
    left) and put the scene's georeference keys back as they were."""
    removed = 0
    for kind in KINDS:
        store = getattr(bpy.data, kind)
        new = [block for block in store if block.as_pointer() not in before[kind]]
        if new:
            bpy.data.batch_remove(new)
            removed += len(new)
    if "scene" in before:
        scene, keys = before["scene"]
        for key in SCENE_KEYS:
            if key in keys:
                scene[key] = keys[key]
            elif key in scene:
                del scene[key]
    return removed
