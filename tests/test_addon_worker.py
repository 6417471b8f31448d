"""The add-on's bpy-free parts: the worker process, command lines, the interpreter check, the
files written for .blend images, world folders, and the import rules of an extension."""
from __future__ import annotations

import ast
import io
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

from satforge.addon import commands, interpreter, raster_files, world_files
from satforge.addon.worker import Worker, failure_message, parse_line

ROOT = Path(__file__).resolve().parent.parent


def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "fake_worker.py"
    path.write_text(body)
    return [sys.executable, str(path)]


def _run(worker: Worker, limit: float = 20.0) -> list[dict]:
    """Poll like the add-on does until the worker is finished; every event seen."""
    events, deadline = [], time.monotonic() + limit
    while not worker.finished:
        assert time.monotonic() < deadline, "worker never finished"
        events += worker.events()
        time.sleep(0.01)
    return events + worker.events()


def test_parse_line_reads_events_and_keeps_other_output():
    assert parse_line('{"event": "progress", "progress": 0.5}\n') == {"event": "progress", "progress": 0.5}
    assert parse_line("Warning: something\n") == {"event": "log", "line": "Warning: something"}
    assert parse_line('{"not": "an event"}')["event"] == "log"
    assert parse_line("{broken json")["event"] == "log"


def test_worker_events_arrive_while_it_runs(tmp_path):
    argv = _script(tmp_path, """
import json, time
for i in range(5):
    print(json.dumps({"event": "progress", "progress": i / 4}), flush=True)
    time.sleep(0.05)
print(json.dumps({"event": "done", "outputs": ["scene.glb"]}), flush=True)
""")
    worker = Worker(argv)
    events = _run(worker)
    assert [e["progress"] for e in events if e["event"] == "progress"] == [0, 0.25, 0.5, 0.75, 1.0]
    assert events[-1] == {"event": "done", "outputs": ["scene.glb"]}
    assert worker.returncode == 0


def test_failure_message_is_the_clis_one_line(tmp_path):
    argv = _script(tmp_path, """
import json, sys
print(json.dumps({"event": "error", "message": "bad.tif: not a raster"}), flush=True)
print("satforge: error: bad.tif: not a raster (pass a GeoTIFF)", file=sys.stderr)
sys.exit(2)
""")
    worker = Worker(argv)
    events = _run(worker)
    assert worker.returncode == 2
    error = next(e for e in events if e["event"] == "error")
    assert failure_message(worker, error) == "satforge: error: bad.tif: not a raster (pass a GeoTIFF)"


def test_failure_message_explains_a_python_without_satforge(tmp_path):
    argv = _script(tmp_path, "import satforge_not_installed_anywhere\n")
    worker = Worker(argv)
    _run(worker)
    message = failure_message(worker, None)
    assert "cannot import satforge_not_installed_anywhere" in message and "preferences" in message
    assert "\n" not in message


@pytest.mark.skipif(os.name != "posix", reason="signals")
def test_a_crash_is_named_with_where_it_happened(tmp_path):
    argv = _script(tmp_path, """
import faulthandler, os, signal
faulthandler.enable()
def deep_in_a_native_library():
    os.kill(os.getpid(), signal.SIGSEGV)
deep_in_a_native_library()
""")
    worker = Worker(argv)
    _run(worker)
    message = failure_message(worker, None)
    assert message.startswith("satforge: internal error: the worker crashed (SIGSEGV) at File ")
    assert "deep_in_a_native_library" in message and "\n" not in message


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.skipif(os.name != "posix", reason="process groups are POSIX; Windows uses taskkill /T")
def test_cancel_ends_the_worker_and_its_children_within_a_second(tmp_path):
    argv = _script(tmp_path, """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
""")
    worker = Worker(argv)
    deadline = time.monotonic() + 10
    events = []
    while not events:
        assert time.monotonic() < deadline
        events = worker.events()
        time.sleep(0.01)
    child = int(events[0]["line"])
    start = time.monotonic()
    worker.cancel()
    assert time.monotonic() - start < 1.5 and worker.returncode is not None
    while not worker.finished:  # at most the pipe grace period after the exit
        assert time.monotonic() - start < 3
        time.sleep(0.01)
    deadline = time.monotonic() + 2
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child), "the worker's own child process survived the cancel"


