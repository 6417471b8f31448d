"""Make a range of chunks: skip the finished ones, run the rest (in worker processes, or on a Dask
cluster (dask_run), when asked), write each chunk's files, then commit it in the manifest; build
each upper tile (world.hlod) where the chunks are made as soon as its children are done, so the
tiles fill the cores while the last chunks are made; finally write the tileset.

Only this (parent) process writes: files first (atomically), then the manifest (atomically), so a
kill at any moment leaves every committed chunk intact and at worst uncommitted files that the next
run regenerates byte for byte. At most two tasks per worker are in flight, so memory does not
grow with the world.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..core.atomic import write_bytes_atomic
from ..core.contract import INPUT_ROLES, MANIFEST, MAX_CHUNKS_PER_RUN, TILESET, chunk_committed, chunk_key, tile_path
from ..core.errors import InputError
from ..core.generators import Generator, get_generator
from ..core.inputs import InputFiles
from ..core.isolated import cores
from ..core.presets import Preset, load_preset, preset_values
from ..core.progress import Progress, peak_rss_mb
from . import source
from .chunk import ChunkResult, make_chunk, terrain_step
from .hlod import TileJob, UpperTiles, build_from_glbs
from .inputs import check_unchanged, open_inputs
from .layout import (
    WorldSpec,
    existing_header,
    manifest_bytes,
    read_manifest,
    remove_dead_runs_temps,
    sha256,
    write_if_changed,
)
from .tileset import write_tileset

if TYPE_CHECKING:
    from distributed import Client


def parse_tiles(text: str, max_chunks: int = MAX_CHUNKS_PER_RUN) -> list[tuple[int, int]]:
    """"X0:X1,Y0:Y1" (inclusive, negatives allowed) -> chunks, rows south to north, west to east;
    more than ``max_chunks`` is refused (a typo can otherwise start days of work)."""
    try:
        xs, ys = (tuple(int(v) for v in part.split(":")) for part in text.split(","))
        (x0, x1), (y0, y1) = xs, ys
    except ValueError:
        raise InputError("--tiles", f"cannot read {text!r}", "write X0:X1,Y0:Y1, e.g. -1:2,0:3") from None
    if x1 < x0 or y1 < y0:
        raise InputError("--tiles", f"empty range {text!r}", "the first index of each range is the smaller")
    count = (x1 - x0 + 1) * (y1 - y0 + 1)
    if count > max_chunks:
        raise InputError("--tiles", f"{text} is {count:,} chunks, more than {max_chunks:,} in one run (at about "
                         f"2 s a chunk, {count * 2 / 3600:,.1f} hours)",
                         f"pass --max-chunks {count} to make them all, or a smaller range")
    return [(x, y) for y in range(y0, y1 + 1) for x in range(x0, x1 + 1)]


DEFAULTS = {"gsd": 0.5, "chunk_size": 128.0, "lods": 1, "seed": 0, "preset": "game", "generator": "default",
            "weights": {}}
BAND_M = 32.0  # overlap band around each chunk's window, metres


def world_settings(out: Path, files: InputFiles, options: dict) -> tuple[WorldSpec, Preset]:
    """The world's settings: the options given (None: not given), the rest from ``out``'s manifest
    when it holds a world, else DEFAULTS. Input rasters are checked and their whole-file decisions
    taken here, before anything is written."""
    header = existing_header(out)
    base = WorldSpec.from_header(header) if header else None

    def pick(name: str):
        if options.get(name) is not None:
            return options[name]
        return getattr(base, name) if base else DEFAULTS[name]

    roles = [r for r in INPUT_ROLES if getattr(files, r) is not None]
    if roles:
        inputs, crs, easting, northing, units = open_inputs(files)
    elif base is not None and base.inputs is not None:
        inputs, crs, easting, northing, units = base.inputs, base.crs, base.easting, base.northing, base.crs_units
        check_unchanged(inputs)
    else:
        inputs, crs, easting, northing, units = None, None, 0.0, 0.0, "metre"
    if inputs is None and options.get("palette") is not None:
        raise InputError("--palette", "a procedural world has no semantic map to read",
                         "leave --palette out, or pass the map with --semantic")
    preset, seed = _world_preset(options.get("preset"), base), pick("seed")
    generator = _chunk_generator(options.get("generator") or (base.generator.split("/")[0] if base else
                                                              DEFAULTS["generator"]))
    style = source.Style()
    if base is not None:
        style = base.style  # an existing world keeps the style it was made with
    elif inputs is not None and inputs.land_cover:
        style = source.style_from_shares(seed, *inputs.shares, inputs.building_height, inputs.bounds)
    spec = WorldSpec(chunk_size=float(pick("chunk_size")), gsd=float(pick("gsd")), band=BAND_M, seed=seed,
                     preset=base.preset if base else preset_values(preset), lods=pick("lods"),
                     generator=f"{generator.name}/{generator.version}", weights=pick("weights"),
                     crs=crs, easting=easting,
                     northing=northing, elevation=inputs.datum if inputs else 0.0, crs_units=units,
                     inputs=inputs, style=style)
    return spec, preset


def _world_preset(given: str | None, base: WorldSpec | None) -> Preset:
    """A new world's preset (``given`` or the default); an existing world's stored values. A
    ``given`` preset that disagrees with them is refused: chunks made with other budgets would not
    match the world's."""
    if base is None:
        return load_preset(given or DEFAULTS["preset"])
    stored = base.stored_preset()
    if given is None:
        return stored
    asked = load_preset(given)
    if asked != stored:
        differ = ", ".join(k for k, v in preset_values(asked).items() if preset_values(stored)[k] != v)
        raise InputError("--preset", f"{given!r} differs from the preset values this world was made with "
                         f"({differ})", "leave --preset out to use the world's own values, or use another --out")
    return stored


