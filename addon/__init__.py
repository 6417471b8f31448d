"""Blender-side glue (UI, operators). Thin by design: it runs ``python -m satforge`` as a worker
process and imports what the core writes; the core never imports ``bpy``.

Modules, one job each:
    worker, commands, interpreter, raster_files, glb, world_files   no bpy: subprocess, argv, files
    paths, presets, props, prefs                                     settings and where files go
    jobs, job_operator                                               one worker run, stepped on the main thread
    blend_images, importing, georef, mesh_hash, datablocks           inputs from the .blend, results into it
    ops_generate, ops_import_splats, ops_extend, ops_export, ops_cancel, ops_presets    the operators
    export_reuse, export_blender                                     the two ways batch export writes a file
    ui                                                               sidebar panels, Outliner menu entry
"""

import atexit

# Submodules are imported by register(), not here: importing ``satforge.addon.worker`` (and the
# other bpy-free modules) must work without Blender, for tests and tools.

_registered = False


def _classes() -> tuple:
    from . import (
        ops_cancel,
        ops_export,
        ops_extend,
        ops_generate,
        ops_import_splats,
        ops_presets,
        prefs,
        props,
        ui,
    )

    return (*props.CLASSES, *prefs.CLASSES, *ops_generate.CLASSES, *ops_import_splats.CLASSES, *ops_extend.CLASSES,
            *ops_export.CLASSES, *ops_cancel.CLASSES, *ops_presets.CLASSES, *ui.CLASSES)


def register() -> None:
    global _registered
    import bpy

    from . import props, ui

    for cls in _classes():
        bpy.utils.register_class(cls)
    props.register_properties()
    ui.register_menus()
    # Blender disables the add-ons it enabled before Python ends, not one a script registered by
    # calling register() (the pip bpy module). That module shuts Blender down only when Python frees
    # it at exit, and a class or menu function of ours still registered keeps it alive: bpy 4.5 then
    # hangs for good (its audio thread is never joined), 4.2 may crash. So Python's exit unregisters
    # us first, while bpy still works.
    atexit.register(unregister)
    _registered = True


def unregister() -> None:
    """Undo register(); a second call does nothing (Blender's own add-on shutdown may follow the
    exit hook's call)."""
    global _registered
    import bpy

    from . import jobs, props, ui

    if not _registered:
        return
    _registered = False
    atexit.unregister(unregister)
    jobs.cancel_active()  # a worker must not outlive the add-on
    ui.unregister_menus()
    props.unregister_properties()
    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
