"""Errors that reach the user as one line and exit status 2."""
from __future__ import annotations

import errno


class InputError(Exception):
    """A user mistake: a bad file or option. ``str(err)`` is the one line the user sees.

    ``subject`` is the file path or ``--option`` at fault; ``fix`` says what to do about it.
    """

    def __init__(self, subject: str, problem: str, fix: str = ""):
        self.subject = str(subject)
        self.problem = problem
        self.fix = fix
        text = f"{self.subject}: {problem}"
        if fix:
            text += f" ({fix})"
        super().__init__(text)

    def __reduce__(self):
        # Raised in a worker process (--workers, --scheduler), it travels back pickled; the default
        # would call __init__ with the one line alone and fail.
        return type(self), (self.subject, self.problem, self.fix)


# What the operating system says while reading or writing, as the user's problem and its fix.
_OS_PROBLEMS = {
    errno.ENOSPC: ("no space left on the device", "free some space, or write somewhere else"),
    errno.EDQUOT: ("disk quota exceeded", "free some space, or write somewhere else"),
    errno.EROFS: ("read-only file system", "write to a folder on a writable disk"),
    errno.EACCES: ("permission denied", "use a path you may write to, or change its permissions"),
    errno.EPERM: ("operation not permitted", "use a path you may write to, or change its permissions"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "fix the path"),
    errno.EEXIST: ("already exists and is not a folder", "remove it or use another path"),
    errno.EISDIR: ("is a folder, not a file", "fix the path"),
    errno.ENOENT: ("no such file or folder, and it cannot be made here", "use a path on a normal disk"),
    errno.ENAMETOOLONG: ("the name is too long", "use a shorter path"),
}
# While writing, these are the user's to fix; ENOENT there means our own bug, so it is left out.
USER_ERRNOS = frozenset(_OS_PROBLEMS) - {errno.ENOENT}


def os_error(err: OSError, subject: str | None = None) -> InputError:
    """An OSError the user can act on (a full disk, a read-only folder...) as one-line InputError,
    naming the path it happened at (``subject`` when the error has none)."""
    problem, fix = _OS_PROBLEMS.get(err.errno, (err.strerror or str(err), "check the path"))
    where = err.filename or subject or "output"
    if err.filename and subject and str(subject).startswith("--"):
        where = f"{subject}: {err.filename}"
    return InputError(where, problem, fix)
