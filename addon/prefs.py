"""Add-on preferences: the Python that runs the worker, and a button that checks it."""

import bpy
from bpy.props import StringProperty

from .. import __version__
from . import interpreter
from .paths import ADDON_ID


class SATFORGE_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    python_path: StringProperty(
        name="Python Interpreter", subtype="FILE_PATH",
        description="Python that runs `python -m satforge` (needs torch and satforge's requirements); "
                    "empty: Blender's own")
    check_result: StringProperty(name="Check", default="", options={"SKIP_SAVE"})

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "python_path")
        row = layout.row()
        row.operator(SATFORGE_OT_check_interpreter.bl_idname, icon="CHECKMARK")
        row.label(text=f"Using: {interpreter.choose(self.python_path)}")
        if self.check_result:
            layout.label(text=self.check_result, icon="INFO")


def preferences(context=None):
    """The add-on's preferences, or None where the add-on is registered without being enabled in
    Blender's preferences (tests import the package and call register() directly)."""
    addon = (context or bpy.context).preferences.addons.get(ADDON_ID)
    return addon.preferences if addon is not None else None


def python_interpreter(context=None) -> str:
    prefs = preferences(context)
    return interpreter.choose(prefs.python_path if prefs is not None else "")


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


CLASSES = (SATFORGE_AP_preferences, SATFORGE_OT_check_interpreter)
