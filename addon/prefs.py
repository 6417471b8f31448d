"""Add-on preferences: the Python that runs the worker and a button that checks it; the learned
generators' weights files and a button that fetches the published ones (in the worker)."""

import bpy
from bpy.props import StringProperty

from .. import __version__
from . import commands, interpreter, jobs
from .job_operator import WorkerOperator
from .paths import ADDON_ID


class SATFORGE_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    python_path: StringProperty(
        name="Python Interpreter", subtype="FILE_PATH",
        description="Python that runs `python -m satforge` (needs torch and satforge's requirements); "
                    "empty: Blender's own")
    check_result: StringProperty(name="Check", default="", options={"SKIP_SAVE"})
    height_weights: StringProperty(
        name="RS3DAda Height Weights", subtype="FILE_PATH",
        description="RS3DAda_vitl_DPT_height.pth (or another source); empty: the file fetched into the hub cache")
    seg_weights: StringProperty(
        name="RS3DAda Land-Cover Weights", subtype="FILE_PATH",
        description="RS3DAda_vitl_DPT_segmentation.pth; empty: the fetched file (or the height file when only "
                    "that one is set)")
    sat3dgen_weights: StringProperty(
        name="Sat3DGen Weights", subtype="DIR_PATH",
        description="Folder with config.json and diffusion_pytorch_model.safetensors; empty: the fetched files")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "python_path")
        row = layout.row()
        row.operator(SATFORGE_OT_check_interpreter.bl_idname, icon="CHECKMARK")
        row.label(text=f"Using: {interpreter.choose(self.python_path)}")
        if self.check_result:
            layout.label(text=self.check_result, icon="INFO")
        layout.prop(self, "height_weights")
        layout.prop(self, "seg_weights")
        layout.prop(self, "sat3dgen_weights")
        row = layout.row()
        for name in ("rs3dada", "sat3dgen"):
            row.operator(SATFORGE_OT_fetch_weights.bl_idname, text=f"Fetch {name}", icon="IMPORT").name = name


def preferences(context=None):
    """The add-on's preferences, or None where the add-on is registered without being enabled in
    Blender's preferences (tests import the package and call register() directly)."""
    addon = (context or bpy.context).preferences.addons.get(ADDON_ID)
    return addon.preferences if addon is not None else None


def python_interpreter(context=None) -> str:
    prefs = preferences(context)
    return interpreter.choose(prefs.python_path if prefs is not None else "")


def weights_files(context=None) -> dict:
    """role -> weights file from the preferences (only the ones set)."""
    prefs = preferences(context)
    if prefs is None:
        return {}
    files = {"height": prefs.height_weights, "classes": prefs.seg_weights, "volume": prefs.sat3dgen_weights}
    return {role: bpy.path.abspath(path) for role, path in files.items() if path}


class SATFORGE_OT_check_interpreter(bpy.types.Operator):
    """Run the chosen Python with a tiny script and say what it is missing (satforge, torch, ...)"""

    bl_idname = "satforge.check_interpreter"
    bl_label = "Check Interpreter"

    python: StringProperty(name="Python", default="", description="Interpreter to check; empty: the preference")

    def execute(self, context):
        python = self.python or python_interpreter(context)
        ok, text = interpreter.summary(python, interpreter.check(python), __version__)
        prefs = preferences(context)
        if prefs is not None:
            prefs.check_result = text
        self.report({"INFO"} if ok else {"ERROR"}, text)
        return {"FINISHED"} if ok else {"CANCELLED"}


class SATFORGE_OT_fetch_weights(WorkerOperator, bpy.types.Operator):
    """Download the published weights into the Hugging Face cache (runs `satforge weights fetch` in the
    worker; ~1.5 GB per file, resumable)"""

    bl_idname = "satforge.fetch_weights"
    bl_label = "Fetch Weights"

    name: StringProperty(name="Weights", default="rs3dada", description="A registered file or group")
    timeout: bpy.props.FloatProperty(name="Timeout", default=0.0, min=0.0,
                                     description="Seconds before a synchronous run gives up; 0: no limit")

    def make_job(self, context):
        argv = commands.fetch_weights_argv(python_interpreter(context), self.name)
        return jobs.Job(f"Fetch {self.name}", argv, commands.worker_env(),
                        on_done=lambda _ctx, done: f"{self.name}: " + ", ".join(done.get("outputs", [])))


CLASSES = (SATFORGE_AP_preferences, SATFORGE_OT_check_interpreter, SATFORGE_OT_fetch_weights)