@pytest.mark.skipif(os.name != "posix", reason="POSIX process groups")
def test_a_grandchild_holding_the_pipe_does_not_block(tmp_path):
    """The worker exits but a process it started keeps stdout open: we still finish promptly."""
    argv = _script(tmp_path, """
import json, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])  # inherits stdout
print(json.dumps({"event": "done", "outputs": []}), flush=True)
""")
    worker = Worker(argv)
    start = time.monotonic()
    events = _run(worker, limit=10)
    assert time.monotonic() - start < 5
    assert events[-1]["event"] == "done"
    worker.cancel()  # ends the sleeping grandchild too


def test_generate_argv():
    args = commands.GenerateArgs(out=Path("/o"), rgb=Path("/r.tif"), semantic=Path("/s.tif"), gsd=0.5,
                                 preset="twin", seed=7, palette="earthcrafter25")
    argv = commands.generate_argv("/py", args)
    assert argv[:4] == ["/py", "-m", "satforge", "generate"]
    text = " ".join(argv)
    for part in ("--rgb /r.tif", "--semantic /s.tif", "--gsd 0.5", "--preset twin", "--seed 7",
                 "--palette earthcrafter25", "--formats glb,gltf,obj", "--progress json", "--out /o"):
        assert part in text
    assert "--height" not in text and "--dtm" not in text
    assert "--gsd" not in commands.generate_argv("/py", commands.GenerateArgs(out=Path("/o"), rgb=Path("/r")))


def test_learned_generator_argv_carries_the_weights_options_the_cli_has():
    from satforge.cli import _parser

    args = commands.GenerateArgs(out=Path("/o"), rgb=Path("/r.tif"), generator="rs3dada",
                                 weights={"height": "/w/h.pth", "classes": "/w/s.pth"})
    argv = commands.generate_argv("/py", args)
    assert " ".join(argv).count("--generator rs3dada --height-weights /w/h.pth --seg-weights /w/s.pth") == 1
    parsed = _parser().parse_args(argv[3:])
    assert (parsed.generator, parsed.height_weights, parsed.seg_weights) == ("rs3dada", "/w/h.pth", "/w/s.pth")
    default = commands.generate_argv("/py", commands.GenerateArgs(out=Path("/o"), rgb=Path("/r"),
                                                                  weights={"height": "/w/h.pth"}))
    assert "--height-weights" not in default  # the default generator takes no weights
    fetch = commands.fetch_weights_argv("/py", "rs3dada")
    assert _parser().parse_args(fetch[3:]).name == "rs3dada"


def test_the_contract_lists_the_registered_generators():
    from satforge.core.contract import GENERATORS
    from satforge.core.generators import available_generators

    assert sorted(GENERATORS) == available_generators()


def test_world_argv_keeps_negative_ranges_in_one_token():
    argv = commands.world_argv("/py", Path("/w"), (-1, 1, -2, 0), {"chunk_size": 32.0, "lods": 1, "seed": 5,
                                                                   "preset": "game", "gsd": 0.5})
    assert "--tiles=-1:1,-2:0" in argv
    assert argv[argv.index("--chunk-size") + 1] == "32.0" and argv[-2:] == ["--progress", "json"]
    # An existing world: nothing but the folder and the range (the CLI reads the manifest).
    assert commands.world_argv("/py", Path("/w"), (0, 0, 0, 0)) == [
        "/py", "-m", "satforge", "world", "--out", "/w", "--tiles=0:0,0:0", "--progress", "json"]


def test_worker_env_puts_an_installed_extensions_parent_on_pythonpath(monkeypatch, tmp_path):
    monkeypatch.setattr(commands, "PACKAGE_DIR", tmp_path / "satforge")
    env = commands.worker_env({"PYTHONPATH": "/other"})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(tmp_path), "/other"]
    monkeypatch.setattr(commands, "PACKAGE_DIR", tmp_path / "main")  # a checkout: leave it alone
    env = commands.worker_env({})
    assert "PYTHONPATH" not in env and env["PYTHONUNBUFFERED"] == "1"


