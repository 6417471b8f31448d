"""One writer per world: ``world.lock`` in the world folder, held by the run that writes.

The lock is an operating-system lock on the file (``flock`` on POSIX, ``msvcrt.locking`` on
Windows), so it is released the moment its holder exits, even by kill -9: a lock file without a
live holder is stale and simply taken over. The file's text names the holder (host, process id,
start time) for the message a second run shows while it waits or when it gives up. A clean exit
removes the file; a run that finds the file replaced under it (removed by the holder that just
left) opens the new one instead, so two runs never hold two different files.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from ..core.contract import WORLD_LOCK
from ..core.errors import InputError
from ..core.output_dir import make_folders, remove_empty

POLL_S = 0.5


@contextmanager
def world_lock(out: Path, wait_s: float | None = None,
               waiting: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold ``out``'s lock for the block (``out`` is made when missing, and removed again when the
    block leaves it empty). Another live run holding it: wait up to ``wait_s`` seconds (None: as
    long as it takes), calling ``waiting(holder)`` once, then refuse."""
    made = make_folders(out)
    try:
        with _locked(Path(out) / WORLD_LOCK, wait_s, waiting):
            yield
    finally:
        remove_empty(made)


@contextmanager
def _locked(path: Path, wait_s: float | None, waiting: Callable[[str], None] | None) -> Iterator[None]:
    out = path.parent
    deadline = None if wait_s is None else time.monotonic() + wait_s
    told = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        if _try_lock(fd):
            if _same_file(fd, path):
                break
            os.close(fd)  # locked a file its holder had just removed: open the current one
            continue
        holder = _holder(fd)
        os.close(fd)
        if deadline is not None and time.monotonic() >= deadline:
            raise InputError("--out", f"{out} is being written by another satforge world run ({holder})",
                             "wait for it to finish, or pass --wait SECONDS to wait for it")
        if waiting is not None and not told:
            waiting(holder)
            told = True
        time.sleep(POLL_S)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                 "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode())
        yield
    finally:
        with suppress(OSError):
            path.unlink()  # before the unlock: a waiter that locks this file finds it gone, retries
        os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file locked through ``fd`` (the holder may have removed it)."""
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096) or b"{}")
        return f"process {info['pid']} on {info['host']} since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a run that is starting"
