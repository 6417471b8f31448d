"""``bpy.ops.satforge.import_splats``: a 3DGS / 2DGS .ply through the worker (``satforge convert``),
imported like a generated tile: one textured object per surface kind, georeferenced."""

import shutil
import tempfile
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, StringProperty

from . import commands, jobs, paths, presets
from .job_operator import UserError, WorkerOperator
from .ops_generate import import_tile
from .prefs import python_interpreter

UP_AXES = [(axis, axis, f"The file's {axis} axis points up") for axis in ("+z", "-z", "+y", "-y", "+x", "-x")]


class SATFORGE_OT_import_splats(WorkerOperator, bpy.types.Operator):
    """Import a Gaussian-splat scene (.ply, 3DGS or 2DGS) as textured, georeferenced meshes"""

    bl_idname = "satforge.import_splats"
    bl_label = "Import Splats"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(name="Splat File", subtype="FILE_PATH")
    filter_glob: StringProperty(default="*.ply", options={"HIDDEN"})
    up: EnumProperty(name="Up Axis", items=UP_AXES, default="+z")
    scale: FloatProperty(name="Metres per Unit", default=1.0, min=1e-6)
    georef: StringProperty(name="Georeference", description="CRS:X,Y[,Z] of the file's origin; empty: "
                                                             "NAME.geo.json beside the file, else none")
    clip: BoolProperty(name="Drop Floaters", default=False, description="Drop faint and isolated splats")
    preset: StringProperty(name="Preset", default="game", description="game, twin, user:NAME or a .toml file")
    timeout: FloatProperty(name="Timeout", default=0.0, min=0.0,
                           description="Seconds before a synchronous run gives up; 0: no limit")

    def invoke(self, context, event):
        if not self.filepath and context.window is not None and not bpy.app.background:
            context.window_manager.fileselect_add(self)  # pick the file first; execute() follows
            return {"RUNNING_MODAL"}
        return super().invoke(context, event)

    def make_job(self, context):
        ply = Path(bpy.path.abspath(self.filepath))
        if not ply.is_file():
            raise UserError(f"{ply}: no such splat file")
        name = ply.stem or "splats"
        out = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=paths.user_dir("tiles")))
        argv = commands.convert_splats_argv(python_interpreter(context), ply, out, self.up, self.scale, self.georef,
                                            self.clip, presets.cli_value(self.preset))

        def cleanup(succeeded: bool) -> None:
            if not succeeded:
                shutil.rmtree(out, ignore_errors=True)

        return jobs.Job(f"Import {name}", argv, commands.worker_env(),
                        on_done=lambda ctx, done: import_tile(ctx, out, name, done), cleanup=cleanup)


def import_menu(self, context):
    """File > Import: the splat importer."""
    self.layout.operator(SATFORGE_OT_import_splats.bl_idname, text="Gaussian Splats as Meshes (.ply)")


CLASSES = (SATFORGE_OT_import_splats,)
