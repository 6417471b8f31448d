"""A worker run driven from Blender's main thread, one step at a time.

:meth:`Job.step` never blocks: it drains the worker's queued events, mirrors progress into
``window_manager.satforge_job`` (panel, status bar) and, once the worker is done, imports its
result. A modal operator calls it on timer events; ``--background`` runs call it in a short
polling loop (:func:`run_sync`). Every bpy call happens here, on the main thread; the only thing
another thread may do is :meth:`Job.request_cancel`.
"""

import sys
import threading
import time
from collections.abc import Callable
from typing import Optional

import bpy

from . import datablocks
from .worker import Worker, crash_message, crash_signal, failure_message

RUNNING, FINISHED, FAILED, CANCELLED = "RUNNING", "FINISHED", "FAILED", "CANCELLED"
POLL_S = 0.05  # the synchronous loop's sleep; the modal timer uses its own interval

_active: Optional["Job"] = None


def active() -> Optional["Job"]:
    """The job now running, if any: one at a time, so two workers never race for the CPU."""
    return _active


class Job:
    """One worker run plus what to do with its result.

    ``on_done(context, done_event) -> str`` imports the result and returns the message to report;
    if it raises, every data-block it created is removed. ``cleanup(succeeded)`` deletes temporary
    files whatever happened.
    """

    def __init__(self, title: str, argv: list[str], env: dict, on_done: Callable[[object, dict], str],
                 cleanup: Callable[[bool], None] | None = None):
        self.title, self.argv, self.env = title, argv, env
        self.on_done, self.cleanup = on_done, cleanup
        self.worker: Worker | None = None
        self.state = ""
        self.progress, self.stage, self.status = 0.0, "", ""
        self.message = ""
        self.cursor_progress = False  # wm.progress_begin() called and not yet ended
        self.timer = None  # the modal run's window-manager timer, removed when the run ends
        self._cancel = threading.Event()
        self._done: dict | None = None
        self._error: dict | None = None
        self.crashes: list[str] = []  # what each crashed run said (see _restart_after_crash)

    # --- any thread ---------------------------------------------------------------------------
    def request_cancel(self) -> None:
        self._cancel.set()

    # --- main thread --------------------------------------------------------------------------
    def start(self, context) -> None:
        global _active
        if _active is not None:
            raise RuntimeError(f"a SatForge job is already running ({_active.title})")
        self.state, self.status = RUNNING, "starting the worker"
        try:
            self.worker = Worker(self.argv, self.env)
        except OSError as exc:
            self._end(context, FAILED, f"satforge: error: cannot start {self.argv[0]}: {exc} "
                      "(set the interpreter in the SatForge add-on preferences)")
            return
        _active = self
        _show(context, self)

    def step(self, context) -> str:
        """Advance without blocking; returns the job's state."""
        if self.state != RUNNING:
            return self.state
        if self._cancel.is_set():
            return self._end(context, CANCELLED, f"{self.title}: cancelled", kill=True)
        finished = self.worker.finished  # read first: events queued before exit are drained below
        for event in self.worker.events():
            self._apply(event)
        if not finished:
            _show(context, self)
            return RUNNING
        if self.worker.returncode == 0 and self._done is not None:
            return self._import(context)
        if crash_signal(self.worker) and not self.crashes:
            return self._restart_after_crash(context)
        return self._end(context, FAILED, failure_message(self.worker, self._error))

    def _restart_after_crash(self, context) -> str:
        """Run the same command once more after a crash of native code: rare crashes do not cost
        the user the run, and both commands keep what was done (world chunks) or replace all at
        once (generate). A second crash is reported."""
        self.crashes.append(crash_message(self.worker))
        print(f"{self.crashes[-1]}; running it again", file=sys.stderr)
        self.worker.close()
        self._done = self._error = None
        self.status = f"{self.title}: restarting after a crash"
        try:
            self.worker = Worker(self.argv, self.env)
        except OSError as exc:
            return self._end(context, FAILED, f"satforge: error: cannot start {self.argv[0]}: {exc}")
        _show(context, self)
        return RUNNING

    def cancel(self, context) -> str:
        self.request_cancel()
        return self.step(context)

    def fail(self, context, message: str) -> str:
        return self._end(context, FAILED, message, kill=True)

    def _apply(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "progress":
            self.progress = float(event.get("progress", self.progress))
            self.stage = str(event.get("stage", ""))
            detail = event.get("message") or ""
            self.status = f"{self.title}: {self.stage} {detail}".strip()
        elif kind == "done":
            self._done = event
        elif kind == "error":
            self._error = event

    def _import(self, context) -> str:
        self.status = f"{self.title}: importing"
        _show(context, self)
        before = datablocks.snapshot(context.scene)
        try:
            message = self.on_done(context, self._done)
        except Exception as exc:
            datablocks.remove_new(before)
            return self._end(context, FAILED, f"satforge: error: importing the result failed: {exc}")
        self.progress = 1.0
        if self.crashes:
            message += f" (run twice: {self.crashes[0]})"
        return self._end(context, FINISHED, message)

    def _end(self, context, state: str, message: str, kill: bool = False) -> str:
        global _active
        if self.worker is not None and kill:
            self.worker.cancel()
        elif self.worker is not None:
            self.worker.close()  # a finished run may still have a grandchild holding its pipes
        self.state, self.message = state, message
        if self.cleanup is not None:
            self.cleanup(state == FINISHED)
        if _active is self:
            _active = None
        _show(context, self)
        return state


def run_sync(context, job: Job, timeout: float = 0.0) -> str:
    """Run ``job`` to its end from here (``--background``, scripts): the same worker and steps as the
    modal path, polled every POLL_S. ``timeout`` > 0 bounds the wait; Ctrl+C cancels the worker."""
    job.start(context)
    deadline = time.monotonic() + timeout if timeout > 0 else None
    try:
        while job.step(context) == RUNNING:
            if deadline is not None and time.monotonic() > deadline:
                return job.fail(context, f"satforge: error: {job.title} took over {timeout:g} s: worker stopped")
            time.sleep(POLL_S)
    except BaseException:
        if job.state == RUNNING:
            job.cancel(context)
        raise
    return job.state


def cancel_active() -> None:
    """Kill the running worker and stop its modal timer without touching bpy data (used by
    unregister: the operator's modal handler goes with its class, the timer would not)."""
    global _active
    job, _active = _active, None
    if job is None:
        return
    remove_timer(bpy.context.window_manager, job)
    if job.worker is not None:
        job.worker.cancel()
        job.state = CANCELLED
        if job.cleanup is not None:
            job.cleanup(False)


def remove_timer(wm, job: Job) -> None:
    """Stop the modal run's timer (once: the modal handler and unregister may both get here)."""
    if job.timer is not None:
        wm.event_timer_remove(job.timer)
        job.timer = None


def _show(context, job: Job) -> None:
    """Mirror the job into the window manager's properties, the status bar, and redraw panels."""
    wm = context.window_manager
    state = getattr(wm, "satforge_job", None)
    if state is not None:
        running = job.state == RUNNING
        state.running, state.title = running, job.title
        state.progress, state.stage, state.status = job.progress, job.stage, job.status
        if not running:
            state.last_message, state.last_failed = job.message, job.state in (FAILED, CANCELLED)
    if not bpy.app.background:  # no status bar or cursor in background mode
        _show_in_window(context, wm, job)
    for window in getattr(wm, "windows", ()):
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "PROPERTIES"}:
                area.tag_redraw()


def _show_in_window(context, wm, job: Job) -> None:
    """Status bar text and the window manager's progress (the number on the mouse cursor)."""
    running = job.state == RUNNING
    workspace = getattr(context, "workspace", None)
    if workspace is not None:
        workspace.status_text_set(job.status if running else None)
    if running and not job.cursor_progress:
        wm.progress_begin(0, 100)
        job.cursor_progress = True
    if job.cursor_progress:
        if running:
            wm.progress_update(int(job.progress * 100))
        else:
            wm.progress_end()
            job.cursor_progress = False