def _chunk_generator(name: str) -> Generator:
    """The generator of a world's chunks: it must declare itself chunk-safe and independent."""
    generator = get_generator(name)
    if not getattr(generator, "chunk_safe", False) or generator.neighbours:
        raise InputError("--generator", f"{name!r} cannot make world chunks (not chunk-safe)",
                         "use a generator that declares itself chunk-safe, e.g. --generator default")
    return generator


def check_spec(spec: WorldSpec) -> None:
    """User mistakes in the world's settings, before anything is written."""
    if not 0.1 <= spec.gsd <= 5:
        raise InputError("--gsd", f"{spec.gsd} m is not a usable grid", "use 0.1 to 5 metres")
    steps = spec.chunk_size / terrain_step(spec)
    if spec.chunk_size < 16 or steps != int(steps) or spec.chunk_size > 1024:
        raise InputError("--chunk-size", f"{spec.chunk_size} m does not fit the {terrain_step(spec)} m "
                         "terrain grid", "use 16 to 1024 m, a multiple of twice --gsd")
    if not 1 <= spec.lods <= 6:
        raise InputError("--lods", f"{spec.lods} levels", "use 1 to 6")
    if spec.band < source.MAX_OBJECT:
        raise InputError("band", f"{spec.band} m is narrower than the largest object", "widen it")


PR_SET_PDEATHSIG = 1     # Linux prctl: a signal the kernel sends a process when its parent dies
WORKER_MEMORY_GB = 1.5  # a worker's room: a 128 m photo-only chunk peaks near 0.5 GB, larger chunks take more
MEMINFO = Path("/proc/meminfo")  # Linux: the memory free for new work (MemAvailable)


def default_workers() -> int:
    """Every core, as far as the memory free now gives each worker WORKER_MEMORY_GB."""
    memory_gb = _available_memory_gb()
    if memory_gb is None:
        return cores()
    return max(1, min(cores(), int(memory_gb / WORKER_MEMORY_GB)))


def _available_memory_gb() -> float | None:
    """Memory a run can take without swapping: Linux's MemAvailable (Blender or a browser may hold
    much of the machine's), else the physical total; None where neither is known (Windows)."""
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2 ** 20  # kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2 ** 30
    except (AttributeError, ValueError, OSError):
        return None


