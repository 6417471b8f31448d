"""register()/unregister() twice in one bpy session: no error, and nothing of ours left behind."""
from __future__ import annotations

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
