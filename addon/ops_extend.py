"""``bpy.ops.satforge.extend_terrain``: the missing ring of chunks around a chunk, made by the worker
(``satforge world``) and imported beside the ones already in the scene.

Scene layout: one collection per world (``satforge_world_dir``), one child collection per chunk
and LOD (``satforge_x``, ``satforge_y``, ``satforge_lod``) with one object per surface kind. Each
chunk's objects sit at the chunk centre, offset from Blender's origin like any georeferenced tile.
Chunk centres are multiples of S/2, so world-space border vertices are exact in float32 and the
neighbours' shared borders meet bit for bit.
"""

from pathlib import Path

import bpy
from bpy.props import FloatProperty, IntProperty, StringProperty

from ..core.contract import manifest_preset_name, read_world_manifest
from . import commands, datablocks, georef, importing, jobs, presets, world_files
from .job_operator import UserError, WorkerOperator
from .prefs import python_interpreter


def world_collection(world_dir: Path):
    """The scene's collection for this world folder, or None."""
    key = str(Path(world_dir).resolve())
    return next((c for c in bpy.data.collections if c.get("satforge_world_dir") == key), None)


def chunks_in_scene(world_dir: Path) -> set[tuple[int, int]]:
    """Chunks of the world already imported (at any LOD: two LODs of one chunk would overlap)."""
    world = world_collection(world_dir)
    if world is None:
        return set()
    return {(c["satforge_x"], c["satforge_y"]) for c in world.children if "satforge_x" in c and c.all_objects}


def _world_origin(manifest: dict) -> dict:
    return {"crs": manifest.get("crs"), "easting": manifest.get("easting", 0.0),
            "northing": manifest.get("northing", 0.0), "elevation": manifest.get("elevation", 0.0)}


def _ensure_world_collection(context, world_dir: Path, manifest: dict):
    world = world_collection(world_dir)
    if world is None:
        world = bpy.data.collections.new(f"world_{Path(world_dir).resolve().name}")
        context.scene.collection.children.link(world)
        world["satforge_world_dir"] = str(Path(world_dir).resolve())
        world["satforge_chunk_size"] = float(manifest["chunk_size"])
        georef.tag_collection(world, _world_origin(manifest))
    return world


def _chunk_georef(manifest: dict, x: int, y: int) -> dict:
    cx, cy = world_files.chunk_centre(float(manifest["chunk_size"]), x, y)
    origin = _world_origin(manifest)
    return {**origin, "easting": origin["easting"] + cx, "northing": origin["northing"] + cy}


def import_chunks(context, world_dir: Path, lod: int, chunks: list[tuple[int, int]]) -> str:
    """Import the chunks' GLBs at ``lod`` into the world's collection, each at its chunk centre."""
    manifest = read_world_manifest(world_dir)
    if manifest is None:
        raise importing.ImportFailed(f"{world_dir} holds no manifest.json")
    world = _ensure_world_collection(context, world_dir, manifest)
    warnings = set()
    for x, y in chunks:
        path = world_files.chunk_file(world_dir, lod, x, y)
        if not path.is_file():
            raise importing.ImportFailed(f"chunk {x},{y} has no file {path}")
        chunk = bpy.data.collections.new(f"tile_x{x}_y{y}_lod{lod}")
        world.children.link(chunk)
        chunk["satforge_x"], chunk["satforge_y"], chunk["satforge_lod"] = x, y, lod
        objects = importing.import_tile_glb(path, chunk, prefix=f"x{x}_y{y}_")
        chunk_georef = _chunk_georef(manifest, x, y)
        location, warning = georef.placement(context.scene, chunk_georef, reference=_world_origin(manifest))
        warnings.add(warning)
        importing.place(objects, location)
        georef.tag_collection(chunk, chunk_georef)
        importing.record_source(chunk, {"glb": [path]}, objects, manifest_preset_name(manifest))
    message = f"{world.name}: imported {len(chunks)} chunk(s) at LOD {lod}"
    return "; ".join([message, *sorted(w for w in warnings if w)])


class SATFORGE_OT_extend_terrain(WorkerOperator, bpy.types.Operator):
    """Generate and import the missing chunks around the selected chunk (or the 3D cursor)"""

    bl_idname = "satforge.extend_terrain"
    bl_label = "Extend Terrain"
    bl_options = {"REGISTER", "UNDO"}

    world_dir: StringProperty(name="World Folder", subtype="DIR_PATH",
                              description="A world made by `satforge world` or this add-on; empty: the "
                                          "world of the selected chunk")
    x: IntProperty(name="X", description="Centre chunk; unset: the selected chunk, else the 3D cursor")
    y: IntProperty(name="Y", description="Centre chunk; unset: the selected chunk, else the 3D cursor")
    lod: IntProperty(name="LOD", default=0, min=0, max=5)
    rings: IntProperty(name="Rings", default=1, min=0, max=8,
                       description="How many rings of chunks around the centre (0: the centre alone)")
    chunk_size: FloatProperty(name="Chunk Size", default=128.0, min=16.0, max=1024.0,
                              description="New worlds only (an existing world keeps its own)")
    lods: IntProperty(name="LODs", default=1, min=1, max=6, description="New worlds only")
    seed: IntProperty(name="Seed", default=0, min=0, description="New worlds only")
    preset: StringProperty(name="Preset", default="game", description="New worlds only")
    gsd: FloatProperty(name="GSD", default=0.5, min=0.1, max=5.0, description="New worlds only")
    workers: IntProperty(name="Workers", default=0, min=0, max=64,
                         description="Cores to use, a chunk on each at once; 0: every core")
    timeout: FloatProperty(name="Timeout", default=0.0, min=0.0,
                           description="Seconds before a synchronous run gives up; 0: no limit")

    def make_job(self, context):
        return extend_job(context, self)


