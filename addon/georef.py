"""Georeference in the scene, the way BlenderGIS keeps it, so both add-ons line up.

BlenderGIS stores on the scene ``crs`` (e.g. "EPSG:32633") and ``crsx``/``crsy``: the CRS
coordinates of Blender's origin. The first tile (or world) sets them; every later one is placed at
its offset from that origin. Vertices stay small: the offset goes on the object, never the mesh.
"""

import json

ORIGIN_KEYS = ("crs", "crsx", "crsy")


def scene_has_origin(scene) -> bool:
    return "crsx" in scene and "crsy" in scene


def placement(scene, georef: dict, reference: dict | None = None) -> tuple[tuple[float, float, float], str]:
    """Blender location of a mesh whose local origin sits at ``georef``'s easting/northing.

    ``reference`` is where Blender's origin goes if the scene has none yet (default: ``georef``
    itself, i.e. the tile centre lands on the origin). Returns (location, warning or "").
    The subtraction is done in float64: only the small difference reaches float32.
    """
    crs = georef.get("crs")
    if not scene_has_origin(scene):
        ref = reference or georef
        if crs:
            scene["crs"] = crs
        scene["crsx"], scene["crsy"] = float(ref["easting"]), float(ref["northing"])
    elevation = float(georef.get("elevation", 0.0))
    scene_crs = scene.get("crs")
    if (scene_crs or None) != (crs or None):
        return (0.0, 0.0, elevation), (f"the tile's CRS {crs} differs from the scene's {scene_crs}: "
                                       "placed at the origin (reproject one of them)")
    return (float(georef["easting"]) - float(scene["crsx"]), float(georef["northing"]) - float(scene["crsy"]),
            elevation), ""


def tag_collection(collection, georef: dict) -> None:
    """The same keys on the collection, for its own centre, plus the full georeference as JSON."""
    if georef.get("crs"):
        collection["crs"] = georef["crs"]
    collection["crsx"], collection["crsy"] = float(georef["easting"]), float(georef["northing"])
    collection["satforge_georeference"] = json.dumps(georef)


def scene_georeference(scene) -> dict | None:
    """The georeference of Blender's origin, for files Blender's exporter writes (None without one)."""
    if not scene_has_origin(scene):
        return None
    return {"crs": scene.get("crs"), "easting": float(scene["crsx"]), "northing": float(scene["crsy"]),
            "elevation": 0.0, "source": "Blender scene origin (BlenderGIS crs/crsx/crsy)"}
