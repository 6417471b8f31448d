"""Where a tile sits on Earth. Vertices stay small; the absolute position travels here."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Georeference:
    """The tile centre in the source CRS, float64.

    Local frame (core and Blender): x east, y north, z up, metres, origin at the tile centre at
    ``elevation``. glTF frame: x east, y up, z south (so -Z is north).
    """

    crs: str | None          # "EPSG:26918", a WKT string, or None when the input had no CRS
    easting: float              # CRS x of the tile centre (0 when no CRS)
    northing: float             # CRS y of the tile centre (0 when no CRS)
    elevation: float            # height datum value that local z = 0 stands for, metres
    width_m: float              # tile extent east-west, metres
    height_m: float             # tile extent north-south, metres
    gsd: float                  # ground sampling distance of the analysis grid, metres
    crs_units: str = "metre"    # "metre" or "degree": a geographic CRS stores lon/lat here
    source: str = ""            # which input the georeference came from

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Georeference:
        return cls(**data)

    @property
    def epsg(self) -> int | None:
        if self.crs and self.crs.upper().startswith("EPSG:"):
            return int(self.crs.split(":", 1)[1])
        return None
