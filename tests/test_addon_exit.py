"""Issue 12: a script that drives the add-on through the pip bpy module ends promptly, and
unregister() leaves nothing running. Each case runs addon_exit_script.py in a process of its own
(a hang at exit cannot be seen from inside), under this venv's bpy line (.ci/run runs these tests
under bpy 4.2, 4.5 and 5.0)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from addon_exit_script import LAST_LINE
from helpers_addon import bpy

SCRIPT = Path(__file__).resolve().with_name("addon_exit_script.py")
EXIT_LIMIT_S = 10.0   # issue 12's bound from the last line to the end of the process
RUN_LIMIT_S = 300.0   # generate + export + extend on a loaded CI machine, with room to spare
# bpy lines whose module crashes at exit by itself once Blender's glTF exporter has run (4.2.23:
# a still-registered Python class freed after Python ended, in bpy_class_free). There the add-on
# must end the process the same way, no later.
KNOWN_BAD_EXIT = {(4, 2)}


def run_script(mode: str, work: Path, *flags: str) -> SimpleNamespace:
    """Run the script to its end; ``seconds_to_exit`` counts from its last line (None: never printed)."""
    out, err = work / f"{mode}.out", work / f"{mode}.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, str(SCRIPT), mode, str(work / mode), *flags], stdin=subprocess.DEVNULL,
                                stdout=stdout, stderr=stderr, env=os.environ | {"BLENDER_USER_RESOURCES": str(work)})
    start, last_at = time.monotonic(), None
    while proc.poll() is None and not _overdue(start, last_at):
        if last_at is None and LAST_LINE in out.read_text(errors="replace"):
            last_at = time.monotonic()
        time.sleep(0.05)
    ended_at = time.monotonic()
    if proc.poll() is None:  # hung: kill it, keep what it printed (a Python stack dump after 8 s)
        proc.kill()
    proc.wait()
    return SimpleNamespace(returncode=proc.returncode, stdout=out.read_text(errors="replace"),
                           stderr_tail=err.read_text(errors="replace")[-3000:],
                           seconds_to_exit=None if last_at is None else ended_at - last_at)


def _overdue(start: float, last_at: float | None) -> bool:
    now = time.monotonic()
    return now - start > RUN_LIMIT_S or (last_at is not None and now - last_at > EXIT_LIMIT_S + 5)


def assert_exits_promptly(run: SimpleNamespace) -> None:
    assert run.seconds_to_exit is not None, f"the script never reached its last line:\n{run.stderr_tail}"
    assert run.seconds_to_exit < EXIT_LIMIT_S, \
        f"still running {run.seconds_to_exit:.1f} s after its last line (killed):\n{run.stderr_tail}"


@pytest.fixture(scope="module")
def control(tmp_path_factory) -> SimpleNamespace:
    """bpy alone (export and import a GLB): how this bpy line's module ends a script."""
    run = run_script("control", tmp_path_factory.mktemp("exit"))
    assert_exits_promptly(run)
    if tuple(bpy.app.version[:2]) not in KNOWN_BAD_EXIT:
        assert run.returncode == 0, run.stderr_tail
    return run


def test_a_script_that_ran_the_addon_exits_like_bpy_alone(control, tmp_path):
    """Register, generate, batch-export, extend terrain, and end the script without unregister():
    the add-on's exit hook unregisters it, so bpy 4.5 no longer hangs."""
    run = run_script("addon", tmp_path)
    assert_exits_promptly(run)
    assert run.returncode == control.returncode, run.stderr_tail
    print(f"\n[addon exit] bpy {bpy.app.version_string}: exit status {run.returncode} "
          f"(bpy alone: {control.returncode}), {run.seconds_to_exit:.2f} s after the last line")


def test_unregister_leaves_no_thread_timer_handler_or_child_process(control, tmp_path):
    run = run_script("addon", tmp_path, "--unregister")
    assert_exits_promptly(run)
    assert run.returncode == control.returncode, run.stderr_tail
    (report,) = [json.loads(line) for line in run.stdout.splitlines() if line.startswith('{"leftovers"')]
    assert report["leftovers"] == {"threads": [], "timers": [], "handlers": [], "children": []}