def extend_job(context, op):
    """The job (or, when every chunk is on disk already, the import's message) for ``op``'s settings."""
    world_dir = _world_dir(context, op)
    try:
        manifest = read_world_manifest(world_dir)
    except ValueError as exc:
        raise UserError(f"{world_dir}: {exc}") from None
    settings = world_files.settings(manifest) if manifest else {
        "chunk_size": op.chunk_size, "lods": op.lods, "seed": op.seed, "preset": op.preset, "gsd": op.gsd}
    if op.lod >= int(settings["lods"]):
        raise UserError(f"lod {op.lod}: the world has LODs 0 to {int(settings['lods']) - 1}")
    x, y = _centre(context, op, manifest, settings)
    present = chunks_in_scene(world_dir)
    wanted = [c for c in world_files.block(x, y, op.rings) if c not in present]
    if not wanted:
        return f"chunks around {x},{y} are all in the scene already"
    lod = op.lod
    missing = [c for c in wanted if not world_files.chunk_on_disk(world_dir, manifest, lod, *c)]
    if not missing:  # nothing to generate: import right away, all or nothing
        return _import_now(context, world_dir, lod, wanted)
    xs, ys = [c[0] for c in missing], [c[1] for c in missing]
    # A new world gets the panel's settings; an existing one keeps those in its manifest.
    new_world = None if manifest else {**settings, "preset": presets.cli_value(str(settings["preset"]))}
    # One rectangle: the CLI skips the chunks in it that are already finished.
    argv = commands.world_argv(python_interpreter(context), world_dir, (min(xs), max(xs), min(ys), max(ys)),
                               new_world, op.workers)
    return jobs.Job(f"Extend {world_dir.name} around {x},{y}", argv, commands.worker_env(),
                    on_done=lambda ctx, _done: import_chunks(ctx, world_dir, lod, wanted))


def _world_dir(context, op) -> Path:
    if op.world_dir:
        return Path(bpy.path.abspath(op.world_dir)).resolve()
    chunk = _active_chunk(context)
    if chunk is not None:
        return Path(chunk[0]["satforge_world_dir"])
    raise UserError("world_dir: choose a world folder (or select a chunk of an imported world)")


def _given_centre(op):
    """(x, y) when the caller set both, else None (the operator tells set from default)."""
    props = getattr(op, "properties", None)
    if props is not None:
        given = props.is_property_set("x") and props.is_property_set("y")
    else:
        given = op.x is not None and op.y is not None
    return (op.x, op.y) if given else None


def _centre(context, op, manifest, settings) -> tuple[int, int]:
    """The given chunk, else the selected chunk, else the chunk under the 3D cursor."""
    given = _given_centre(op)
    if given is not None:
        return given
    chunk = _active_chunk(context)
    if chunk is not None:
        return chunk[1]["satforge_x"], chunk[1]["satforge_y"]
    # The cursor in metres from the world origin (Blender's origin may be elsewhere).
    origin = _world_origin(manifest) if manifest else {"easting": 0.0, "northing": 0.0}
    scene = context.scene
    ox = origin["easting"] - float(scene["crsx"]) if georef.scene_has_origin(scene) else 0.0
    oy = origin["northing"] - float(scene["crsy"]) if georef.scene_has_origin(scene) else 0.0
    cursor = scene.cursor.location
    return world_files.chunk_at(float(settings["chunk_size"]), cursor.x - ox, cursor.y - oy)


def _active_chunk(context):
    """(world collection, chunk collection) of the active object, or None."""
    obj = context.active_object
    if obj is None:
        return None
    for chunk in obj.users_collection:
        if "satforge_x" not in chunk:
            continue
        for world in bpy.data.collections:
            if "satforge_world_dir" in world and chunk.name in world.children:
                return world, chunk
    return None


def _import_now(context, world_dir: Path, lod: int, chunks: list) -> str:
    before = datablocks.snapshot(context.scene)
    try:
        return import_chunks(context, world_dir, lod, chunks)
    except Exception as exc:
        datablocks.remove_new(before)
        raise UserError(f"satforge: error: importing chunks failed: {exc}") from None


CLASSES = (SATFORGE_OT_extend_terrain,)
