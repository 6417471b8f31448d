"""Properties the panel edits (``scene.satforge``) and the running job's state (``window_manager.satforge_job``).

The job state lives on the window manager: it is session state, never saved in the .blend.
"""

import bpy
from bpy.props import (
    BoolProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from ..core.contract import GENERATORS as _GENERATORS
from ..core.contract import INPUT_ROLES
from ..core.contract import PALETTES as _PALETTES
from . import presets

PALETTES = tuple((name, label, description) for name, (label, description) in _PALETTES.items())
GENERATORS = tuple((name, label, description) for name, (label, description) in _GENERATORS.items())
FORMATS = (("GLB", "GLB", "One binary glTF file"),
           ("GLTF_SEPARATE", "glTF + .bin + textures", "glTF JSON with separate buffer and images"),
           ("OBJ", "OBJ + MTL", "Wavefront OBJ with materials and textures"))
EXPORT_MODES = (("COLLECTIONS", "Collections", "One file per selected collection"),
                ("OBJECTS", "Objects", "One file per selected object"))
__all__ = ["GENERATORS", "INPUT_ROLES", "PALETTES"]


def _path(what: str) -> StringProperty:
    return StringProperty(name=f"{what} File", subtype="FILE_PATH", description=f"{what} raster on disk")


def _image(what: str) -> StringProperty:
    return StringProperty(name=f"{what} Image", description=f"Or an image already in this .blend ({what})")


class SATFORGE_PG_settings(bpy.types.PropertyGroup):
    """What the panel's Generate, Extend Terrain and Batch Export buttons use."""

    rgb_path: _path("Orthophoto")
    rgb_image: _image("Orthophoto")
    height_path: _path("Height (DSM/nDSM)")
    height_image: _image("Height (DSM/nDSM)")
    dtm_path: _path("Terrain (DTM)")
    dtm_image: _image("Terrain (DTM)")
    semantic_path: _path("Land Cover")
    semantic_image: _image("Land Cover")
    palette: EnumProperty(name="Palette", items=PALETTES, default="openearthmap")
    generator: EnumProperty(name="Generator", items=GENERATORS, default="default",
                            description="RS3DAda estimates heights and land cover the inputs lack (weights in "
                                        "the add-on's preferences)")
    gsd: FloatProperty(name="GSD", description="Metres per pixel; 0: from the files' georeference",
                       default=0.0, min=0.0, max=100.0, unit="LENGTH")
    preset: EnumProperty(name="Preset", items=presets.enum_items,
                         description="Output preset (presets/*.toml and your own)")
    seed: IntProperty(name="Seed", default=0, min=0)
    tile_name: StringProperty(name="Tile Name", description="Collection name; empty: from the input file")
    # Extend terrain
    world_dir: StringProperty(name="World Folder", subtype="DIR_PATH",
                              description="Folder made by `satforge world` or by this panel")
    lod: IntProperty(name="LOD", default=0, min=0, max=5)
    chunk_size: FloatProperty(name="Chunk Size", default=128.0, min=16.0, max=1024.0, unit="LENGTH",
                              description="Only for a new world: chunk side in metres")
    world_lods: IntProperty(name="LODs", default=1, min=1, max=6, description="Only for a new world")
    # Batch export
    export_dir: StringProperty(name="Folder", subtype="DIR_PATH", default="//export/")
    export_format: EnumProperty(name="Format", items=FORMATS, default="GLB")
    export_pattern: StringProperty(name="Name", default="{collection}",
                                   description="File name: {collection}, {object}, {lod}, {x}, {y}")
    export_mode: EnumProperty(name="Export", items=EXPORT_MODES, default="COLLECTIONS")


class SATFORGE_PG_job(bpy.types.PropertyGroup):
    """The running worker, as the panel shows it. Written only on Blender's main thread."""

    running: BoolProperty(default=False)
    title: StringProperty(default="")
    progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    stage: StringProperty(default="")
    status: StringProperty(default="")
    last_message: StringProperty(default="", description="How the last run ended")
    last_failed: BoolProperty(default=False)


CLASSES = (SATFORGE_PG_settings, SATFORGE_PG_job)


def register_properties() -> None:
    bpy.types.Scene.satforge = PointerProperty(type=SATFORGE_PG_settings)
    bpy.types.WindowManager.satforge_job = PointerProperty(type=SATFORGE_PG_job)


def unregister_properties() -> None:
    del bpy.types.WindowManager.satforge_job
    del bpy.types.Scene.satforge
