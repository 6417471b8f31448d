"""register()/unregister() twice in one bpy session: no error, and nothing of ours left behind,
nothing left running either."""
from __future__ import annotations

import sys

import pytest

bpy = pytest.importorskip("bpy", reason="Blender's bpy module is not installed (pip install bpy)")

OPERATORS = ("generate", "extend_terrain", "batch_export", "cancel", "save_preset", "check_interpreter")


def _ours() -> dict:
    """Everything SatForge can register: types, operators, properties, menu entries."""
    types = sorted(name for name in dir(bpy.types) if name.upper().startswith("SATFORGE_"))
    operators = []
    for name in OPERATORS:
        try:
            getattr(bpy.ops.satforge, name).get_rna_type()
            operators.append(name)
        except (KeyError, AttributeError):
            pass
    properties = [f"{owner.__name__}.{prop}" for owner, prop in ((bpy.types.Scene, "satforge"),
                                                                 (bpy.types.WindowManager, "satforge_job"))
                  if prop in owner.bl_rna.properties or hasattr(owner, prop)]
    menu = [f.__module__ for f in bpy.types.OUTLINER_MT_collection._dyn_ui_initialize()
            if "satforge" in getattr(f, "__module__", "")]
    from satforge import addon

    classes = sorted(cls.__name__ for cls in addon._classes() if cls.is_registered)
    return {"types": types, "operators": operators, "properties": properties, "menus": menu, "classes": classes}


def test_register_and_unregister_twice_leave_nothing_behind():
    import satforge

    nothing = {"types": [], "operators": [], "properties": [], "menus": [], "classes": []}
    assert _ours() == nothing, "something of SatForge's was registered before the test"
    for _ in range(2):
        satforge.register()
        registered = _ours()
        assert set(registered["operators"]) == set(OPERATORS)
        assert registered["properties"] and registered["menus"]
        assert "SATFORGE_PT_main" in registered["types"]
        assert "SATFORGE_AP_preferences" in registered["classes"]  # known by its bl_idname, not in bpy.types
        satforge.unregister()
        assert _ours() == nothing


@pytest.mark.skipif(sys.platform != "linux", reason="child processes are listed from /proc")
def test_unregister_ends_a_running_worker_and_leaves_nothing_running():
    """A modal run in progress when the add-on goes: its worker, reader threads and timer go too."""
    from helpers_addon import leftovers

    import satforge
    from satforge.addon import jobs

    before = leftovers()
    satforge.register()
    try:
        job = jobs.Job("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], None,
                       on_done=lambda _context, _done: "")
        job.start(bpy.context)
        job.timer = bpy.context.window_manager.event_timer_add(0.1)  # as the modal operator's invoke() does
        assert leftovers()["children"] and leftovers()["threads"]
    finally:
        satforge.unregister()
    assert job.state == jobs.CANCELLED and job.worker.returncode is not None and job.timer is None
    assert jobs.active() is None and leftovers() == before
    satforge.unregister()  # a second call (Blender's add-on shutdown after the exit hook) does nothing
