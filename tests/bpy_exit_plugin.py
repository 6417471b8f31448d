"""``pytest -p tests.bpy_exit_plugin``: end the test process right after pytest is done, with its
exit status. .ci/run loads it for the add-on tests under pip bpy 4.2 and 4.5 only.

Those module builds shut Blender down only when Python frees the ``bpy`` module at the very end of
interpreter exit. In a test process that also loads torch (the tests run the CLI in-process), a
fixture defined in a module that imports bpy is enough to keep it alive — even an empty fixture,
without SatForge — and then 4.5 hangs forever in its audio thread and 4.2 crashes. That is the test
process, not the add-on: how a script that used the add-on exits is tested in processes of their
own (test_addon_exit.py), and those must end normally.
"""
from __future__ import annotations

import os
import sys

import pytest

_status = {"exit": 0}


def pytest_sessionfinish(session, exitstatus) -> None:
    _status["exit"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config) -> None:
    """pytest has printed everything (its summary comes at session finish): leave now."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_status["exit"])
