"""The boundaries between the parts: who may import what, one contract for core and add-on, a world
that keeps its preset values, error hints that name flags the command has, and one no-data rule."""
from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from satforge.cli import _parser, main

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "data" / "real"
def _product_files(top: Path) -> list[Path]:
    """The product's .py files under a top-level entry: not tests, virtual environments (.venv*),
    package caches or builds."""
    if top.name in {"tests", "node_modules", "build", "dist", "out"} or top.name.startswith("."):
        return []
    return [top] if top.suffix == ".py" else sorted(top.rglob("*.py")) if top.is_dir() else []


SOURCES = sorted(p for top in ROOT.iterdir() for p in _product_files(top))


def _module(path: Path) -> str:
    return ".".join(("satforge", *path.relative_to(ROOT).with_suffix("").parts)).removesuffix(".__init__")


def _imports(path: Path) -> list[tuple[str, str]]:
    """(absolute module, imported name or '') for every import of a product file."""
    package = _module(path).split(".") if path.name == "__init__.py" else _module(path).split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found += [(module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


def test_the_import_walk_sees_the_product():
    assert len(SOURCES) > 50 and ("satforge.core.contract", "INPUT_ROLES") in _imports(ROOT / "world/run.py")


@pytest.mark.parametrize("path", [p for p in SOURCES if p.relative_to(ROOT).parts[0] != "core"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_outside_core_imports_a_private_name_of_core(path):
    for module, name in _imports(path):
        if module.startswith("satforge.core"):
            private = [part for part in (*module.split("."), name) if part.startswith("_") and part != "__future__"]
            assert not private, f"{path.name} imports {module}.{name}"


@pytest.mark.parametrize("path", [p for p in SOURCES if p.relative_to(ROOT).parts[0] == "world"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_world_uses_only_the_public_generator_api(path):
    for module, name in _imports(path):
        assert not module.startswith("satforge.core.generators.") and "DefaultGenerator" not in name, \
            f"{path.name} imports {module}.{name}"


@pytest.mark.parametrize("path", [p for p in SOURCES if p.relative_to(ROOT).parts[0] == "addon"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_addon_takes_only_the_contract_from_core(path):
    for module, _ in _imports(path):
        assert not module.startswith("satforge.core") or module == "satforge.core.contract", module


def test_core_never_imports_bpy():
    for path in SOURCES:
        if path.relative_to(ROOT).parts[0] == "core":
            assert all(not m.startswith("bpy") for m, _ in _imports(path)), path


def test_the_contract_is_standard_library_only():
    for module, _ in _imports(ROOT / "core/contract.py"):
        assert module.split(".")[0] in {"__future__", "hashlib", "json", "os", "pathlib", "secrets", "socket"}, module


def test_core_tables_agree_with_the_contract():
    from satforge.core import contract
    from satforge.core.presets import Preset
    from satforge.core.schemes import SCHEMES

    assert set(SCHEMES) == set(contract.PALETTES)
    assert tuple(Preset.__dataclass_fields__) == contract.PRESET_FIELDS


def test_the_duplicated_contracts_are_gone():
    """The role tuple, output names and world paths are written once, in the contract."""
    patterns = [r'\("rgb", "height", "dtm", "semantic"\)', r'"scene\.glb"', r'"manifest\.json"',
                r'tile_x\{x\}_y\{y\}\.glb', r'"max_atlas_side", "feature_ids"', r'"report\.json"']
    for path in SOURCES:
        if path.name == "contract.py":
            continue
        text = path.read_text()
        for pattern in patterns:
            assert not re.search(pattern, text), f"{path.relative_to(ROOT)} repeats {pattern}"


# ---- a world keeps its preset values ------------------------------------------------------------

def _user_preset(folder: Path, triangles: int) -> Path:
    text = (ROOT / "presets/game.toml").read_text()
    text = re.sub(r'name = "game"', 'name = "mine"', text)
    text = re.sub(r"triangles_per_128m = \d+", f"triangles_per_128m = {triangles}", text)
    path = folder / "mine.toml"
    path.write_text(text)
    return path


def _world(out: Path, tiles: str, *extra: str) -> int:
    return main(["world", "--out", str(out), "--tiles", tiles, "--progress", "none", *extra])


def test_a_world_made_with_a_user_preset_extends_with_its_stored_values(tmp_path, capsys):
    preset = _user_preset(tmp_path, 6000)
    whole, grown = tmp_path / "whole", tmp_path / "grown"
    settings = ["--chunk-size", "32", "--seed", "2"]
    assert _world(whole, "0:1,0:0", "--preset", str(preset), *settings) == 0
    assert _world(grown, "0:0,0:0", "--preset", str(preset), *settings) == 0
    stored = json.loads((grown / "manifest.json").read_text())["preset"]
    assert stored["name"] == "mine" and stored["triangles_per_128m"] == 6000
    _user_preset(tmp_path, 90000)          # the .toml edited later must not change new chunks
    assert _world(grown, "1:1,0:0") == 0   # --out and --tiles only
    tile = "tiles/0/tile_x1_y0.glb"
    assert (grown / tile).read_bytes() == (whole / tile).read_bytes()
    capsys.readouterr()
    assert _world(grown, "2:2,0:0", "--preset", "game") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--preset" in err and "triangles_per_128m" in err
    assert not (grown / "tiles/0/tile_x2_y0.glb").exists()
    assert _world(grown, "2:2,0:0", "--preset", str(preset)) == 2  # same name, other values now


# ---- error hints name flags the command has -------------------------------------------------------

def _options(command: str) -> set[str]:
    sub = next(a for a in _parser()._actions if a.dest == "command")
    return {s for a in sub.choices[command]._actions for s in a.option_strings}


@pytest.fixture(scope="module")
def plain_png(tmp_path_factory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("png") / "photo.png"
    rows = np.random.default_rng(1).integers(60, 200, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(rows).save(path)
    return path


def _hint_cases(png: Path, out: Path) -> list[tuple[str, list[str], list[str]]]:
    """(command, argv giving an error whose hint names a flag, argv that follows the hint)."""
    gen, world = ["generate", "--rgb", str(png), "--out"], ["world", "--rgb", str(png), "--tiles", "0:0,0:0",
                                                              "--chunk-size", "32", "--out"]
    return [
        ("generate", [*gen, str(out / "g1")], [*gen, str(out / "g1"), "--gsd", "0.5"]),
        ("generate", [*gen, str(out / "g2"), "--gsd", "5000"], [*gen, str(out / "g2"), "--gsd", "0.3"]),
        ("world", [*world, str(out / "w1")], [*world, str(out / "w1"), "--input-gsd", "0.5"]),
        ("world", [*world, str(out / "w2"), "--input-gsd", "5000"], [*world, str(out / "w2"), "--input-gsd", "0.3"]),
        ("world", ["world", "--out", str(out / "w3"), "--tiles", "0:0,0:0", "--chunk-size", "32", "--palette",
                   "openearthmap"], ["world", "--out", str(out / "w3"), "--tiles", "0:0,0:0", "--chunk-size", "32"]),
    ]


def test_every_flag_a_hint_names_exists_and_following_it_works(plain_png, tmp_path, capsys):
    for command, wrong, followed in _hint_cases(plain_png, tmp_path):
        assert main([*wrong, "--progress", "none"]) == 2, wrong
        err = capsys.readouterr().err
        named = set(re.findall(r"--[a-z][a-z-]+", err))
        assert named and named <= _options(command), (command, err)
        assert main([*followed, "--progress", "none"]) == 0, (followed, capsys.readouterr().err)
        capsys.readouterr()


# ---- one no-data rule ------------------------------------------------------------------------------

@pytest.mark.skipif(not (REAL / "manila_ortho_rgb_0p1m.tif").exists(), reason="../shared/data/real is absent")
def test_manilas_black_frame_is_masked_the_same_by_generate_and_world(tmp_path):
    from satforge.core.inputs import InputFiles, load_tile
    from satforge.world.inputs import open_inputs, read_window

    photo = tmp_path / "manila.tif"
    shutil.copy(REAL / "manila_ortho_rgb_0p1m.tif", photo)
    whole = load_tile(InputFiles(rgb=photo)).image_valid
    frame = ~whole
    assert 0.02 < frame.mean() < 0.9, "the file has a black frame"
    inputs = open_inputs(InputFiles(rgb=photo))[0]
    raster = inputs.raster("rgb")
    side = 51.2  # metres: 512 px windows, as a world's chunks read them
    for ix in range(4):
        for iy in range(4):
            rect = (ix * side, iy * side, (ix + 1) * side, (iy + 1) * side)
            window = read_window(raster, rect)
            rows = slice(window.row0, window.row0 + window.data.shape[1])
            cols = slice(window.col0, window.col0 + window.data.shape[2])
            windowed = ~np.isnan(window.data[0])
            assert np.array_equal(windowed, whole[rows, cols]), (ix, iy)


def test_every_package_is_installed():
    """pyproject.toml lists packages by hand (the repository root is the package): none may be missing."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {_module(p) for p in SOURCES if p.name == "__init__.py"}
    assert found <= listed, sorted(found - listed)
