"""Atomic file output: write to a temporary sibling, then rename over the target.

Temporary names carry the writing run's host and process id, ``.{name}~{host}~{pid}~{token}.part``,
so a run removes only its own temporary files, and a later run removes those of runs that are
dead (same host, process gone) without touching a concurrent run's. Files are created with mode
0666 and directories with 0777, less the umask, like any other program's files: a web server or
another user can read what we write.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .contract import temp_host, temp_name, temp_owner


def _alive(host: str, pid: int) -> bool:
    """Whether the run may still be going: another host's runs always may."""
    if host != temp_host() or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_dead_temps(folder: Path) -> int:
    """Remove the temporary files and folders that dead runs left in ``folder``; returns how many."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for entry in entries:
        owner = temp_owner(entry.name)
        if owner is None or _alive(*owner):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            Path(entry.path).unlink(missing_ok=True)
        removed += 1
    return removed


def _create_temp(path: Path, make: Callable[[Path], None]) -> Path:
    """A new temporary sibling of ``path``, made by ``make`` (which refuses an existing name)."""
    while True:
        tmp = path.with_name(temp_name(path.name))
        try:
            make(tmp)
            return tmp
        except FileExistsError:  # a token collision: draw another
            continue


def create_temp_file(path: Path) -> Path:
    """An empty temporary sibling of ``path`` (mode 0666 less the umask)."""
    return _create_temp(path, lambda tmp: os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)))


def create_temp_dir(path: Path) -> Path:
    """An empty temporary sibling folder of ``path`` (mode 0777 less the umask)."""
    return _create_temp(path, lambda tmp: tmp.mkdir(0o777))


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = create_temp_file(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
