"""Shared pieces of the Blender add-on tests: the registered add-on, what of it is left running, a
small tile, summaries of what landed in the scene, and a stand-in for Blender's UILayout (the pip bpy
module draws no UI)."""
from __future__ import annotations

import inspect
import os
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="Blender's bpy module is not installed (pip install bpy)")

TILE_PX, TILE_GSD = 128, 0.5  # a 64 m x 64 m tile: ~4 s through the worker


@pytest.fixture(scope="module", name="addon")
def addon_fixture(tmp_path_factory):
    """The add-on registered in this process, its user folder redirected to a temporary one."""
    import satforge
    from satforge.addon import paths

    user = tmp_path_factory.mktemp("addon_user")

    def user_dir(name: str) -> Path:
        folder = user / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paths, "user_dir", user_dir)
        satforge.register()
        try:
            yield SimpleNamespace(user=user, satforge=satforge)
        finally:
            satforge.unregister()


def leftovers() -> dict[str, list[str]]:
    """What of ours could still be running: threads other than the main one, Blender timers and
    app handlers holding a SatForge function, and this process's child processes (live or unreaped)."""
    ours = [value for name, module in list(sys.modules.items()) if name.startswith("satforge.addon")
            for value in vars(module).values() if inspect.isfunction(value) and value.__module__ == name]
    handlers = [f"{kind}: {getattr(f, '__qualname__', f)}" for kind in dir(bpy.app.handlers)
                if isinstance(getattr(bpy.app.handlers, kind), list)
                for f in getattr(bpy.app.handlers, kind) if "satforge" in getattr(f, "__module__", "")]
    return {"threads": sorted(t.name for t in threading.enumerate() if t is not threading.main_thread()),
            "timers": sorted(f.__qualname__ for f in ours if bpy.app.timers.is_registered(f)),
            "handlers": sorted(handlers), "children": child_processes()}


def child_processes() -> list[str]:
    """``PID STATE COMMAND`` of each child of this process (Linux /proc; empty elsewhere)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # it ended while we looked
            continue
        command, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if int(rest[1]) == os.getpid():
            found.append(f"{stat.parent.name} {rest[0]} {command}")
    return sorted(found)


def fresh_scene() -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)


def small_tile(directory: Path, seed: int = 3, px: int = TILE_PX) -> dict[str, Path]:
    from tiles import make_city_tile, write_tile

    return write_tile(directory, make_city_tile(px, TILE_GSD, seed=seed), gsd=TILE_GSD)


def counts() -> dict[str, int]:
    from satforge.addon import datablocks

    return datablocks.counts()


def has_image_texture(obj) -> bool:
    return any(node.type == "TEX_IMAGE" and node.image is not None and node.image.size[0] > 0
               for slot in obj.material_slots if slot.material and slot.material.node_tree
               for node in slot.material.node_tree.nodes)


def summary(objects, kind_of) -> dict[str, dict]:
    """kind -> vertex and face counts, UV layers present, image-textured material present."""
    return {kind_of(obj): {"vertices": len(obj.data.vertices), "faces": len(obj.data.polygons),
                           "uv": len(obj.data.uv_layers) > 0, "image_texture": has_image_texture(obj)}
            for obj in objects if obj.type == "MESH"}


def world_vertices(obj) -> np.ndarray:
    """(N, 3) float32 world-space vertex positions: local float32 + location (no rotation/scale)."""
    co = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    return co.reshape(-1, 3) + np.asarray(obj.location, np.float32)


class _OperatorButton:
    """What layout.operator() returns: only the operator's own properties can be set."""

    def __init__(self, idname: str):
        module, name = idname.split(".")
        rna = getattr(getattr(bpy.ops, module), name).get_rna_type()
        object.__setattr__(self, "_names", set(rna.properties.keys()))

    def __setattr__(self, name, value):
        assert name in self._names, f"operator has no property {name!r}"
        object.__setattr__(self, name, value)


class FakeLayout:
    """Stands in for UILayout (the pip bpy module draws no UI) and checks every call against
    UILayout's real RNA: function and keyword names, icons, and the properties drawn."""

    _functions = bpy.types.UILayout.bl_rna.functions
    _icons = frozenset(_functions["label"].parameters["icon"].enum_items.keys())
    _settable = frozenset(bpy.types.UILayout.bl_rna.properties.keys())

    def __init__(self, record: list | None = None):
        object.__setattr__(self, "record", [] if record is None else record)

    def __getattr__(self, name):
        assert name in self._functions, f"UILayout has no function {name!r}"
        params = self._functions[name].parameters

        def call(*args, **kwargs):
            names = [p.identifier for p in params]
            assert set(kwargs) <= set(names), f"UILayout.{name}() has no argument {set(kwargs) - set(names)}"
            assert kwargs.get("icon", "NONE") in self._icons, kwargs["icon"]
            given = dict(zip(names, args)) | kwargs
            if name in ("prop", "prop_search"):
                assert given["property"] in given["data"].bl_rna.properties, given["property"]
            if name == "prop_search":
                assert hasattr(given["search_data"], given["search_property"])
            self.record.append((name, args, kwargs))
            if name == "operator":
                return _OperatorButton(given["operator"])
            if name in ("row", "column", "box", "split", "grid_flow", "column_flow"):
                return FakeLayout(self.record)
            return None
        return call

    def __setattr__(self, name, value):  # layout.enabled = ..., use_property_split = ...
        assert name in self._settable, f"UILayout has no property {name!r}"
        self.record.append(("set", (name, value), {}))

    def calls(self, name: str) -> list[tuple]:
        return [(args, kwargs) for n, args, kwargs in self.record if n == name]


def draw_panels(context) -> FakeLayout:
    """Draw every SatForge sidebar panel into one FakeLayout (raises if a draw() fails)."""
    from satforge.addon import ui

    layout = FakeLayout()
    for panel in ui.CLASSES:
        panel.draw(SimpleNamespace(layout=layout), context)
    ui.outliner_menu(SimpleNamespace(layout=layout), context)
    return layout
