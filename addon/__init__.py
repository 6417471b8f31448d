"""Blender-side glue (UI, operators). Thin by design: it runs ``python -m satforge`` as a worker
process and imports what the core writes; the core never imports ``bpy``.

The operators and panel are the Blender add-on issue's work; until then the extension registers
nothing, so installing it is harmless.
"""
from __future__ import annotations

_CLASSES: tuple = ()


def register() -> None:
    import bpy

    for cls in _CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    import bpy

    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
