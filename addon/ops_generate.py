"""``bpy.ops.satforge.generate``: one tile through the worker, imported as a new collection."""

import re
import shutil
import tempfile
from pathlib import Path

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty

from ..core.contract import FORMAT_PARTS, output_files
from . import blend_images, commands, georef, glb, importing, jobs, paths, presets
from .job_operator import UserError, WorkerOperator
from .prefs import python_interpreter, weights_files
from .props import GENERATORS, INPUT_ROLES, PALETTES

# Input file stems that say nothing about the tile: use the folder's name instead.
_GENERIC_STEMS = {"rgb", "ortho", "orthophoto", "image", "height", "heights", "dsm", "ndsm", "dtm", "dem",
                  "semantic", "labels", "landcover", "land_cover", "classes", "scene"}


def tile_name(sources: dict[str, str]) -> str:
    """A collection name from the first input: its stem, or its folder for generic stems (rgb.tif)."""
    for role in INPUT_ROLES:
        source = sources.get(role)
        if source:
            path = Path(source)
            stem = path.stem.split(".")[0]
            if stem.lower() in _GENERIC_STEMS and path.parent.name:
                return path.parent.name
            return stem or "tile"
    return "tile"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "tile"


class SATFORGE_OT_generate(WorkerOperator, bpy.types.Operator):
    """Generate a textured, georeferenced city block from the inputs (runs the SatForge worker)"""

    bl_idname = "satforge.generate"
    bl_label = "Generate Tile"
    bl_options = {"REGISTER", "UNDO"}

    rgb_path: StringProperty(name="Orthophoto", subtype="FILE_PATH")
    height_path: StringProperty(name="Height (DSM/nDSM)", subtype="FILE_PATH")
    dtm_path: StringProperty(name="Terrain (DTM)", subtype="FILE_PATH")
    semantic_path: StringProperty(name="Land Cover", subtype="FILE_PATH")
    rgb_image: StringProperty(name="Orthophoto Image", description="An image in this .blend")
    height_image: StringProperty(name="Height Image", description="An image in this .blend")
    dtm_image: StringProperty(name="Terrain Image", description="An image in this .blend")
    semantic_image: StringProperty(name="Land Cover Image", description="An image in this .blend")
    palette: EnumProperty(name="Palette", items=PALETTES, default="openearthmap")
    generator: EnumProperty(name="Generator", items=GENERATORS, default="default")
    gsd: FloatProperty(name="GSD", default=0.0, min=0.0, description="Metres per pixel; 0: from the files")
    preset: StringProperty(name="Preset", default="game", description="game, twin, user:NAME or a .toml file")
    seed: IntProperty(name="Seed", default=0, min=0)
    tile_name: StringProperty(name="Tile Name", description="Collection name; empty: from the first input")
    output_dir: StringProperty(name="Output Folder", subtype="DIR_PATH",
                               description="Where the worker writes its files; empty: a new folder in the "
                                           "add-on's user folder")
    timeout: FloatProperty(name="Timeout", default=0.0, min=0.0,
                           description="Seconds before a synchronous run gives up; 0: no limit")

    def make_job(self, context):
        return generate_job(context, self)


def generate_job(context, op) -> jobs.Job:
    """The job for ``op``'s settings (the operator, or any object with the same attributes: tests
    drive the modal path with it). Raises UserError before anything starts."""
    temp = Path(tempfile.mkdtemp(prefix="satforge-inputs-"))
    try:
        sources, files = _inputs(op, temp)
        name = op.tile_name or tile_name(sources)
        out, created = _output_dir(op, name)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    args = commands.GenerateArgs(out=out, palette=op.palette, gsd=op.gsd, seed=op.seed,
                                 preset=presets.cli_value(op.preset), generator=op.generator,
                                 weights=weights_files(context), **files)
    argv = commands.generate_argv(python_interpreter(context), args)

    def cleanup(succeeded: bool) -> None:
        shutil.rmtree(temp, ignore_errors=True)
        if created and not succeeded:
            shutil.rmtree(out, ignore_errors=True)

    return jobs.Job(f"Generate {name}", argv, commands.worker_env(),
                    on_done=lambda ctx, done: import_tile(ctx, out, name, done), cleanup=cleanup)


def _inputs(op, temp: Path) -> tuple[dict, dict]:
    """(role -> what the user named, role -> file for the worker)."""
    sources, files = {}, {}
    for role in INPUT_ROLES:
        path, image_name = getattr(op, f"{role}_path"), getattr(op, f"{role}_image")
        if path and image_name:
            raise UserError(f"{role}: give a file or a .blend image, not both")
        if path:
            sources[role] = files[role] = Path(bpy.path.abspath(path))
        elif image_name:
            image = bpy.data.images.get(image_name)
            if image is None:
                raise UserError(f"{role}_image: no image named {image_name!r} in this .blend")
            sources[role] = image_name
            try:
                files[role] = blend_images.image_file(image, role, temp)
            except ValueError as exc:
                raise UserError(f"{role}_image: {exc}") from None
    if not files:
        raise UserError("no input: give an orthophoto, a height raster or a land-cover map")
    return {k: str(v) for k, v in sources.items()}, files


def _output_dir(op, name: str) -> tuple[Path, bool]:
    """(folder for the worker's files, whether we created it and may delete it on failure)."""
    if op.output_dir:
        return Path(bpy.path.abspath(op.output_dir)), False
    return Path(tempfile.mkdtemp(prefix=f"{_safe(name)}-", dir=paths.user_dir("tiles"))), True


def import_tile(context, out: Path, name: str, done: dict) -> str:
    """The worker's files -> collection ``name`` with one object per surface kind, georeferenced."""
    glb_path = out / output_files("glb")[0]
    tile_georef = glb.georeference(glb_path)
    if tile_georef is None:
        raise importing.ImportFailed(f"{glb_path} has no georeference")
    collection = bpy.data.collections.new(name)
    context.scene.collection.children.link(collection)
    objects = importing.import_tile_glb(glb_path, collection, prefix=f"{collection.name}_")
    location, warning = georef.placement(context.scene, tile_georef)
    importing.place(objects, location)
    georef.tag_collection(collection, tile_georef)
    files = {fmt: [out / f for f in output_files(fmt)] for fmt in FORMAT_PARTS
             if all((out / f).is_file() for f in output_files(fmt))}
    report = done.get("report", {})
    importing.record_source(collection, files, objects, str(report.get("preset", "")))
    collection["satforge_output_dir"] = str(out)
    kinds = ", ".join(obj["satforge_kind"] for obj in objects)
    message = f"{collection.name}: {len(objects)} objects ({kinds}), {report.get('triangles', {}).get('total', '?')} " \
              f"triangles in {done.get('elapsed', 0):.1f} s"
    return f"{message}; {warning}" if warning else message


CLASSES = (SATFORGE_OT_generate,)
