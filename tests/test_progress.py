"""core.progress: JSON events, and the heartbeat that keeps a quiet stage audible."""
from __future__ import annotations

import io
import itertools
import json
import time

from satforge.core.progress import HEARTBEAT_S, Progress


def _events(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_quiet_stage_repeats_its_last_update_and_stops_when_it_ends():
    stream = io.StringIO()
    progress = Progress("json", stream)
    progress.begin("bake")
    progress.update(0.25, "texel blocks")
    time.sleep(2.6 * HEARTBEAT_S)  # a native call that reports nothing
    progress.end("bake")
    time.sleep(1.5 * HEARTBEAT_S)
    events = _events(stream)
    assert events[-1]["message"] == "done", "nothing after the stage's end"
    repeats = [e for e in events if e["message"] == "texel blocks"]
    assert len(repeats) >= 3 and all(e["stage_progress"] == 0.25 for e in repeats)
    times = [e["elapsed"] for e in events]
    assert max(b - a for a, b in itertools.pairwise(times)) < 1.5 * HEARTBEAT_S


def test_a_failed_run_stops_the_heartbeat_with_its_error_line():
    stream = io.StringIO()
    progress = Progress("json", stream)
    progress.begin("mesh")
    progress.finish("error", message="boom")
    time.sleep(1.5 * HEARTBEAT_S)
    last = _events(stream)[-1]
    assert last == {"event": "error", "elapsed": last["elapsed"], "message": "boom"}
