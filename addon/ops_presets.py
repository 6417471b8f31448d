"""``bpy.ops.satforge.save_preset``: save the preset settings as the user's own .toml."""

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty

from . import presets

_FEATURE_ITEMS = (("attribute", "Attribute", "_FEATURE_ID_0 only"),
                  ("ext_mesh_features", "EXT_mesh_features", "Feature ids with the EXT_mesh_features extension"))


class SATFORGE_OT_save_preset(bpy.types.Operator):
    """Save these output settings as a user preset (a .toml in the add-on's user folder)"""

    bl_idname = "satforge.save_preset"
    bl_label = "Save Preset"

    name: StringProperty(name="Name", default="my_preset")
    description: StringProperty(name="Description", default="")
    triangles_per_128m: IntProperty(name="Triangles per 128 m", default=15000, min=2000)
    atlas_side_per_128m: IntProperty(name="Atlas Side per 128 m", default=2048, min=64, max=16384)
    texels_per_image_pixel: FloatProperty(name="Texels per Image Pixel", default=2.0, min=0.25, max=8.0)
    max_atlas_side: IntProperty(name="Max Atlas Side", default=8192, min=64, max=16384)
    feature_ids: EnumProperty(name="Feature IDs", items=_FEATURE_ITEMS, default="attribute")
    base: StringProperty(name="Start From", default="", description="Preset whose values the dialog starts with")

    def invoke(self, context, event):
        base = self.base or context.scene.satforge.preset
        try:
            values = presets.load(base)
        except ValueError:
            values = {}
        for key in presets.FIELDS[2:]:
            if key in values:
                setattr(self, key, values[key])
        self.description = self.description or f"Based on {values.get('name', base)}"
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context):
        values = {key: getattr(self, key) for key in presets.FIELDS}
        try:
            path = presets.save(values)
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        settings = getattr(context.scene, "satforge", None)
        if settings is not None:
            presets.enum_items()  # refresh the menu so the new identifier exists
            settings.preset = presets.USER_PREFIX + self.name
        self.report({"INFO"}, f"saved preset {self.name} to {path}")
        return {"FINISHED"}


CLASSES = (SATFORGE_OT_save_preset,)
