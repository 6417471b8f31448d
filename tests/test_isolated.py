"""core.isolated: a native crash in a forked child costs a retry, not the process."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from satforge.core.isolated import CrashedError, run_isolated, run_isolated_all

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork")


def _crash_once(marker: Path, values: np.ndarray) -> np.ndarray:
    if not marker.exists():
        marker.touch()
        os.kill(os.getpid(), signal.SIGSEGV)
    return values * 2


def _always_crash() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def _refuse(text: str) -> None:
    raise ValueError(text)


def test_a_crash_is_retried_and_the_result_comes_back(tmp_path):
    values = np.arange(10.0)
    np.testing.assert_array_equal(run_isolated(_crash_once, tmp_path / "m", values), values * 2)
    assert (tmp_path / "m").exists(), "the first attempt crashed"


def test_exceptions_come_back_as_raised_and_endless_crashes_stop():
    with pytest.raises(ValueError, match="no charts"):
        run_isolated(_refuse, "no charts")
    with pytest.raises(CrashedError, match="_always_crash crashed 3 times"):
        run_isolated(_always_crash)


def _slow(values: np.ndarray) -> np.ndarray:
    time.sleep(2.6)  # stands for a native call that holds the GIL
    return values + 1


def test_the_caller_hears_a_heartbeat_while_the_child_works():
    beats = []
    np.testing.assert_array_equal(run_isolated(_slow, np.zeros(3), heartbeat=lambda: beats.append(time.time())),
                                  np.ones(3))
    assert len(beats) >= 2 and np.diff(beats).max() < 1.5


def _nap(values: np.ndarray) -> np.ndarray:
    time.sleep(1.0)  # stands for a native call that holds the GIL: threads alone would take turns
    return values * 3


def test_several_calls_run_at_once_each_in_its_child():
    beats = []
    start = time.time()
    results = run_isolated_all(_nap, [(np.full(2, i),) for i in range(4)], workers=4,
                               heartbeat=lambda: beats.append(time.time()))
    assert time.time() - start < 3.0, "four one-second calls at once"
    assert [r.tolist() for r in results] == [[0, 0], [3, 3], [6, 6], [9, 9]], "in the order given"
    assert beats
