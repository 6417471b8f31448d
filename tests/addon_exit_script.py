"""Run by test_addon_exit.py in a process of its own, as a render-farm script drives Blender:
``python addon_exit_script.py addon|control WORKDIR [--unregister]`` (with BLENDER_USER_RESOURCES
set to a temporary folder: the add-on's user files go there).

``addon``: register the add-on, generate a small tile, batch-export it, extend terrain, (optionally
unregister it and print what is left running as one JSON line), then print LAST_LINE and end.
``control``: the same bpy module without the add-on (import and export a GLB), to tell bpy's own
way of exiting from ours. The caller measures how long the process takes to end after LAST_LINE.
bpy is imported where it is used, so the test that imports LAST_LINE skips cleanly without bpy.
"""
from __future__ import annotations

import faulthandler
import json
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
LAST_LINE = "satforge-exit-script: last line"
# If the process is still there this long after its last line, print every Python thread's stack
# (on stderr) so a hang names the thread holding it up.
DUMP_AFTER_S = 8.0


def _check(result: set, what: str) -> None:
    if result != {"FINISHED"}:
        raise SystemExit(f"{what} returned {result}")


def run_addon(work: Path) -> None:
    import bpy

    sys.path.insert(0, str(TESTS))
    from tiles import make_city_tile, write_tile

    import satforge

    tile = write_tile(work / "block", make_city_tile(128, 0.5, seed=3), gsd=0.5)
    satforge.register()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    _check(bpy.ops.satforge.generate(rgb_path=str(tile["rgb"]), height_path=str(tile["ndsm"]),
                                     semantic_path=str(tile["semantic"]), tile_name="block"), "generate")
    bpy.data.objects["block_terrain"].data.vertices[0].co.z += 1.0  # edited: Blender's exporter runs
    _check(bpy.ops.satforge.batch_export(directory=str(work / "export"), collections="block"), "batch export")
    _check(bpy.ops.satforge.extend_terrain(world_dir=str(work / "world"), x=0, y=0, rings=1, chunk_size=16,
                                           lods=1), "extend terrain")


def run_control(work: Path) -> None:
    """What bpy alone does in the issue's control: export a GLB and import it again."""
    import bpy

    path = work / "cube.glb"
    _check(bpy.ops.export_scene.gltf(filepath=str(path)), "glTF export")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    _check(bpy.ops.import_scene.gltf(filepath=str(path)), "glTF import")


def unregister_and_report() -> None:
    from helpers_addon import leftovers

    import satforge

    satforge.unregister()
    print(json.dumps({"leftovers": leftovers()}), flush=True)


def main(argv: list[str]) -> None:
    mode, work = argv[0], Path(argv[1])
    work.mkdir(parents=True, exist_ok=True)
    if mode == "addon":
        run_addon(work)
        if "--unregister" in argv:
            unregister_and_report()
    else:
        run_control(work)
    print(LAST_LINE, flush=True)
    faulthandler.dump_traceback_later(DUMP_AFTER_S, exit=False)


if __name__ == "__main__":
    main(sys.argv[1:])