def single_threaded() -> None:
    """Worker initializer: one thread of maths per worker for the libraries (OpenMP, torch; the
    bake's threads are make_chunk's), so N workers keep N cores busy instead of fighting over them
    (Dask tasks call it too). torch is imported only by the generators that need it: before, its
    thread count comes from the environment."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _worker_start(parent: int) -> None:
    """Local worker initializer: die with the parent, then one thread of maths (``single_threaded``).
    A forked worker holds the parent's world lock (one open file, shared): an orphan, left by a
    kill -9 of the parent, would wait for work forever and keep every later run of the world waiting."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(1)
    single_threaded()


def _worker_context() -> multiprocessing.context.BaseContext:
    """fork on Linux, spawn elsewhere: a forked worker inherits the parent's imports, where a
    spawned one pays seconds of imports (torch's) before its first chunk. Forking after torch is
    imported is safe as torch's DataLoader does it: no CUDA, and one torch thread per worker."""
    return multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")


@contextmanager
def _local_pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """``workers`` worker processes (their libraries single-threaded), or None for one: this
    process does the work."""
    if workers <= 1:
        yield None
        return
    with ProcessPoolExecutor(workers, mp_context=_worker_context(), initializer=_worker_start,
                             initargs=(os.getpid(),)) as pool:
        yield pool


def _deferred(fn: Callable, *args) -> Future:
    """A task for this process, run when waited for (``_LocalRunner.done``): so results are
    committed before the next task starts, as the run goes on one task at a time."""
    future: Future = Future()
    future.task = (fn, args)  # type: ignore[attr-defined]
    return future


@dataclass
class _LocalRunner:
    """Chunks on ``chunk_pool``'s processes (None: in this process, on ``threads`` cores each);
    upper tiles on ``pool``'s (None: in this process); at most two tasks per process in flight,
    so memory does not grow with the world."""
    spec: WorldSpec
    preset: Preset
    pool: ProcessPoolExecutor | None
    chunk_pool: ProcessPoolExecutor | None
    threads: int
    workers: int

    def slots(self) -> int:
        return 2 * self.workers if self.pool is not None else 1

    def chunk(self, x: int, y: int) -> Future:
        submit = self.chunk_pool.submit if self.chunk_pool is not None else _deferred
        return submit(make_chunk, self.spec, self.preset, x, y, self.threads)

    def tile(self, *args) -> Future:
        return (self.pool.submit if self.pool is not None else _deferred)(build_from_glbs, *args)

    def done(self, futures: set[Future]) -> set[Future]:
        """Finished futures: a task of this process run now, else those of the pool that finish first."""
        here = next((f for f in futures if hasattr(f, "task") and not f.done()), None)
        if here is not None:
            fn, args = here.task
            here.set_result(fn(*args))
            return {here}
        return wait(futures, return_when=FIRST_COMPLETED).done

    @staticmethod
    def result(future: Future) -> Any:
        return future.result()


class _Runner(Protocol):
    """Where a run's tasks go (``_LocalRunner``, ``dask_run.DaskRunner``): each submitted task is a
    future; ``done`` waits until some have finished and gives those; ``slots`` is how many to keep
    in flight."""

    def slots(self) -> int: ...
    def chunk(self, x: int, y: int) -> Any: ...
    def tile(self, *args) -> Any: ...
    def done(self, futures: set) -> set: ...
    def result(self, future: Any) -> Any: ...


def _make(out: Path, manifest: dict, todo: list[tuple[int, int]], upper: UpperTiles, ready: list[TileJob],
          runner: _Runner, progress: Progress) -> int:
    """Make the chunks of ``todo`` and the upper tiles as they become ready (``ready``: those ready
    already), both on ``runner``, the tiles first: each chunk committed and each tile written as it
    comes. Returns the chunks' triangles."""
    chunks, tiles = deque(todo), deque(ready)
    pending: dict[Any, TileJob | tuple[int, int]] = {}
    total, triangles = len(todo) + upper.left, 0

    def fill() -> None:
        while len(pending) < runner.slots() and (tiles or chunks):
            if tiles:
                job = tiles.popleft()
                pending[runner.tile(*upper.arguments(job))] = job
            else:
                x, y = chunks.popleft()
                pending[runner.chunk(x, y)] = (x, y)

    fill()
    while pending:
        for future in runner.done(set(pending)):
            task, value = pending.pop(future), runner.result(future)
            fill()  # before writing: the workers never wait on the disk
            if isinstance(task, TileJob):
                tiles.extend(upper.built(task, value))
                message = f"upper tile {task.level}/{task.x},{task.y}"
            else:
                entry = _commit(out, manifest, value)
                triangles += value.triangles
                tiles.extend(upper.settled(0, value.x, value.y, entry["files"][-1]["sha256"]))
                message = f"chunk x{value.x} y{value.y}"
            left = len(chunks) + sum(isinstance(t, tuple) for t in pending) + upper.left
            progress.update(1 - left / total, message)
        fill()
    return triangles


