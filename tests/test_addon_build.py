"""The extension package: a valid manifest and an installable zip (tools/build_extension.py)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Blender's fields for a 4.2+ extension manifest that must be present (and not empty).
REQUIRED = ("schema_version", "id", "version", "name", "tagline", "maintainer", "type", "blender_version_min",
            "license")


def _build_module():
    spec = importlib.util.spec_from_file_location("build_extension", ROOT / "tools" / "build_extension.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _blender_ext_cli() -> Path | None:
    """Blender's own extension command-line tool, shipped inside the pip bpy module."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        return None
    found = sorted(Path(spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    return found[-1] if found else None


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    assert _build_module().main(["--output-dir", str(out), "--no-blender"]) == 0
    (zip_path,) = out.glob("*.zip")
    return zip_path


def test_manifest_has_every_required_field_and_no_empty_value():
    manifest = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    for key in REQUIRED:
        assert manifest.get(key), f"blender_manifest.toml: {key} is missing or empty"

    def no_empty(value, where):
        assert value not in ("", [], {}), f"blender_manifest.toml: {where} is empty"
        if isinstance(value, dict):
            for k, v in value.items():
                no_empty(v, f"{where}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                no_empty(v, f"{where}[{i}]")

    no_empty(manifest, "manifest")
    assert manifest["type"] == "add-on" and manifest["id"] == "satforge"
    assert len(manifest["tagline"]) <= 64 and manifest["tagline"][-1].isalnum()
    assert manifest["permissions"]["files"] and "network" not in manifest["permissions"]
    from satforge import __version__

    assert manifest["version"] == __version__


def test_blender_validates_the_manifest():
    cli = _blender_ext_cli()
    if cli is None:
        pytest.skip("Blender's extension tool (in the pip bpy module) is not installed")
    proc = subprocess.run([sys.executable, str(cli), "validate", str(ROOT)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zip_has_the_manifest_at_its_root_and_no_development_files(built):
    names = zipfile.ZipFile(built).namelist()
    assert names[0] == "blender_manifest.toml"
    for needed in ("__init__.py", "__main__.py", "cli.py", "addon/__init__.py", "addon/worker.py",
                   "presets/game.toml", "core/__init__.py", "exporters/gltf.py", "world/run.py"):
        assert needed in names, needed
    for name in names:
        top = name.split("/")[0]
        assert top not in {"tests", ".venv", "node_modules", ".git", "tools", "benchmarks", ".ci", "dist"}, name
        assert "__pycache__" not in name and not name.endswith((".zip", ".pyc")), name
        assert not any(part.startswith(".") for part in name.split("/")), name
    assert not [n for n in names if ".egg-info" in n]


def test_zip_matches_what_blenders_builder_packs(built, tmp_path):
    """Where Blender's builder is at hand (pip bpy ships it), it packs the very same files and
    accepts our zip as a valid package."""
    cli = _blender_ext_cli()
    if cli is None:
        pytest.skip("Blender's extension tool (in the pip bpy module) is not installed")
    theirs = tmp_path / "theirs.zip"
    subprocess.run([sys.executable, str(cli), "build", "--source-dir", str(ROOT), "--output-filepath",
                    str(theirs)], capture_output=True, check=True)
    assert sorted(zipfile.ZipFile(theirs).namelist()) == sorted(zipfile.ZipFile(built).namelist())
    proc = subprocess.run([sys.executable, str(cli), "validate", str(built)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(("pattern", "path", "is_dir", "expected"), [
    ("__pycache__/", "addon/__pycache__", True, True),
    ("__pycache__/", "__pycache__", False, False),
    ("/tests/", "tests", True, True),
    ("/tests/", "addon/tests", True, False),
    ("*.zip", "dist/a.zip", False, True),
    (".*", "addon/.hidden", False, True),
    ("*.egg-info/", "satforge.egg-info", True, True),
    ("/package.json", "package.json", False, True),
    ("/package.json", "sub/package.json", False, False),
])
def test_exclude_patterns_follow_gitignore(pattern, path, is_dir, expected):
    assert _build_module().Pattern(pattern).matches(path, is_dir) is expected


def test_the_zip_unpacked_as_an_extension_is_the_workers_satforge(built, tmp_path):
    """Installed, the extension is a folder named satforge; with its parent on PYTHONPATH (what the
    add-on gives the worker) `python -m satforge` runs that copy, ahead of any installed one."""
    ext = tmp_path / "extensions" / "user_default" / "satforge"
    zipfile.ZipFile(built).extractall(ext)
    code = ("from satforge.addon import commands; import satforge; "
            "print(commands.worker_env({})['PYTHONPATH']); print(satforge.__file__)")
    env = {**os.environ, "PYTHONPATH": str(ext.parent)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                          cwd=tmp_path)
    pythonpath, module = proc.stdout.splitlines()
    assert pythonpath == str(ext.parent) and Path(module).parent == ext
    proc = subprocess.run([sys.executable, "-m", "satforge", "--version"], env=env, capture_output=True,
                          text=True, check=True, cwd=tmp_path)
    assert proc.stdout.strip().startswith("satforge ")
