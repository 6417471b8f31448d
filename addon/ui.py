"""The SatForge tab in the 3D View sidebar (N panel), and a Batch Export entry in the Outliner.

Panels only read properties and place buttons; the buttons carry the panel's settings into the
operators' keyword properties, so the UI and scripts run exactly the same code.
"""

import bpy

from . import jobs
from .props import INPUT_ROLES

_ROLE_LABELS = {"rgb": "Orthophoto", "height": "Height", "dtm": "Terrain (DTM)", "semantic": "Land Cover"}


class _SidebarPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "SatForge"

    @classmethod
    def poll(cls, context):
        return getattr(context.scene, "satforge", None) is not None


class SATFORGE_PT_main(_SidebarPanel, bpy.types.Panel):
    bl_label = "SatForge"

    def draw(self, context):
        draw_job(self.layout, context.window_manager.satforge_job)


def draw_job(layout, state) -> None:
    """Progress bar, status and Cancel while a job runs; how the last one ended otherwise."""
    if state.running:
        layout.progress(factor=state.progress, type="BAR", text=f"{state.title}: {state.progress * 100:.0f}%")
        layout.label(text=state.status or "working", icon="SORTTIME")
        layout.operator("satforge.cancel", icon="CANCEL")
    elif state.last_message:
        layout.label(text=state.last_message, icon="ERROR" if state.last_failed else "CHECKMARK")
    else:
        layout.label(text="Generators run in a separate worker process", icon="INFO")


class SATFORGE_PT_generate(_SidebarPanel, bpy.types.Panel):
    bl_label = "Generate Tile"
    bl_parent_id = "SATFORGE_PT_main"

    def draw(self, context):
        layout, settings = self.layout, context.scene.satforge
        layout.use_property_split = False
        for role in INPUT_ROLES:
            box = layout.column(align=True)
            box.label(text=_ROLE_LABELS[role])
            box.prop(settings, f"{role}_path", text="")
            box.prop_search(settings, f"{role}_image", bpy.data, "images", text="", icon="IMAGE_DATA")
        layout.prop(settings, "palette")
        layout.prop(settings, "generator")
        layout.prop(settings, "gsd")
        row = layout.row(align=True)
        row.prop(settings, "preset")
        row.operator("satforge.save_preset", text="", icon="ADD")
        layout.prop(settings, "seed")
        layout.prop(settings, "tile_name")
        row = layout.row()
        row.enabled = jobs.active() is None
        op = row.operator("satforge.generate", icon="MESH_GRID")
        for role in INPUT_ROLES:
            setattr(op, f"{role}_path", getattr(settings, f"{role}_path"))
            setattr(op, f"{role}_image", getattr(settings, f"{role}_image"))
        op.palette, op.gsd, op.preset = settings.palette, settings.gsd, settings.preset
        op.seed, op.tile_name, op.generator = settings.seed, settings.tile_name, settings.generator
        row = layout.row()
        row.enabled = jobs.active() is None
        row.operator("satforge.import_splats", text="Import Splats...", icon="IMPORT").preset = settings.preset


class SATFORGE_PT_terrain(_SidebarPanel, bpy.types.Panel):
    bl_label = "Extend Terrain"
    bl_parent_id = "SATFORGE_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout, settings = self.layout, context.scene.satforge
        layout.prop(settings, "world_dir")
        layout.prop(settings, "lod")
        col = layout.column(align=True)
        col.label(text="New world:")
        col.prop(settings, "chunk_size")
        col.prop(settings, "world_lods")
        layout.label(text="Around the selected chunk, else the 3D cursor")
        row = layout.row()
        row.enabled = jobs.active() is None
        op = row.operator("satforge.extend_terrain", icon="MOD_ARRAY")
        op.world_dir, op.lod = settings.world_dir, settings.lod
        op.chunk_size, op.lods = settings.chunk_size, settings.world_lods
        op.seed, op.preset = settings.seed, settings.preset


class SATFORGE_PT_export(_SidebarPanel, bpy.types.Panel):
    bl_label = "Batch Export"
    bl_parent_id = "SATFORGE_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout, settings = self.layout, context.scene.satforge
        layout.prop(settings, "export_dir")
        layout.prop(settings, "export_format")
        layout.prop(settings, "export_pattern")
        layout.prop(settings, "export_mode", expand=True)
        layout.prop(settings, "preset")
        op = layout.operator("satforge.batch_export", icon="EXPORT")
        _fill_export(op, settings)


def _fill_export(op, settings) -> None:
    op.directory, op.format, op.pattern = settings.export_dir, settings.export_format, settings.export_pattern
    op.mode, op.preset = settings.export_mode, settings.preset


def outliner_menu(self, context):
    """Outliner > collection right-click: export the selected collections."""
    settings = getattr(context.scene, "satforge", None)
    if settings is None:
        return
    self.layout.separator()
    op = self.layout.operator("satforge.batch_export", text="SatForge Batch Export", icon="EXPORT")
    _fill_export(op, settings)
    op.mode = "COLLECTIONS"


CLASSES = (SATFORGE_PT_main, SATFORGE_PT_generate, SATFORGE_PT_terrain, SATFORGE_PT_export)


def register_menus() -> None:
    from .ops_import_splats import import_menu

    bpy.types.OUTLINER_MT_collection.append(outliner_menu)
    bpy.types.TOPBAR_MT_file_import.append(import_menu)


def unregister_menus() -> None:
    from .ops_import_splats import import_menu

    bpy.types.OUTLINER_MT_collection.remove(outliner_menu)
    bpy.types.TOPBAR_MT_file_import.remove(import_menu)