def _commit(out: Path, manifest: dict, result: ChunkResult) -> dict:
    """Write a chunk's files, then commit it in the manifest; its manifest entry."""
    files = []
    for lod, data in enumerate(result.glbs):
        path = tile_path(lod, result.x, result.y)
        write_bytes_atomic(out / path, data)
        files.append({"lod": lod, "path": path, "sha256": sha256(data), "bytes": len(data),
                      "error": result.errors[lod]})
    entry = {"x": result.x, "y": result.y, "bounds": [round(b, 4) for b in result.bounds], "files": files}
    manifest["chunks"][chunk_key(result.x, result.y)] = entry
    write_bytes_atomic(out / MANIFEST, manifest_bytes(manifest))  # the commit point
    return entry


def run_world(out: Path, spec: WorldSpec, preset: Preset, chunks: Iterable[tuple[int, int]],
              workers: int, progress: Progress, client: Client | None = None) -> dict:
    """Make every chunk of ``chunks`` not already in ``out``, on the Dask cluster of ``client``
    when given (``dask_run.connect``), else on ``workers`` cores: as many single-threaded worker
    processes as there are chunks to make, the cores left over as threads of each (one process:
    this one), and the upper tiles in up to ``workers`` processes; returns a report."""
    check_spec(spec)
    start = time.perf_counter()
    manifest = read_manifest(out, spec)
    out.mkdir(parents=True, exist_ok=True)
    remove_dead_runs_temps(out)
    chunks = list(chunks)
    todo = [c for c in chunks if not chunk_committed(out, manifest, *c)]
    # The upper tiles of the world as it will be; those whose children are all there already are
    # settled (kept, or ready to build) now, the others as their chunks are committed.
    upper = UpperTiles(out, spec, {(e["x"], e["y"]) for e in manifest["chunks"].values()} | set(chunks))
    todo, making = upper.order(todo), set(todo)
    ready = [job for e in manifest["chunks"].values() if (e["x"], e["y"]) not in making
             for job in upper.settled(0, e["x"], e["y"], e["files"][-1]["sha256"])]
    # Chunks take as many processes as there are chunks (one: this process), the spare cores as
    # threads; upper tiles take all the pool's (its processes start when first given work).
    processes = max(1, min(workers, len(todo)))
    threads = max(1, workers // processes)
    with _local_pool(1 if client is not None else workers) as pool:
        if client is not None:
            from .dask_run import DaskRunner  # Dask is an optional extra

            runner: _Runner = DaskRunner(client, spec, preset)
        else:
            runner = _LocalRunner(spec, preset, pool, pool if processes > 1 else None, threads, workers)
        progress.begin("world")
        triangles = _make(out, manifest, todo, upper, ready, runner, progress)
        progress.end("world")
    write_if_changed(out / MANIFEST, manifest_bytes(manifest))
    write_tileset(out, spec, manifest, upper.finish())
    seconds = round(time.perf_counter() - start, 3)
    return {"outputs": [MANIFEST, TILESET, "tiles/"], "total_seconds": seconds,
            "triangles": {"total": triangles}, "chunks": {"made": len(todo), "skipped": len(chunks) - len(todo)},
            "seconds_per_chunk": round(seconds / len(todo), 3) if todo else 0.0,
            "peak_rss_mb": peak_rss_mb(children=True)}

