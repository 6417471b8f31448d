"""Land-cover class schemes and the surface kinds that drive geometry."""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class SurfaceKind(IntEnum):
    """What a surface is made of, geometrically. Values are stored in files: never renumber."""

    TERRAIN = 1
    ROAD = 2
    BUILDING = 3
    VEGETATION = 4
    WATER = 5
    OTHER = 6  # small objects (cars, ships, courts): meshed as terrain, keep their class id

    @property
    def label(self) -> str:
        return self.name.lower()


# Kinds that get a mesh of their own; OTHER is folded into TERRAIN.
MESHED_KINDS = (SurfaceKind.TERRAIN, SurfaceKind.ROAD, SurfaceKind.BUILDING,
                SurfaceKind.VEGETATION, SurfaceKind.WATER)


@dataclass(frozen=True)
class ClassScheme:
    """A land-cover legend: class id -> name, palette colour, surface kind. Id 0 is "unknown"."""

    name: str
    names: dict[int, str]
    colours: dict[int, tuple[int, int, int]]
    kinds: dict[int, SurfaceKind]
    # The id of each OpenEarthMap class (0..8) in this scheme: the land-cover heuristics and the
    # procedural world speak OpenEarthMap and are translated through it.
    from_openearthmap: tuple[int, ...]

    @property
    def ids(self) -> np.ndarray:
        return np.array(sorted(self.names), dtype=np.uint8)

    def kind_lut(self) -> np.ndarray:
        """(256,) uint8 lookup: class id -> SurfaceKind value (0 for ids outside the scheme)."""
        lut = np.zeros(256, np.uint8)
        for cid, kind in self.kinds.items():
            lut[cid] = int(kind)
        return lut

    def openearthmap_lut(self) -> np.ndarray:
        """(256,) uint8 lookup: OpenEarthMap class id -> this scheme's id (0 past the 8 classes)."""
        lut = np.zeros(256, np.uint8)
        lut[:len(self.from_openearthmap)] = self.from_openearthmap
        return lut

    def openearthmap_by_kind_lut(self) -> np.ndarray:
        """(256,) uint8 lookup: class id -> the OpenEarthMap class standing for its surface kind
        (OPENEARTHMAP_CLASS_FOR_KIND); 0 for ids outside the scheme."""
        lut = np.zeros(256, np.uint8)
        for cid, kind in self.kinds.items():
            lut[cid] = OPENEARTHMAP_CLASS_FOR_KIND[kind]
        return lut

    def to_openearthmap_lut(self) -> np.ndarray:
        """(256,) uint8 lookup: class id -> the OpenEarthMap class it is, else the one standing for
        its surface kind (``openearthmap_by_kind_lut``); 0 for ids outside the scheme."""
        lut = self.openearthmap_by_kind_lut()
        for oem, cid in enumerate(self.from_openearthmap):
            if oem and cid:
                lut[cid] = oem
        return lut

    def class_for_kind(self, kind: SurfaceKind) -> int:
        """The canonical class id used when a generator invents a surface of this kind."""
        return next(cid for cid, k in sorted(self.kinds.items()) if k == kind)


_K = SurfaceKind

OPENEARTHMAP = ClassScheme(
    name="openearthmap",
    names={0: "unknown", 1: "bareland", 2: "rangeland", 3: "developed space", 4: "road",
           5: "tree", 6: "water", 7: "agriculture land", 8: "building"},
    # The OpenEarthMap legend colours.
    colours={0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 255, 36), 3: (148, 148, 148), 4: (255, 255, 255),
             5: (34, 97, 38), 6: (0, 69, 255), 7: (75, 181, 73), 8: (222, 31, 7)},
    kinds={0: _K.TERRAIN, 1: _K.TERRAIN, 2: _K.TERRAIN, 3: _K.TERRAIN, 4: _K.ROAD,
           5: _K.VEGETATION, 6: _K.WATER, 7: _K.TERRAIN, 8: _K.BUILDING},
    from_openearthmap=tuple(range(9)),
)

_EC25 = [
    ("Agriculture Field", (60, 76, 231), _K.TERRAIN), ("Woodland", (219, 152, 52), _K.VEGETATION),
    ("Grassland", (113, 204, 46), _K.TERRAIN), ("Building", (182, 89, 155), _K.BUILDING),
    ("Road", (15, 196, 241), _K.ROAD), ("Excavated Land", (34, 126, 230), _K.TERRAIN),
    ("Bare Land", (156, 188, 26), _K.TERRAIN), ("Water", (160, 76, 231), _K.WATER),
    ("Pavement", (94, 73, 52), _K.ROAD), ("Ship", (133, 160, 22), _K.OTHER),
    ("Storage Tank", (43, 57, 192), _K.BUILDING), ("Baseball Diamond", (185, 128, 41), _K.OTHER),
    ("Tennis Court", (96, 174, 39), _K.OTHER), ("Basketball Court", (173, 68, 142), _K.OTHER),
    ("Ground Track Field", (18, 156, 243), _K.OTHER), ("Bridge", (0, 84, 211), _K.ROAD),
    ("Vehicle", (141, 140, 127), _K.OTHER), ("Helicopter", (137, 122, 108), _K.OTHER),
    ("Swimming Pool", (89, 140, 163), _K.WATER), ("Roundabout", (182, 159, 97), _K.ROAD),
    ("Soccer Ball Field", (206, 143, 187), _K.OTHER), ("Plane", (43, 147, 240), _K.OTHER),
    ("Harbor", (124, 175, 77), _K.OTHER), ("Greenhouse", (46, 58, 176), _K.BUILDING),
    ("Solar Panel", (226, 173, 93), _K.OTHER),
]
EARTHCRAFTER25 = ClassScheme(
    name="earthcrafter25",
    names={0: "unknown", **{i + 1: n for i, (n, _, _) in enumerate(_EC25)}},
    colours={0: (0, 0, 0), **{i + 1: c for i, (_, c, _) in enumerate(_EC25)}},
    kinds={0: _K.TERRAIN, **{i + 1: k for i, (_, _, k) in enumerate(_EC25)}},
    # bareland -> Bare Land, rangeland -> Grassland, developed space -> Pavement, road -> Road,
    # tree -> Woodland, water -> Water, agriculture land -> Agriculture Field, building -> Building
    from_openearthmap=(0, 7, 3, 9, 5, 2, 8, 1, 4),
)

# The OpenEarthMap class that stands for each surface kind where only the kind is known.
OPENEARTHMAP_CLASS_FOR_KIND = {_K.TERRAIN: 2, _K.ROAD: 4, _K.BUILDING: 8, _K.VEGETATION: 5, _K.WATER: 6,
                               _K.OTHER: 3}

SCHEMES = {s.name: s for s in (OPENEARTHMAP, EARTHCRAFTER25)}


def get_scheme(name: str) -> ClassScheme:
    from .errors import InputError

    try:
        return SCHEMES[name]
    except KeyError:
        raise InputError("--palette", f"unknown class scheme {name!r}",
                         f"use one of: {', '.join(SCHEMES)}") from None
