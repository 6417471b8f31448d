"""Output presets: the shipped ``presets/*.toml`` plus the user's own, saved as .toml files.

An enum identifier is the preset's name for a shipped preset and ``user:NAME`` for a user preset;
:func:`cli_value` turns either into what ``satforge --preset`` accepts (a name or a .toml path).
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

from ..core.contract import PRESET_FIELDS as FIELDS
from ..core.contract import preset_problem
from . import paths
from .commands import PACKAGE_DIR

BUILTIN_DIR = PACKAGE_DIR / "presets"
USER_PREFIX = "user:"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
# Blender's enum callbacks must return strings Python keeps alive: hold the last list here.
_ITEMS: list[tuple[str, str, str]] = []


def user_dir() -> Path:
    return paths.user_dir("presets")


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def user_names() -> list[str]:
    return sorted(p.stem for p in user_dir().glob("*.toml") if _NAME.match(p.stem))


def path_of(identifier: str) -> Path | None:
    """The .toml behind an enum identifier, a shipped or user preset name, or a .toml path."""
    if identifier.startswith(USER_PREFIX):
        path = user_dir() / f"{identifier[len(USER_PREFIX):]}.toml"
    elif identifier.endswith(".toml"):
        path = Path(identifier)
    elif (BUILTIN_DIR / f"{identifier}.toml").is_file():
        path = BUILTIN_DIR / f"{identifier}.toml"
    else:
        path = user_dir() / f"{identifier}.toml"
    return path if path.is_file() else None


def cli_value(identifier: str) -> str:
    """``--preset`` for the worker: shipped presets by name (the worker has the same files), the
    rest by path; an unknown name is passed through so the worker's one-line error names it."""
    if identifier in builtin_names():
        return identifier
    path = path_of(identifier)
    return str(path) if path is not None else identifier


def load(identifier: str) -> dict:
    """The preset's fields; raises ValueError with a one-line reason."""
    path = path_of(identifier)
    if path is None:
        raise ValueError(f"no preset {identifier!r} (use one of: {', '.join(builtin_names() + user_names())})")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: invalid preset file ({exc})") from None
    problem = preset_problem(data)
    if problem:
        raise ValueError(f"{path}: {problem[0]} ({problem[1]})")
    return {key: data[key] for key in FIELDS}


def enum_items(_self=None, _context=None) -> list[tuple[str, str, str]]:
    """Items for the panel's preset menu: shipped presets first, then the user's."""
    items = []
    for name in builtin_names():
        items.append((name, name, _description(BUILTIN_DIR / f"{name}.toml")))
    for name in user_names():
        items.append((USER_PREFIX + name, f"{name} (user)", _description(user_dir() / f"{name}.toml")))
    _ITEMS[:] = items or [("game", "game", "")]
    return _ITEMS


def _description(path: Path) -> str:
    try:
        return str(tomllib.loads(path.read_text(encoding="utf-8")).get("description", ""))
    except (OSError, tomllib.TOMLDecodeError):
        return "(unreadable preset file)"


def _toml_value(value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def save(values: dict) -> Path:
    """Write a user preset ``<user presets>/<name>.toml``; returns its path. Raises ValueError."""
    name = str(values.get("name", ""))
    if not _NAME.match(name):
        raise ValueError(f"preset name {name!r}: use letters, digits, '-' and '_' (at most 63)")
    if name in builtin_names():
        raise ValueError(f"preset name {name!r} is a shipped preset: choose another name")
    problem = preset_problem({key: values.get(key) for key in FIELDS})
    if problem:
        raise ValueError(f"{problem[0]}: {problem[1]}")
    text = "# A SatForge user preset, saved from Blender.\n" + "".join(
        f"{key} = {_toml_value(values[key])}\n" for key in FIELDS)
    tomllib.loads(text)  # never write a file the worker cannot read
    path = user_dir() / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def texture_cap(preset: dict, area_m2: float) -> int:
    """The largest texture side the preset allows for this much ground (as core.presets does:
    one atlas of ``atlas_side_per_128m`` per 128 m x 128 m, at most ``max_atlas_side``)."""
    side = preset["atlas_side_per_128m"] * (max(area_m2, 1.0) ** 0.5) / 128.0
    return max(1, int(min(preset["max_atlas_side"], side)))
