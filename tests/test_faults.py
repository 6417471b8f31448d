"""The fault corpus: bad inputs, bad options and unusable outputs against generate, convert, world
and estimate. Each must end with exit 2, exactly one line on stderr naming the culprit, and not a
byte written (no file, no temporary file, no empty folder); legal edge cases give a valid result.
Faults of the system (a full disk, a read-only disk) and of other processes (kill -9, a second
run on one world) are below the table."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers_validate import assert_valid_gltf
from PIL import Image

from satforge.cli import main

GAME = (Path(__file__).resolve().parents[1] / "presets" / "game.toml").read_text()


def _preset(text: str, key: str, value: str | None) -> str:
    """game.toml with ``key`` set to ``value`` (None: the key left out)."""
    lines = [line for line in text.splitlines() if not line.startswith(f"{key} ")]
    return "\n".join(lines + ([f"{key} = {value}"] if value is not None else [])) + "\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory, city_files) -> dict[str, Path]:
    """Inputs for the corpus, in a folder of their own (the sandbox the cases write into is separate)."""
    d = tmp_path_factory.mktemp("corpus-inputs")
    rng = np.random.default_rng(0)
    out = {"city": city_files["rgb"], "ndsm": city_files["ndsm"]}
    for name, side in (("photo", 32), ("one", 1), ("eight", 8)):
        out[name] = d / f"{name}.png"
        Image.fromarray(rng.integers(30, 220, (side, side, 3), np.uint8)).save(out[name])
    out["garbage"] = d / "garbage.tif"
    out["garbage"].write_bytes(rng.integers(0, 256, 5000, np.uint8).tobytes())
    out["empty"] = d / "empty.tif"
    out["empty"].write_bytes(b"")
    np.savez(d / "scene.npz", coords=np.zeros((5000, 3), np.int32))
    out["not_scene"] = d / "scene.npz"
    out["truncated"] = d / "truncated.npz"
    out["truncated"].write_bytes(out["not_scene"].read_bytes()[:3000])
    presets = {"type": _preset(GAME, "triangles_per_128m", '"lots"'),
               "negative": _preset(GAME, "triangles_per_128m", "-5"),
               "huge_atlas": _preset(GAME, "max_atlas_side", "100000"),
               "unknown_key": GAME + "triangles = 5\n",
               "missing_key": _preset(GAME, "feature_ids", None),
               "bad_feature_ids": _preset(GAME, "feature_ids", '"draco"'),
               "not_toml": "name = [unclosed\n"}
    for name, text in presets.items():
        out[f"preset_{name}"] = d / f"{name}.toml"
        out[f"preset_{name}"].write_text(text)
    return out


# (id, argv with {name} for an input above and {out} for the output folder, words the line must hold)
CORPUS = [
    ("generate-no-input", "generate --out {out}", ["--rgb"]),
    ("generate-out-is-a-file", "generate --rgb {city} --out {a_file}", ["--out", "is a file"]),
    ("generate-out-under-a-file", "generate --rgb {city} --out {a_file}/sub", ["--out", "inside"]),
    ("generate-gsd-zero", "generate --rgb {photo} --gsd 0 --out {out}", ["--gsd"]),
    ("generate-gsd-negative", "generate --rgb {photo} --gsd -0.5 --out {out}", ["--gsd"]),
    ("generate-gsd-huge", "generate --rgb {photo} --gsd 1e6 --out {out}", ["--gsd"]),
    ("generate-one-pixel", "generate --rgb {one} --gsd 0.5 --out {out}", ["one.png", "8x8"]),
    ("generate-garbage-file", "generate --rgb {garbage} --out {out}", ["garbage.tif"]),
    ("generate-empty-file", "generate --rgb {empty} --out {out}", ["empty.tif"]),
    ("generate-missing-file", "generate --rgb {out}/nope.tif --out {out}", ["nope.tif"]),
    ("generate-bad-format", "generate --rgb {city} --formats fbx --out {out}", ["--formats"]),
    ("generate-bad-palette", "generate --rgb {city} --palette nope --out {out}", ["palette"]),
    ("generate-bad-generator", "generate --rgb {city} --generator nope --out {out}", ["--generator"]),
    ("generate-bad-seed", "generate --rgb {city} --seed x --out {out}", ["seed"]),
    ("generate-unknown-preset", "generate --rgb {city} --preset ultra --out {out}", ["--preset", "game"]),
    ("preset-wrong-type", "generate --rgb {city} --preset {preset_type} --out {out}",
     ["type.toml", "triangles_per_128m", "'lots'", "whole number"]),
    ("preset-negative-budget", "generate --rgb {city} --preset {preset_negative} --out {out}",
     ["triangles_per_128m = -5", "2,000"]),
    ("preset-huge-atlas", "generate --rgb {city} --preset {preset_huge_atlas} --out {out}",
     ["max_atlas_side = 100000", "16,384"]),
    ("preset-unknown-key", "generate --rgb {city} --preset {preset_unknown_key} --out {out}",
     ["unknown key", "triangles"]),
    ("preset-missing-key", "generate --rgb {city} --preset {preset_missing_key} --out {out}",
     ["missing feature_ids"]),
    ("preset-bad-feature-ids", "generate --rgb {city} --preset {preset_bad_feature_ids} --out {out}",
     ["'draco'", "ext_mesh_features"]),
    ("preset-not-toml", "generate --rgb {city} --preset {preset_not_toml} --out {out}", ["not_toml.toml", "TOML"]),
    ("convert-truncated-npz", "convert {truncated} --out {out}", ["truncated.npz", "truncated"]),
    ("convert-not-a-scene", "convert {not_scene} --out {out}", ["scene.npz"]),
    ("convert-missing", "convert {out}/nope.npz --out {out}", ["nope.npz"]),
    ("convert-out-is-a-file", "convert {not_scene} --out {a_file}", ["--out", "is a file"]),
    ("world-out-is-a-file", "world --tiles 0:0,0:0 --out {a_file}", ["--out", "is a file"]),
    ("world-input-gsd-zero", "world --rgb {photo} --input-gsd 0 --tiles 0:0,0:0 --out {out}", ["--input-gsd"]),
    ("world-input-gsd-negative", "world --rgb {photo} --input-gsd -0.5 --tiles 0:0,0:0 --out {out}",
     ["--input-gsd"]),
    ("world-input-gsd-huge", "world --rgb {photo} --input-gsd 1e6 --tiles 0:0,0:0 --out {out}", ["--input-gsd"]),
    ("world-tiles-huge", "world --tiles 0:9999999,0:0 --out {out}", ["--tiles", "10,000,000", "--max-chunks"]),
    ("world-tiles-unreadable", "world --tiles 0-3 --out {out}", ["--tiles"]),
    ("world-tiles-empty", "world --tiles 3:0,0:0 --out {out}", ["--tiles"]),
    ("world-workers-zero", "world --tiles 0:0,0:0 --workers 0 --out {out}", ["--workers"]),
    ("world-wait-negative", "world --tiles 0:0,0:0 --wait -1 --out {out}", ["--wait"]),
    ("world-lods", "world --tiles 0:0,0:0 --lods 9 --out {out}", ["--lods"]),
    ("world-chunk-size", "world --tiles 0:0,0:0 --chunk-size 7 --out {out}", ["--chunk-size"]),
    ("world-gsd", "world --tiles 0:0,0:0 --gsd 0 --out {out}", ["--gsd"]),
    ("world-preset", "world --tiles 0:0,0:0 --preset {preset_negative} --out {out}", ["triangles_per_128m"]),
    ("world-one-pixel", "world --rgb {one} --input-gsd 0.5 --tiles 0:0,0:0 --out {out}", ["one.png"]),
    ("world-palette-without-map", "world --tiles 0:0,0:0 --palette earthcrafter25 --out {out}", ["--palette"]),
    ("estimate-out-is-a-file", "estimate --rgb {city} --out {a_file}", ["--out", "is a file"]),
    ("estimate-one-pixel", "estimate --rgb {one} --out {out}", ["one.png"]),
]
if sys.platform == "linux":
    CORPUS += [("generate-out-in-proc", "generate --rgb {city} --out /proc/satforge-test", ["--out", "/proc"]),
               ("world-out-in-proc", "world --tiles 0:0,0:0 --out /proc/satforge-test", ["--out", "/proc"])]


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _one_line_error(capsys, argv: list[str]) -> str:
    code = main([*argv, "--progress", "none"])
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    assert lines[0].startswith("satforge: error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize("argv, words", [case[1:] for case in CORPUS], ids=[case[0] for case in CORPUS])
def test_a_mistake_is_one_line_and_writes_nothing(files, tmp_path, capsys, argv, words):
    (tmp_path / "a_file").write_text("not a folder\n")
    names = {**{k: str(v) for k, v in files.items()}, "out": str(tmp_path / "out"),
             "a_file": str(tmp_path / "a_file")}
    before = _tree(tmp_path)
    line = _one_line_error(capsys, [arg.format(**names) for arg in argv.split()])
    for word in words:
        assert word in line, line
    assert _tree(tmp_path) == before, "a refused run wrote something"


def test_an_eight_pixel_image_is_a_valid_asset(files, tmp_path, capsys):
    assert main(["generate", "--rgb", str(files["eight"]), "--gsd", "0.5", "--out", str(tmp_path / "o"),
                 "--progress", "none"]) == 0, capsys.readouterr().err
    assert_valid_gltf(tmp_path / "o" / "scene.glb")


# --- the operating system's faults ------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs (root only): too small for any asset; read-only on request."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def _read_only(disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)


@pytest.mark.parametrize("command", [
    "generate --rgb {city} --height {ndsm} --out {disk}/out/scene",
    "world --tiles 0:1,0:1 --chunk-size 32 --out {disk}/world"])
@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_full_or_read_only_disk_is_one_line_and_leaves_nothing(files, small_disk, capsys, command, fault):
    (small_disk / "keep.txt").write_text("the user's\n")
    if fault == "read-only":
        _read_only(small_disk)
    argv = command.format(disk=small_disk, **files).split()
    line = _one_line_error(capsys, argv)
    assert ("no space left" if fault == "full" else "read-only") in line, line
    assert str(small_disk) in line, line
    left = _tree(small_disk) - {"keep.txt"}
    assert not [name for name in left if ".part" in name], left
    if left:  # a world keeps the chunks it committed before the disk filled, intact
        assert command.startswith("world") and fault == "full", left
        _assert_complete_world(small_disk / "world")


def _assert_complete_world(out: Path) -> None:
    import hashlib

    for chunk in json.loads((out / "manifest.json").read_text())["chunks"].values():
        for entry in chunk["files"]:
            assert hashlib.sha256((out / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]


# --- outputs: permissions, temporary files, all-or-nothing -------------------------------------------

def test_outputs_are_readable_by_others_as_the_umask_says(files, tmp_path, capsys):
    old = os.umask(0o022)
    try:
        assert main(["generate", "--rgb", str(files["city"]), "--out", str(tmp_path / "g" / "o"),
                     "--formats", "glb,gltf", "--save-scene", "--progress", "none"]) == 0
        assert main(["world", "--tiles", "0:0,0:0", "--chunk-size", "32", "--out", str(tmp_path / "w"),
                     "--progress", "none"]) == 0
    finally:
        os.umask(old)
    capsys.readouterr()
    for path in (tmp_path / "g").rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644), path
    for path in (tmp_path / "w").rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o755 if path.is_dir() else 0o644), path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_run_removes_dead_runs_temporary_files_only(files, tmp_path, capsys):
    import socket

    out = tmp_path / "o"
    out.mkdir()
    host = socket.gethostname()
    dead = out / f".scene.glb~{host}~{_dead_pid()}~0123abcd.part"
    live = out / f".scene.glb~{host}~{os.getppid()}~0123abcd.part"  # the test runner's parent lives
    foreign = out / f".scene.glb~another-host~{_dead_pid()}~0123abcd.part"  # cannot be told: kept
    dead_stage = tmp_path / f".o~{host}~{_dead_pid()}~0123abcd.part"
    dead_stage.mkdir()
    (dead_stage / "scene.glb").write_bytes(b"half")
    for temp in (dead, live, foreign):
        temp.write_bytes(b"half")
    assert main(["generate", "--rgb", str(files["city"]), "--out", str(out), "--progress", "none"]) == 0
    capsys.readouterr()
    assert not dead.exists() and not dead_stage.exists()
    assert live.exists() and foreign.exists()


def _result(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")}


def _consistent(now: dict[str, bytes], previous: dict[str, bytes], new: dict[str, bytes]) -> str:
    """'previous', 'new', or what the mix holds. Results differ in their report's timings only."""
    def same(a: dict[str, bytes], b: dict[str, bytes]) -> bool:
        strip = {"report.json", "notes.txt"}
        return set(a) - strip == set(b) - strip and all(a[k] == b[k] for k in set(a) - strip) and \
            json.loads(a["report.json"])["seed"] == json.loads(b["report.json"])["seed"]

    if now == previous:
        return "previous"
    if same(now, new):
        return "new"
    return f"mixed: {sorted(now)}"


