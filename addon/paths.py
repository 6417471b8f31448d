"""Names and folders the add-on needs inside Blender.

``ADDON_ID`` is the package Blender knows the add-on by: ``bl_ext.<repo>.satforge`` when installed
as an extension, ``satforge`` when imported from a checkout (tests, ``pip install -e``).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import bpy

ADDON_ID = __package__.rpartition(".")[0]


def user_dir(name: str) -> Path:
    """A folder for the add-on's own files (user presets, generated tiles), created on demand.

    Installed as an extension: ``bpy.utils.extension_path_user`` (survives add-on updates).
    Otherwise (a checkout, the tests) Blender refuses that call, so fall back to Blender's user
    config folder; tests point this function elsewhere.
    """
    try:
        return Path(bpy.utils.extension_path_user(ADDON_ID, path=name, create=True))
    except ValueError:
        folder = bpy.utils.user_resource("CONFIG", path=f"satforge/{name}", create=True)
        if folder:
            return Path(folder)
        path = Path(tempfile.gettempdir()) / "satforge-blender" / name
        path.mkdir(parents=True, exist_ok=True)
        return path
