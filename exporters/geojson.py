"""The ``{stem}.geo.json`` sidecar: where the tile sits, as a GeoJSON Feature.

The geometry is the tile footprint in the source CRS (not WGS84 unless the CRS is geographic), as
the 2008 GeoJSON spec allowed; an EPSG CRS is named in its ``crs`` member, which GDAL and QGIS read.
``properties.georeference`` is ``Georeference.to_dict()`` exactly (float64 centre, JSON round-trips
it bit for bit), so ``Georeference.from_dict`` reads it back.
"""
from __future__ import annotations

import math

from .. import __version__
from ..core.georef import Georeference
from ..core.meshes import TexturedScene

_EARTH_RADIUS_M = 6_371_008.8  # mean radius; only used to draw a geographic footprint

LOCAL_FRAMES = {
    "core": "x east, y north, z up; metres; origin at the tile centre, z = 0 at georeference.elevation",
    "gltf": "x east, y up, z south (-Z is north); metres; same origin (easting + x, northing - z)",
    "obj": "same as gltf",
    "blender": "x east, y north, z up (the glTF and OBJ importers convert); same origin",
}


def _half_extent(georef: Georeference) -> tuple[float, float]:
    """Half the tile size in CRS units (degrees for a geographic CRS, on a sphere)."""
    half_w, half_h = georef.width_m / 2, georef.height_m / 2
    if georef.crs_units != "degree":
        return half_w, half_h
    lat = math.radians(georef.northing)
    return (math.degrees(half_w / (_EARTH_RADIUS_M * math.cos(lat))),
            math.degrees(half_h / _EARTH_RADIUS_M))


def footprint(georef: Georeference) -> list[list[float]]:
    """Closed, counter-clockwise (RFC 7946 exterior ring) outline of the tile in CRS coordinates."""
    dx, dy = _half_extent(georef)
    e, n = georef.easting, georef.northing
    corners = [[e - dx, n - dy], [e + dx, n - dy], [e + dx, n + dy], [e - dx, n + dy]]
    return corners + [corners[0]]


def sidecar(scene: TexturedScene, assets: list[str]) -> dict:
    """The GeoJSON Feature for ``scene``; ``assets`` are the file names written beside it."""
    georef = scene.georef
    feature = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [footprint(georef)]},
        "properties": {
            "generator": f"SatForge {__version__}",
            "georeference": georef.to_dict(),
            "local_frames": LOCAL_FRAMES,
            "scheme": scene.scheme,
            "classes": {str(k): v for k, v in sorted(scene.class_names.items())},
            "assets": assets,
        },
    }
    if georef.epsg is not None:
        feature["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{georef.epsg}"}}
    return feature