def test_kill_9_at_any_moment_leaves_the_previous_or_the_new_result(files, tmp_path, capsys):
    """A run with --seed 2 over a --seed 1 result, killed at moments spread over the run and at
    the start of the export (when the staged folder appears)."""
    out = tmp_path / "o"
    argv = ["generate", "--rgb", str(files["city"]), "--formats", "glb,obj", "--save-scene", "--out", str(out)]
    assert main([*argv, "--seed", "1", "--progress", "none"]) == 0
    capsys.readouterr()
    (out / "notes.txt").write_text("the user's own file\n")
    previous = _result(out)
    reference = tmp_path / "reference"
    assert main([*argv[:-1], str(reference), "--seed", "2", "--progress", "none"]) == 0
    new = _result(reference)
    cmd = [sys.executable, "-m", "satforge", *argv, "--seed", "2", "--progress", "json"]
    seen = set()
    for delay in (0.5, 2.0, 3.0, 3.5, 4.0, 4.5, "export"):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if delay == "export":
            for line in proc.stdout:
                if json.loads(line).get("stage") == "export":
                    break
        else:
            time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        state = _consistent(_result(out), previous, new)
        assert state in ("previous", "new"), (delay, state)
        assert (out / "notes.txt").read_text() == "the user's own file\n"
        seen.add(state)
        if state == "new":
            break
    assert "previous" in seen, "the early kills leave the previous result"
    # Whatever the kills left, the next run completes and cleans their temporary folders.
    assert subprocess.run(cmd[:-2] + ["--progress", "none"]).returncode == 0
    assert _consistent(_result(out), previous, new) == "new"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_the_per_file_commit_replaces_an_earlier_result(files, tmp_path, capsys, monkeypatch):
    """Where folders cannot be swapped (no renameat2), files are renamed one by one: the result is
    the same, and files of the earlier result that the new one lacks are removed."""
    from satforge.core import output_dir

    out = tmp_path / "o"
    assert main(["generate", "--rgb", str(files["city"]), "--formats", "obj", "--out", str(out),
                 "--progress", "none"]) == 0
    monkeypatch.setattr(output_dir, "_exchange", lambda a, b: False)
    (out / "notes.txt").write_text("mine\n")
    assert main(["generate", "--rgb", str(files["city"]), "--out", str(out), "--progress", "none"]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "report.json", "scene.geo.json", "scene.glb"]