def test_interpreter_check_finds_this_python_complete():
    result = interpreter.check(sys.executable)
    assert result["ok"], result
    ok, text = interpreter.summary(sys.executable, result, "0.1.0")
    assert ok and text.startswith("OK: satforge")


@pytest.mark.skipif(os.name != "posix", reason="uses a shell script as the interpreter")
def test_interpreter_check_names_what_is_missing(tmp_path):
    bare = tmp_path / "bare-python"
    bare.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')  # no site-packages at all
    bare.chmod(0o755)
    result = interpreter.check(str(bare))
    assert not result["ok"] and {"satforge", "torch", "numpy"} <= set(result["missing"])
    ok, text = interpreter.summary(str(bare), result, "0.1.0")
    assert not ok and "satforge" in text and "torch" in text and "pip install" in text
    missing = interpreter.check(str(tmp_path / "no-such-python"))
    assert not missing["ok"] and "cannot run" in missing["error"]


def test_requirements_list_matches_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~ ]", d)[0].lower().replace("-", "_") for d in deps}
    import_names = {"pillow": "pil", "scikit_image": "skimage"}
    assert {import_names.get(n, n) for n in names} == {r.lower() for r in interpreter.REQUIREMENTS}


def test_png_bytes_round_trip():
    from PIL import Image

    rng = np.random.default_rng(1)
    for shape in ((5, 7), (5, 7, 3), (4, 3, 4)):
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        image = np.asarray(Image.open(io.BytesIO(raster_files.png_bytes(pixels))))
        assert image.shape == pixels.shape and (image == pixels).all()


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_float_tiff_round_trip(tmp_path):
    import rasterio

    heights = np.linspace(-3.5, 41.25, 6 * 9, dtype=np.float32).reshape(6, 9)
    path = raster_files.write(tmp_path / "h.tif", raster_files.tiff_float_bytes(heights))
    with rasterio.open(path) as src:
        assert src.dtypes == ("float32",) and (src.read(1) == heights).all()


def test_world_indexing():
    assert world_files.block(0, 0, 1)[0] == (-1, -1) and len(world_files.block(0, 0, 1)) == 9
    assert world_files.block(5, -2, 0) == [(5, -2)]
    assert world_files.chunk_centre(32.0, -1, 2) == (-16.0, 80.0)
    assert world_files.chunk_at(32.0, -0.01, 31.99) == (-1, 0)
    assert world_files.chunk_at(32.0, 32.0, -32.0) == (1, -1)


def _python_sources(*folders: str) -> list[Path]:
    files = []
    for folder in folders:
        path = ROOT / folder
        files += [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))
    return files


def _absolute_imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports in a file's code (not in its strings)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _touches_sys_path(path: Path) -> bool:
    return any(isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
               and node.value.id == "sys" for node in ast.walk(ast.parse(path.read_text())))


def test_addon_uses_relative_imports_and_leaves_sys_path_alone():
    """Installed as an extension the package is bl_ext.<repo>.satforge: ``import satforge`` would
    find nothing (or another copy). Blender's sys.path is shared by every add-on: hands off."""
    for path in _python_sources("addon", "__init__.py"):
        assert "satforge" not in _absolute_imports(path), path
        assert not _touches_sys_path(path), path


def test_core_never_imports_bpy():
    for path in _python_sources("core", "exporters", "world", "cli.py", "pipeline.py", "__init__.py"):
        assert not _absolute_imports(path) & {"bpy", "mathutils", "bmesh"}, path


def test_bpy_free_addon_modules_import_without_bpy():
    """worker/commands/interpreter/... are importable by a plain Python (no Blender)."""
    code = ("import sys; sys.modules['bpy'] = None\n"
            "from satforge.addon import worker, commands, interpreter, raster_files, glb, world_files, georef\n"
            "print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.stdout.strip() == "ok", proc.stderr
