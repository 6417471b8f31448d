"""Output presets, read from ``presets/*.toml``."""
from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from .contract import PRESET_FIELDS, PRESET_NUMBERS, preset_problem
from .errors import InputError

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    triangles_per_128m: int       # triangle budget per 128 m x 128 m of tile area
    atlas_side_per_128m: int      # one atlas of this side per 128 m x 128 m of tile area
    texels_per_image_pixel: float
    max_atlas_side: int
    feature_ids: str              # "attribute" or "ext_mesh_features"

    def triangle_budget(self, area_m2: float) -> int:
        return max(2000, int(self.triangles_per_128m * area_m2 / 128.0 ** 2))

    def texel_budget(self, area_m2: float) -> int:
        """Total atlas texels allowed for a tile of this area (scales with area)."""
        side = min(self.max_atlas_side, self.atlas_side_per_128m * math.sqrt(area_m2) / 128.0)
        return int(side * side)


def preset_values(preset: Preset) -> dict:
    """The preset as plain JSON-able values (a world's manifest stores them)."""
    return asdict(preset)


def preset_from_values(values: dict, source: str = "preset") -> Preset:
    """A Preset from plain values, every key checked (``contract.preset_problem``); raises
    InputError naming ``source``."""
    problem = preset_problem(values)
    if problem:
        raise InputError(source, *problem)
    return Preset(**{k: (PRESET_NUMBERS[k][0](values[k]) if k in PRESET_NUMBERS else values[k])
                     for k in PRESET_FIELDS})


def available_presets(directory: Path = PRESET_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.toml"))


def load_preset(name_or_path: str, directory: Path = PRESET_DIR) -> Preset:
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = directory / f"{name_or_path}.toml"
    if not path.is_file():
        raise InputError("--preset", f"no preset {name_or_path!r}",
                         f"use one of: {', '.join(available_presets(directory))}, or a .toml file")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a TOML file ({exc})", "compare with presets/game.toml") from None
    return preset_from_values(data, str(path))
