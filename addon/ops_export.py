"""``bpy.ops.satforge.batch_export``: one file per selected collection (or object).

Unchanged generated collections get the worker's own files (export_reuse.py); everything else goes
through Blender's exporters with the preset's options (export_blender.py). File names come from a
pattern with {collection}, {object}, {lod}, {x}, {y}, {preset}.
"""

import re
import string
from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from . import export_blender, export_reuse, presets
from .props import EXPORT_MODES, FORMATS

EXTENSIONS = {"GLB": ".glb", "GLTF_SEPARATE": ".gltf", "OBJ": ".obj"}
FIELDS = ("collection", "object", "lod", "x", "y", "preset")
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


def file_stem(pattern: str, values: dict) -> str:
    """The pattern filled in (fields a target lacks become empty); raises ValueError for unknown
    fields or an empty result."""
    names = [field for _, field, _, _ in string.Formatter().parse(pattern) if field is not None]
    unknown = sorted(set(names) - set(FIELDS))
    if unknown:
        raise ValueError(f"pattern {pattern!r}: unknown field {{{unknown[0]}}} (use {', '.join(FIELDS)})")
    stem = _UNSAFE.sub("_", pattern.format(**{f: values.get(f, "") for f in FIELDS})).strip(" .")
    if not stem:
        raise ValueError(f"pattern {pattern!r} gives an empty file name")
    return stem


def _collection_values(collection) -> dict:
    values = {"collection": collection.name}
    for field in ("lod", "x", "y"):
        if f"satforge_{field}" in collection:
            values[field] = collection[f"satforge_{field}"]
    return values


class SATFORGE_OT_batch_export(bpy.types.Operator):
    """Export each selected collection (or object) to its own GLB / glTF / OBJ file"""

    bl_idname = "satforge.batch_export"
    bl_label = "Batch Export"

    directory: StringProperty(name="Folder", subtype="DIR_PATH", default="//export/")
    format: EnumProperty(name="Format", items=FORMATS, default="GLB")
    pattern: StringProperty(name="Name", default="{collection}",
                            description="File name: {collection}, {object}, {lod}, {x}, {y}, {preset}")
    preset: StringProperty(name="Preset", default="game", description="game, twin, user:NAME or a .toml file")
    mode: EnumProperty(name="Export", items=EXPORT_MODES, default="COLLECTIONS")
    collections: StringProperty(name="Collections", default="",
                                description="Comma-separated collection names; empty: the selected ones")

    def execute(self, context):
        try:
            preset = presets.load(self.preset)
            targets = self._targets(context)
            plans = self._plan(targets, preset)
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        directory = Path(bpy.path.abspath(self.directory))
        directory.mkdir(parents=True, exist_ok=True)
        written, reused = [], 0
        for stem, objects, collection in plans:
            files = self._export_one(context, directory / (stem + EXTENSIONS[self.format]), objects, collection, preset)
            reused += files[1]
            written += files[0]
        self.report({"INFO"}, f"wrote {len(plans)} {self.format} export(s) to {directory} "
                              f"({reused} from SatForge's own files, {len(plans) - reused} via Blender): "
                              + ", ".join(p.name for p in written))
        return {"FINISHED"}

    def _targets(self, context) -> list[tuple[dict, list, object]]:
        """(pattern values, objects, collection or None) per file."""
        if self.mode == "OBJECTS":
            objects = [o for o in context.selected_objects if o.type == "MESH"]
            if not objects:
                raise ValueError("no mesh object selected")
            return [({**_collection_values(o.users_collection[0]), "object": o.name} if o.users_collection
                     else {"object": o.name}, [o], None) for o in objects]
        collections = self._collections(context)
        if not collections:
            raise ValueError("no collection to export: select objects or collections (or name them)")
        empty = [c.name for c in collections if not any(o.type == "MESH" for o in c.all_objects)]
        if empty:
            raise ValueError(f"collection {empty[0]!r} has no mesh to export")
        return [(_collection_values(c), [o for o in c.all_objects if o.type == "MESH"], c) for c in collections]

    def _collections(self, context) -> list:
        if self.collections.strip():
            names = [n.strip() for n in self.collections.split(",") if n.strip()]
            missing = [n for n in names if n not in bpy.data.collections]
            if missing:
                raise ValueError(f"no collection named {missing[0]!r}")
            return [bpy.data.collections[n] for n in names]
        # Collections selected in the Outliner (only there does the context list IDs) ...
        selected = [i for i in getattr(context, "selected_ids", None) or () if isinstance(i, bpy.types.Collection)]
        if selected:
            return selected
        # ... else the collections holding the selected objects.
        found = []
        for obj in context.selected_objects:
            for collection in obj.users_collection:
                if collection != context.scene.collection and collection not in found:
                    found.append(collection)
        return found

    def _plan(self, targets, preset: dict) -> list[tuple[str, list, object]]:
        plans, seen = [], {}
        for values, objects, collection in targets:
            stem = file_stem(self.pattern, {**values, "preset": preset["name"]})
            if stem in seen:
                raise ValueError(f"{values.get('object') or values['collection']!r} and {seen[stem]!r} would both "
                                 f"be written to {stem}{EXTENSIONS[self.format]}: add {{x}}, {{y}} or "
                                 "{object} to the pattern")
            seen[stem] = values.get("object") or values["collection"]
            plans.append((stem, objects, collection))
        return plans

    def _export_one(self, context, path: Path, objects, collection, preset: dict) -> tuple[list[Path], int]:
        """Write one target; returns (files written, 1 if the worker's files were reused else 0)."""
        if collection is not None:
            sources = export_reuse.reusable_files(collection, self.format, preset["name"])
            if sources is not None:
                return export_reuse.copy_renamed(sources, path.parent, path.stem), 1
        if self.format == "OBJ":
            return export_blender.export_obj(context, path, objects, collection, preset), 0
        return export_blender.export_gltf(context, path, self.format, objects, collection, preset), 0


CLASSES = (SATFORGE_OT_batch_export,)
