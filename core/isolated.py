"""Run a native call that may crash in a forked child, so a crash costs a retry, not the process.

xatlas' packer runs on worker threads that, rarely, crash the whole process with SIGSEGV on
machines with few cores (seen here about once in a few hundred packs on 2 cores; upstream reports
the same, jpcy/xatlas pull request 118). Its results are deterministic, so running it again gives
the same bytes. ``run_isolated(fn, *args)`` runs ``fn`` in a child made by fork (copy-on-write:
the arguments are not copied or pickled, only the result comes back through a pipe) and runs it
again when the child dies of a signal. Where fork does not exist (Windows) it runs in-process.
The simplifier's long passes run the same way, for the heartbeat (progress while the GIL is held),
and ``run_isolated_all`` runs several such calls at once, one child per core: a native call that
holds the GIL cannot share a process with another.
"""
from __future__ import annotations

import faulthandler
import os
import pickle
import select
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
ATTEMPTS = 3
HEARTBEAT_S = 1.0


class CrashedError(RuntimeError):
    """Every attempt died of a signal."""


def run_isolated(fn: Callable[..., T], *args, heartbeat: Callable[[], None] | None = None) -> T:
    """``fn(*args)`` computed in a forked child; exceptions come back as they were raised.
    ``heartbeat()`` is called every HEARTBEAT_S seconds while the child works: a native call that
    holds the GIL for long still lets its caller report that it is alive."""
    if not hasattr(os, "fork") or sys.platform == "win32":
        return fn(*args)
    for _ in range(ATTEMPTS):
        status, payload = _attempt(fn, args, heartbeat)
        if status is not None:
            kind, value = pickle.loads(payload)
            if kind == "error":
                raise value
            return value
    raise CrashedError(f"{getattr(fn, '__name__', fn)} crashed {ATTEMPTS} times")


def run_isolated_all(fn: Callable[..., T], calls: Sequence[tuple], workers: int | None = None,
                     heartbeat: Callable[[], None] | None = None) -> list[T]:
    """``[fn(*args) for args in calls]``, each computed in a forked child (``run_isolated``), at
    most ``workers`` (default every core) at once; ``heartbeat()`` every HEARTBEAT_S seconds."""
    with ThreadPoolExecutor(max(1, min(workers or cores(), len(calls)))) as pool:
        futures = [pool.submit(run_isolated, fn, *args) for args in calls]
        while wait(futures, timeout=HEARTBEAT_S).not_done:
            if heartbeat is not None:
                heartbeat()
        return [f.result() for f in futures]


def cores() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _attempt(fn: Callable, args: tuple, heartbeat: Callable[[], None] | None) -> tuple[int | None, bytes]:
    """(exit status, the pickled result); status None when the child died of a signal."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, send, leave without running the parent's exit handlers
        os.close(read_end)
        faulthandler.disable()  # a crash here is retried, not reported
        code = 0
        try:
            try:
                payload = pickle.dumps(("value", fn(*args)), pickle.HIGHEST_PROTOCOL)
            except BaseException as exc:  # sent to the parent, raised there
                payload = pickle.dumps(("error", exc), pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
        except BaseException:  # the parent sees the exit status
            code = 1
        os._exit(code)
    os.close(write_end)
    payload = _read_all(read_end, heartbeat)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig in (signal.SIGINT, signal.SIGTERM):
            raise KeyboardInterrupt  # stopped from outside, not a crash: do not retry
        if sig == signal.SIGKILL:
            raise MemoryError(f"{getattr(fn, '__name__', fn)} was killed (out of memory?)")
        return None, b""
    if os.WEXITSTATUS(status) != 0 or not payload:
        raise RuntimeError(f"the isolated call {getattr(fn, '__name__', fn)} failed to return its result")
    return 0, payload


def _read_all(fd: int, heartbeat: Callable[[], None] | None) -> bytes:
    """Everything written to the pipe ``fd`` until its writer closes it (then ``fd`` is closed),
    with ``heartbeat()`` every HEARTBEAT_S seconds of waiting."""
    chunks = []
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        while True:
            if heartbeat is not None and not select.select([pipe], [], [], HEARTBEAT_S)[0]:
                heartbeat()
                continue
            chunk = pipe.read(1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
