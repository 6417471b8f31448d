"""Chunks as tasks on a Dask cluster (``satforge world --scheduler``), for worlds made on many machines.

Workers only compute: each task returns a ``ChunkResult`` (every LOD's GLB bytes) or an upper tile
(``hlod.Built``, made from its children's bytes sent with the task), and this process
(the driver) writes the files and commits the manifest exactly as with local workers. So no shared
filesystem is needed and the manifest stays the one commit point. A task is keyed by chunk and world
and each finished key is committed once; the scheduler reruns the tasks of a lost worker elsewhere
(up to its ``allowed-failures``), and ``RETRIES`` covers transient failures inside a task. Workers
read input rasters themselves, so every worker needs them at the paths the driver was given.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .. import __version__
from ..core.errors import InputError
from ..core.presets import Preset
from .chunk import make_chunk
from .hlod import build_from_glbs
from .layout import WorldSpec
from .run import single_threaded

if TYPE_CHECKING:
    from distributed import Client, Future

ADDRESS_ENV = "DASK_SCHEDULER_ADDRESS"
LOCAL = "local"
CONNECT_TIMEOUT_S = 5    # an unreachable scheduler is reported after this long
IN_FLIGHT_PER_THREAD = 2  # as with local workers: the next task is queued, memory stays bounded
RETRIES = 2              # a task that raised (e.g. a network share hiccup) is run again this often


class WorkerVersionError(Exception):
    """A worker runs another satforge than the driver: its chunks could differ from the world's."""


def scheduler_address(given: str | None) -> str | None:
    """``--scheduler``, else Dask's own DASK_SCHEDULER_ADDRESS; None: local worker processes."""
    return given or os.environ.get(ADDRESS_ENV) or None


@contextmanager
def connect(address: str, workers: int) -> Iterator[Client]:
    """A client of the scheduler at ``address``, or of a new LocalCluster of ``workers`` processes
    (one thread each) for "local"; every worker already there runs this satforge."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("--scheduler", "Dask is not installed",
                         "pip install 'dask[distributed]' (satforge's dask extra)") from None
    if address == LOCAL:
        # The scheduler's HTTP server (dashboard) on a free port: Dask's default, 8787, may be taken.
        with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address="127.0.0.1:0") as cluster, \
                Client(cluster, set_as_default=False) as client:
            yield client
        return
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, ValueError) as err:
        raise InputError("--scheduler", f"no Dask scheduler reachable at {address} ({err})",
                         "start one with 'dask scheduler' and pass its tcp://HOST:8786, "
                         "or use --scheduler local") from None
    with client:
        _check_versions(client)
        yield client


def _version() -> str:
    return __version__


def _check_versions(client: Client) -> None:
    """Refuse a cluster where a worker runs another satforge (or none): checked once here for the
    workers present; a worker joining later is refused by its first task (``_chunk``)."""
    for worker, found in sorted(client.run(_version, on_error="return").items()):
        if isinstance(found, BaseException):
            raise InputError("--scheduler", f"worker {worker} cannot run satforge ({found})",
                             f"install satforge {__version__} with its [dask] extra on every worker")
        if found != __version__:
            raise InputError("--scheduler", f"worker {worker} runs satforge {found}, this process {__version__}",
                             f"install satforge {__version__} on every worker")


def _checked(version: str, fn: Callable, *args):
    """fn(*args) on a worker that runs the driver's satforge, with one torch thread per task as
    local workers have."""
    if version != __version__:
        raise WorkerVersionError(f"a worker runs satforge {__version__}, this process {version}")
    single_threaded()
    return fn(*args)


class DaskRunner:
    """``run``'s runner on the cluster of ``client``: chunks keyed by chunk and world (so each
    finished key is committed once), upper tiles with their children's bytes; two tasks per worker
    thread in flight."""

    def __init__(self, client: Client, spec: WorldSpec, preset: Preset):
        from dask.base import tokenize
        from distributed import as_completed

        self.client, self.spec, self.preset = client, spec, preset
        self.finished = as_completed(loop=client.loop)  # every task submitted, as it finishes
        # The world's token in every key: two worlds on one scheduler never share a task, and a chunk
        # resubmitted by the same world (same bytes) may.
        self.world = tokenize(__version__, spec, preset)

    def slots(self) -> int:
        """Counted again as workers come and go."""
        return IN_FLIGHT_PER_THREAD * max(1, sum(self.client.nthreads().values()))

    def chunk(self, x: int, y: int) -> Future:
        return self._submit(make_chunk, self.spec, self.preset, x, y, 1, key=f"satforge-chunk-x{x}-y{y}-{self.world}")

    def tile(self, *args) -> Future:
        return self._submit(build_from_glbs, *args)

    def _submit(self, fn: Callable, *args, **options) -> Future:
        future = self.client.submit(_checked, __version__, fn, *args, retries=RETRIES, **options)
        self.finished.add(future)
        return future

    def done(self, futures: set[Future]) -> set[Future]:
        """The next finished of ``futures`` (every one submitted and not yet given)."""
        return set(self.finished.next_batch(block=True))

    @staticmethod
    def result(future: Future):
        try:
            return future.result()
        except WorkerVersionError as err:
            raise InputError("--scheduler", str(err), f"install satforge {__version__} on every worker") from None