# --- one writer per world ----------------------------------------------------------------------------

def _world(out: Path, tiles: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "satforge", "world", "--out", str(out), f"--tiles={tiles}",
                             "--chunk-size", "32", "--progress", "json", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _chunks(out: Path) -> set[str]:
    return set(json.loads((out / "manifest.json").read_text())["chunks"])


def test_two_runs_on_one_world_lose_nothing(tmp_path):
    out = tmp_path / "w"
    first, second = _world(out, "-1:2,-1:1"), _world(out, "0:3,0:2")
    results = [p.communicate() + (p.returncode,) for p in (first, second)]
    assert [r[2] for r in results] == [0, 0], results
    assert _chunks(out) == {f"{x},{y}" for x in range(-1, 4) for y in range(-1, 3)} - {"3,-1", "-1,2"}
    waited = [r for r in results if "waiting for the other run" in r[0]]
    assert len(waited) == 1, "the run that started second waits for the first"
    third = _world(out, "-1:2,-1:1")
    stdout, _ = third.communicate()
    assert third.returncode == 0
    assert json.loads(stdout.splitlines()[-1])["report"]["chunks"]["made"] == 0
    assert not (out / "world.lock").exists()


def test_a_held_world_is_refused_with_wait_0_and_a_dead_holders_lock_is_taken_over(tmp_path):
    out = tmp_path / "w"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from satforge.world.lock import world_lock\n"
        f"with world_lock(Path({str(out)!r})):\n    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    try:
        busy = _world(out, "0:0,0:0", "--wait", "0")
        _, err = busy.communicate()
        assert busy.returncode == 2 and len(err.strip().splitlines()) == 1, err
        assert f"process {holder.pid}" in err and "--wait" in err, err
    finally:
        holder.kill()
        holder.wait()
    assert (out / "world.lock").exists(), "kill -9 leaves the lock file, but not the lock"
    after = _world(out, "0:0,0:0", "--wait", "0")
    assert after.communicate()[1] == "" and after.returncode == 0
    assert _chunks(out) == {"0,0"} and not (out / "world.lock").exists()
