"""SatForge: satellite tiles to textured 3D. Also the Blender extension's entry point.

Importing this package never imports ``bpy``: the command line and the core run anywhere.
"""
__version__ = "0.1.0"


def register() -> None:
    from . import addon

    addon.register()


def unregister() -> None:
    from . import addon

    addon.unregister()
