"""Output folders: checked before any work, and a result committed into one all at once.

``check_out_dir`` runs before the first stage: the folder exists or can be made, is a folder, and
is writable (tried, not guessed from mode bits). ``staged_folder`` yields a private folder to write
a whole result into (scene files, sidecars, report); when the block succeeds the result appears in
the output folder in one step, so a kill at any moment leaves the complete previous result or the
complete new one:

* the output folder is missing or empty: the staged folder is renamed onto it;
* it holds files (a previous result, the user's own files): the staged folder gets hard links to
  the files it does not replace, then the two folders are swapped in one ``renameat2
  (RENAME_EXCHANGE)`` (Linux) and the old one is removed;
* where that cannot be done (no RENAME_EXCHANGE, subfolders in the output folder, a parent we may
  not write, the output folder a mount point) the files are renamed one by one, every file after
  the files it refers to and ``report.json`` last: a kill mid-way can mix old and new files, never
  leave a half-written one.
"""
from __future__ import annotations

import ctypes
import errno
import os
import shutil
import sys
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from .atomic import create_temp_dir, create_temp_file, remove_dead_temps
from .contract import REPORT
from .errors import InputError, os_error


def check_out_dir(path: Path, option: str = "--out") -> None:
    """Refuse an output folder that cannot be used, before any work is done."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(option, f"{path} is a file, not a folder", "pass a folder; it is created if missing")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(option, f"{existing} is a file, so {path} cannot be made inside it",
                         "pass a folder whose parents are folders")
    try:
        create_temp_file(existing / "probe").unlink()
    except OSError as err:
        why = os_error(err)
        raise InputError(option, f"cannot write in {existing}: {why.problem}", why.fix) from None


@contextmanager
def staged_folder(out: Path, replaces: Collection[str] = ()) -> Iterator[Path]:
    """A private folder to write a whole result into; committed onto ``out`` when the block
    succeeds, removed without a trace when it fails. Files of ``out`` named in ``replaces`` (an
    earlier result's) that the new result does not hold are removed with the commit; every other
    file of ``out`` is kept."""
    out = Path(out)
    made = make_folders(out.parent)
    stage = None
    try:
        stage = _make_stage(out, made)
        yield stage
        _commit(stage, out, frozenset(replaces))
    except BaseException:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        remove_empty(made)  # nothing of a failed run stays, not even an empty folder
        raise
    shutil.rmtree(stage, ignore_errors=True)  # after a swap, the previous folder


def make_folders(path: Path) -> list[Path]:
    """Create ``path`` and the missing folders above it; returns those made, outermost first."""
    missing = [p for p in (Path(path), *Path(path).parents) if not p.exists()][::-1]
    for folder in missing:
        folder.mkdir(exist_ok=True)
    return missing


def remove_empty(made: list[Path]) -> None:
    """Remove the folders ``make_folders`` made, innermost first, as far as they hold nothing but
    empty folders (a failed run leaves no folder behind)."""
    if made:
        for root, _, _ in sorted(os.walk(made[-1]), key=lambda walk: -len(walk[0])):
            with suppress(OSError):
                os.rmdir(root)
    for folder in reversed(made):
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            return


def _make_stage(out: Path, made: list[Path]) -> Path:
    """Beside ``out`` where a rename can bring it in place, else inside ``out``."""
    remove_dead_temps(out.parent)
    remove_dead_temps(out)
    if not _is_mount_point(out):
        with suppress(OSError):
            return create_temp_dir(out)
    if not out.exists():
        out.mkdir()
        made.append(out)
    return create_temp_dir(out / "stage")


def _is_mount_point(out: Path) -> bool:
    return out.is_dir() and os.stat(out).st_dev != os.stat(out.parent).st_dev


def _commit(stage: Path, out: Path, replaces: frozenset[str]) -> None:
    if stage.parent != out and (not out.exists() or (_is_empty(out) and sys.platform != "win32")):
        os.replace(stage, out)  # rename(2) replaces an empty folder
    elif stage.parent != out and _link_others(out, stage, replaces) and _exchange(stage, out):
        _restore_newcomers(stage, out, replaces)  # ``stage`` now holds the previous folder
    else:
        new = {e.name for e in os.scandir(stage)}
        _rename_files(stage, out)
        for name in replaces - new:
            (out / name).unlink(missing_ok=True)


def _is_empty(folder: Path) -> bool:
    return next(os.scandir(folder), None) is None


def _link_others(out: Path, stage: Path, replaces: frozenset[str]) -> bool:
    """Hard-link into ``stage`` each file of ``out`` that the result does not replace, so the
    swap keeps them; False when ``out`` holds something that cannot be linked (a subfolder)."""
    mine = {e.name for e in os.scandir(stage)} | replaces
    for entry in os.scandir(out):
        if entry.name in mine:
            continue  # (another live run's temporary files are linked too: the same inode lives on)
        if not entry.is_file(follow_symlinks=False):
            return False
        try:
            os.link(entry.path, stage / entry.name)
        except OSError:
            return False
    os.chmod(stage, os.stat(out).st_mode & 0o7777)
    return True


def _restore_newcomers(old: Path, out: Path, replaces: frozenset[str]) -> None:
    """Files another program put into the output folder while this run staged its result."""
    for entry in os.scandir(old):
        if entry.name not in replaces and not (out / entry.name).exists():
            with suppress(OSError):
                os.rename(entry.path, out / entry.name)


_RENAME_EXCHANGE, _AT_FDCWD = 2, -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one step (Linux renameat2); False where the system cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None) if sys.platform == "linux" else None
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV):  # the file system cannot
        return False
    raise OSError(code, os.strerror(code), str(b))


def _rename_files(stage: Path, out: Path) -> None:
    """One rename per file, in ``commit_rank`` order."""
    for entry in sorted(os.scandir(stage), key=lambda e: commit_rank(e.name)):
        os.replace(entry.path, out / entry.name)


def commit_rank(name: str) -> int:
    """Files that others refer to first (textures, buffers), then what refers to them, the
    sidecars, the report last."""
    for rank, suffixes in enumerate(((".png", ".bin", ".mtl", ".npz", ".tif", ".npy"),
                                     (".glb", ".gltf", ".obj"), (".geo.json",), (REPORT,))):
        if name.endswith(suffixes):
            return rank
    return 1
