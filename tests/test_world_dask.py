"""`satforge world --scheduler`: chunks as tasks on a Dask cluster (a scheduler and workers started here
on 127.0.0.1 with the `dask` command line, as the README tells), byte-identical to a local run,
surviving a killed worker, committing each chunk once."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from satforge.cli import main  # noqa: E402
from satforge.world import dask_run, run  # noqa: E402

ARGS = ["--chunk-size", "32", "--lods", "2", "--seed", "19", "--progress", "none"]
TILES, CHUNKS = "0:2,0:1", 6  # more than 4 chunks: upper tiles are built on the cluster too
DASK = str(Path(sys.executable).with_name("dask"))
START_S = 60  # a scheduler or worker not up by then fails the test instead of hanging it


def _files(out: Path) -> dict[str, bytes]:
    """Every file of a world (chunk GLBs, manifest, tileset and whatever else the run writes)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@contextmanager
def _process(args: list[str], log: Path) -> Iterator[subprocess.Popen]:
    """A `dask ...` process, killed and reaped on the way out whatever happens."""
    with log.open("wb") as sink:
        proc = subprocess.Popen([DASK, *args], stdout=sink, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.kill()
            proc.wait(timeout=30)


def _worker(scheduler_file: Path, name: str, logs: Path):
    # No nanny: a killed worker stays dead (a nanny would restart it).
    return _process(["worker", "--scheduler-file", str(scheduler_file), "--name", name, "--nthreads", "1",
                     "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"], logs / f"{name}.log")


def _client(address: str) -> distributed.Client:
    return distributed.Client(address, timeout=START_S, set_as_default=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[tuple[str, Path, Path]]:
    """(scheduler address, scheduler file, log folder) of a scheduler with two workers."""
    logs = tmp_path_factory.mktemp("dask")
    scheduler_file = logs / "scheduler.json"
    # Port 0: a free port, published in the scheduler file; its HTTP server too, not on Dask's 8787.
    with _process(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--dashboard-address",
                   "127.0.0.1:0", "--scheduler-file", str(scheduler_file)], logs / "scheduler.log"):
        deadline = time.time() + START_S
        while not scheduler_file.is_file() and time.time() < deadline:
            time.sleep(0.05)
        address = json.loads(scheduler_file.read_text())["address"]
        with _worker(scheduler_file, "a", logs), _worker(scheduler_file, "b", logs), _client(address) as client:
            client.wait_for_workers(2, timeout=START_S)
            yield address, scheduler_file, logs


@pytest.fixture(scope="module")
def local_world(tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("local") / "w"
    assert main(["world", "--out", str(out), "--tiles", TILES, *ARGS]) == 0
    return _files(out)


@pytest.fixture
def commits(monkeypatch) -> Counter:
    """How often each chunk is committed."""
    counts: Counter = Counter()
    commit = run._commit

    def counted(out, manifest, result):
        counts[result.x, result.y] += 1
        return commit(out, manifest, result)

    monkeypatch.setattr(run, "_commit", counted)
    return counts


def test_scheduler_world_is_byte_identical_to_local(cluster, local_world, tmp_path, commits, monkeypatch):
    out = tmp_path / "w"
    monkeypatch.setattr(run, "_deferred", None)  # nothing, upper tiles included, is made in this process
    assert main(["world", "--out", str(out), "--tiles", TILES, "--scheduler", cluster[0], *ARGS]) == 0
    assert _files(out) == local_world
    assert len([name for name in local_world if name.startswith("tiles/hlod/1/")]) == 2
    assert set(commits.values()) == {1} and len(commits) == CHUNKS


def test_resume_through_the_environment_variable(cluster, local_world, tmp_path, commits, monkeypatch):
    """Half a world made locally, finished on the cluster (DASK_SCHEDULER_ADDRESS): the same bytes,
    and only the missing chunks are made."""
    out = tmp_path / "w"
    assert main(["world", "--out", str(out), "--tiles", "0:1,0:0", *ARGS]) == 0
    monkeypatch.setenv(dask_run.ADDRESS_ENV, cluster[0])
    assert main(["world", "--out", str(out), "--tiles", TILES, *ARGS]) == 0
    assert _files(out) == local_world
    assert commits == Counter({(x, y): 1 for x in range(3) for y in range(2)}), "each chunk made once in all"


def test_killed_worker_is_retried_and_the_world_completes(cluster, local_world, tmp_path, commits):
    address, scheduler_file, logs = cluster
    out, codes = tmp_path / "w", []
    with _worker(scheduler_file, "victim", logs) as victim, _client(address) as client:
        client.wait_for_workers(3, timeout=START_S)
        at = next(a for a, w in client.scheduler_info(n_workers=-1)["workers"].items() if w["name"] == "victim")
        driver = threading.Thread(target=lambda: codes.append(
            main(["world", "--out", str(out), "--tiles", TILES, "--scheduler", address, *ARGS])), daemon=True)
        driver.start()
        deadline = time.time() + START_S
        while not client.processing(workers=[at])[at] and time.time() < deadline:
            time.sleep(0.01)
        assert client.processing(workers=[at])[at], "the victim should have been given a chunk"
        victim.kill()  # while it holds a chunk: the scheduler gives that chunk to another worker
        driver.join(timeout=120)
    assert codes == [0]
    assert _files(out) == local_world
    assert set(commits.values()) == {1} and len(commits) == CHUNKS, "each chunk committed once"


def test_resume_after_the_driver_is_killed(cluster, local_world, tmp_path):
    """The driver killed mid-run, then run again with the same tasks' keys: the same bytes."""
    out = tmp_path / "w"
    cmd = [sys.executable, "-m", "satforge", "world", "--out", str(out), "--tiles", TILES, "--scheduler",
           cluster[0], *ARGS]
    driver = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + START_S
        while not (out / "manifest.json").exists() and time.time() < deadline and driver.poll() is None:
            time.sleep(0.01)
    finally:
        driver.kill()
        driver.wait(timeout=30)
    assert 1 <= len(json.loads((out / "manifest.json").read_text())["chunks"]) < CHUNKS, "the kill should land mid-run"
    assert main(["world", "--out", str(out), "--tiles", TILES, "--scheduler", cluster[0], *ARGS]) == 0
    assert _files(out) == local_world


def test_local_cluster_is_byte_identical(local_world, tmp_path):
    out = tmp_path / "w"
    assert main(["world", "--out", str(out), "--tiles", TILES, "--scheduler", "local", "--workers", "2",
                 *ARGS]) == 0
    assert _files(out) == local_world


@contextmanager
def _free_port() -> Iterator[int]:
    """A port nobody listens on: bound but not listening, so connecting to it is refused."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _one_line_error(capsys, args: list[str], out: Path) -> str:
    assert main(["world", "--out", str(out), "--tiles", TILES, *args, *ARGS]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--scheduler" in lines[0]
    assert not out.exists(), "a user error writes nothing"
    return lines[0]


def test_unreachable_scheduler_is_a_one_line_user_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(dask_run, "CONNECT_TIMEOUT_S", 1)  # the test need not wait the real 5 s
    with _free_port() as port:
        start = time.perf_counter()
        line = _one_line_error(capsys, ["--scheduler", f"tcp://127.0.0.1:{port}"], tmp_path / "w")
    assert time.perf_counter() - start < 10
    assert "no Dask scheduler reachable" in line


def test_worker_with_another_version_is_refused(cluster, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(dask_run, "__version__", "0.0.0-other")
    line = _one_line_error(capsys, ["--scheduler", cluster[0]], tmp_path / "w")
    assert "runs satforge" in line and "0.0.0-other" in line


def test_task_on_a_worker_with_another_version_refuses_to_run():
    with pytest.raises(dask_run.WorkerVersionError):
        dask_run._checked("0.0.0-other", print, "never printed")


def test_without_dask_installed_is_a_one_line_user_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    assert "Dask is not installed" in _one_line_error(capsys, ["--scheduler", "local"], tmp_path / "w")
