"""The worker process: ``python -m satforge ... --progress json`` read without ever blocking.

No ``bpy`` here, so it is unit-testable anywhere. Two reader threads only move lines from the
child's pipes into a queue and a ring buffer; Blender's main thread drains them with
:meth:`Worker.events` when its timer fires. The child runs in its own process group, so a cancel
also ends the processes it started (``satforge world --workers N`` uses a process pool).
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import IO

# After the child exits, how long its pipes may stay open (held by a grandchild that outlived it)
# before we stop waiting for their last lines.
_PIPE_GRACE_S = 1.0
# SIGTERM first (lets the OS close files), SIGKILL if the group is still there after this.
_TERM_GRACE_S = 0.5


def parse_line(line: str) -> dict:
    """One stdout line -> an event dict; anything that is not a JSON object becomes a ``log`` event."""
    text = line.strip()
    if text.startswith("{"):
        try:
            event = json.loads(text)
        except ValueError:
            event = None
        if isinstance(event, dict) and isinstance(event.get("event"), str):
            return event
    return {"event": "log", "line": text}


def _pump(stream: IO[str], sink: Callable[[str], None]) -> None:
    """Thread body: forward each line, then close the stream. No bpy, no shared state but ``sink``."""
    try:
        for line in stream:
            sink(line)
    except (OSError, ValueError):  # the pipe was closed under us by cancel()
        pass
    finally:
        try:
            stream.close()
        except OSError:
            pass


class Worker:
    """One child process; poll it with :meth:`events` and :attr:`finished`, end it with :meth:`cancel`."""

    def __init__(self, argv: Sequence[str], env: dict | None = None, cwd: str | None = None):
        self.argv = list(argv)
        self._queue: queue.SimpleQueue[dict] = queue.SimpleQueue()
        self._stderr: deque[str] = deque(maxlen=200)  # the tail is all we ever show
        self._exited_at: float | None = None
        self.cancelled = False
        kwargs = {"start_new_session": True} if os.name == "posix" else {
            "creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=cwd, text=True, encoding="utf-8", errors="replace", bufsize=1, **kwargs)
        self._threads = [
            threading.Thread(target=_pump, args=(self.proc.stdout, lambda s: self._queue.put(parse_line(s))),
                             name="satforge-worker-stdout", daemon=True),
            threading.Thread(target=_pump, args=(self.proc.stderr, lambda s: self._stderr.append(s.rstrip())),
                             name="satforge-worker-stderr", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def events(self) -> list[dict]:
        """Every event that arrived since the last call; never blocks."""
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    @property
    def finished(self) -> bool:
        """The child has exited and its output has been read (or the grace period for that is over)."""
        if self.proc.poll() is None:
            return False
        if self._exited_at is None:
            self._exited_at = time.monotonic()
        readers_done = not any(t.is_alive() for t in self._threads)
        return readers_done or time.monotonic() - self._exited_at > _PIPE_GRACE_S

    def stderr_lines(self) -> list[str]:
        return [line for line in self._stderr if line.strip()]

    def cancel(self) -> None:
        """End the child and everything it started; returns within about a second."""
        self.cancelled = True
        if self.proc.poll() is None:
            self._signal(terminate=True)
            try:
                self.proc.wait(_TERM_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        self.close()

    def close(self) -> None:
        """Leave nothing of this run behind: processes of its group that outlived the child (a
        grandchild still holding the pipes), the reader threads, the pipes."""
        # Kill the group even when the leader is gone: its pool workers may still run.
        self._signal(terminate=False)
        try:
            self.proc.wait(_TERM_GRACE_S)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            pass
        for thread in self._threads:  # the group is dead: its pipes reach EOF at once
            thread.join(0.2)
        for stream in (self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass

    def _signal(self, terminate: bool) -> None:
        if os.name == "posix":
            try:
                os.killpg(self.proc.pid, signal.SIGTERM if terminate else signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        elif self.proc.poll() is None:
            # /T ends the whole tree (the process pool's children too).
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(self.proc.pid)], capture_output=True,
                           check=False)


# Signals of a crash in native code. A run that died of one is worth one more try: generate and
# world runs are all-or-nothing and resumable, so a second run repeats nothing that was kept.
CRASH_SIGNALS = frozenset(int(getattr(signal, name)) for name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGABRT")
                          if hasattr(signal, name))


def crash_signal(worker: Worker) -> str | None:
    """The crash signal's name when the worker died of one (not of our cancel), else None."""
    code = worker.returncode
    if worker.cancelled or code is None or code >= 0 or -code not in CRASH_SIGNALS:
        return None
    return signal.Signals(-code).name


def crash_message(worker: Worker) -> str:
    """The crash, and where it happened: faulthandler (on in the worker's environment) prints the
    stack, innermost frame first."""
    lines = worker.stderr_lines()
    frame = next((line.strip() for line in lines if line.strip().startswith("File ")), "")
    where = f" at {frame}" if frame else ""
    return f"satforge: internal error: the worker crashed ({crash_signal(worker)}){where}"


def failure_message(worker: Worker, error_event: dict | None) -> str:
    """The one line to show for a failed run.

    The CLI prints ``satforge: error: ...`` (user mistake) or ``satforge: internal error: ...`` on
    stderr; that exact line wins. Otherwise the JSON error event, otherwise the last stderr line (an
    interpreter that cannot even import satforge ends in a traceback whose last line says why).
    """
    if crash_signal(worker):
        return crash_message(worker)
    lines = worker.stderr_lines()
    for line in reversed(lines):
        if line.startswith("satforge:"):
            return line.strip()
    if error_event and error_event.get("message"):
        return f"satforge: error: {error_event['message']}"
    missing = _missing_module(lines)
    if missing:
        return (f"satforge: error: {worker.argv[0]} cannot import {missing} (choose a Python that has "
                "satforge's requirements in the SatForge add-on preferences; Check shows what is missing)")
    if lines:
        return f"satforge: error: {lines[-1].strip()}"
    return f"satforge: error: the worker exited with status {worker.returncode}"


def _missing_module(lines: list[str]) -> str | None:
    for line in reversed(lines):
        if "ModuleNotFoundError: No module named" in line:
            return line.rsplit("named", 1)[1].strip().strip("'\"")
    return None
