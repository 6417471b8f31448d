"""Progress reporting: a bar on a terminal, one JSON object per line for programs, or nothing.

Between ``begin`` and ``end`` of a stage a heartbeat thread repeats the last update whenever the
stage has said nothing for HEARTBEAT_S, so a program hears the run is alive through long native
calls (a packer, an image encoder) and through steps that report nothing of their own.
"""
from __future__ import annotations

import json
import resource
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

# Share of the whole run each stage takes (roughly, measured on a 256² tile); drives the overall %.
STAGE_WEIGHTS = {"read": 0.10, "generate": 0.30, "mesh": 0.15, "unwrap": 0.05, "bake": 0.25, "export": 0.15,
                 "world": 1.0,     # `satforge world`: its chunks and upper tiles
                 "estimate": 0.9,  # `satforge estimate`: read, then this
                 "fetch": 1.0}     # `satforge weights fetch`
HEARTBEAT_S = 1.0  # a stage quiet for this long repeats its last update


class Progress:
    def __init__(self, mode: str = "none", stream: TextIO | None = None):
        self.mode = mode
        self.stream = stream or (sys.stdout if mode == "json" else sys.stderr)
        self.start = time.perf_counter()
        self._done_weight = 0.0
        self._stage = ""
        self._lock = threading.Lock()   # updates come from the stage and from its heartbeat
        self._last = (0.0, "")          # the stage's last update, and when it was said
        self._said = self.start
        self._quiet: threading.Event | None = None  # set to stop the current stage's heartbeat

    def started(self, command: str) -> None:
        """The first line, printed before the heavy imports: a program sees the run is alive."""
        if self.mode == "json":
            self._emit({"event": "start", "command": command, "elapsed": self.elapsed()})

    def begin(self, stage: str) -> None:
        self._stage = stage
        self.update(0.0, "")
        if self.mode != "none":
            self._quiet = threading.Event()
            threading.Thread(target=self._heartbeat, args=(self._quiet,), daemon=True).start()

    def end(self, stage: str) -> None:
        self._hush()
        self.update(1.0, "done")
        self._done_weight += STAGE_WEIGHTS.get(stage, 0.0)

    def update(self, fraction: float, message: str) -> None:
        """Fraction of the current stage done, and what is happening."""
        with self._lock:
            self._say(fraction, message)

    def _say(self, fraction: float, message: str) -> None:
        self._last, self._said = (fraction, message), time.perf_counter()
        overall = min(1.0, self._done_weight + STAGE_WEIGHTS.get(self._stage, 0.0) * fraction)
        if self.mode == "json":
            self._emit({"event": "progress", "stage": self._stage, "stage_progress": round(fraction, 3),
                        "progress": round(overall, 3), "message": message, "elapsed": self.elapsed()})
        elif self.mode == "bar":
            filled = int(overall * 30)
            self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {overall * 100:5.1f}% "
                              f"{self._stage:<8} {message[:30]:<30}")
            self.stream.flush()

    def _heartbeat(self, quiet: threading.Event) -> None:
        while not quiet.wait(max(0.05, self._said + HEARTBEAT_S - time.perf_counter())):
            with self._lock:
                if not quiet.is_set() and time.perf_counter() - self._said >= HEARTBEAT_S:
                    self._say(*self._last)

    def _hush(self) -> None:
        if self._quiet is not None:
            self._quiet.set()
            self._quiet = None

    def finish(self, event: str, **fields) -> None:
        """The last line: event 'done' (with outputs) or 'error' (with the message)."""
        self._hush()
        if self.mode == "json":
            self._emit({"event": event, "elapsed": self.elapsed(), **fields})
        elif self.mode == "bar":
            self.stream.write("\n")
            self.stream.flush()

    def elapsed(self) -> float:
        return round(time.perf_counter() - self.start, 3)

    def _emit(self, obj: dict) -> None:
        self.stream.write(json.dumps(obj) + "\n")
        self.stream.flush()


def peak_rss_mb(children: bool = False) -> float:
    """High-water mark of this process (and, with ``children``, of its finished workers), in MB.

    This process's own mark comes from /proc/self/status (VmHWM) where there is one: getrusage's
    ru_maxrss survives exec, so a process started by a big parent would report the parent's size.
    ru_maxrss is in KiB on Linux.
    """
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        status = Path("/proc/self/status").read_text()
        own = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        pass
    kib = max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) if children else own
    return round(kib / 1024, 1)
