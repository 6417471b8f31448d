"""Blender-side glue (UI, operators). Thin by design: it runs ``python -m satforge`` as a worker
process and imports what the core writes; the core never imports ``bpy``.

Modules, one job each:
    worker, commands, interpreter, raster_files, glb, world_files   no bpy: subprocess, argv, files
    paths, presets, props, prefs                                     settings and where files go
    jobs, job_operator                                               one worker run, stepped on the main thread
    blend_images, importing, georef, mesh_hash, datablocks           inputs from the .blend, results into it
    ops_generate, ops_extend, ops_export, ops_cancel, ops_presets    the operators
    export_reuse, export_blender                                     the two ways batch export writes a file
    ui                                                               sidebar panels, Outliner menu entry
"""

# Submodules are imported by register(), not here: importing ``satforge.addon.worker`` (and the
# other bpy-free modules) must work without Blender, for tests and tools.


def _classes() -> tuple:
    from . import (
        ops_cancel,
        ops_export,
        ops_extend,
        ops_generate,
        ops_presets,
        prefs,
        props,
        ui,
    )

    return (*props.CLASSES, *prefs.CLASSES, *ops_generate.CLASSES, *ops_extend.CLASSES, *ops_export.CLASSES,
            *ops_cancel.CLASSES, *ops_presets.CLASSES, *ui.CLASSES)


def register() -> None:
    import bpy

    from . import props, ui

    for cls in _classes():
        bpy.utils.register_class(cls)
    props.register_properties()
    ui.register_menus()


def unregister() -> None:
    import bpy

    from . import jobs, props, ui

    jobs.cancel_active()  # a worker must not outlive the add-on
    ui.unregister_menus()
    props.unregister_properties()
    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
