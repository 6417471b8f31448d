"""Errors that reach the user as one line and exit status 2."""
from __future__ import annotations


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
