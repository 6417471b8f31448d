"""The generator interface: a Tile in, a Scene out."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..scene import Scene
from ..tile import Tile

# progress(fraction in [0, 1], message) — generators report their own sub-steps through it.
ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class ChunkPlace:
    """Where a world chunk's window lies: chunk (x, y) of ``chunk_size`` metres, the window Tile
    reaching ``band`` metres past it on every side. A generator may key content by it (world
    positions, not array positions); a chunk must never depend on which other chunks exist."""

    x: int
    y: int
    chunk_size: float
    band: float


@dataclass(frozen=True)
class GenerateSettings:
    seed: int = 0
    device: str = "auto"          # "auto" (CUDA when present), "cpu" or "cuda"
    chunk: ChunkPlace | None = None  # set when the tile is a world chunk's window
    # Weights sources of learned generators by role ("height", "classes"): local paths or
    # "hf:OWNER/REPO[@REVISION]/FILE"; empty: the generator's registered files.
    weights: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Estimates:
    """Rasters a generator estimated from an orthophoto alone, on the photo's own pixels."""

    height: np.ndarray | None    # (H, W) float32 nDSM, metres above ground
    classes: np.ndarray | None   # (H, W) uint8 OpenEarthMap ids (0 = unknown)
    sources: Mapping[str, str] = field(default_factory=dict)  # "height"/"classes" -> what made it


class Generator(Protocol):
    name: str
    version: str
    # Whether `satforge world` may run it on chunk windows: its scene depends only on the window
    # Tile and the settings (deterministic on CPU), so chunks made in any order agree at borders.
    chunk_safe: bool
    # (dx, dy) of already-made neighbour chunks the generator conditions on (a learned outpainting
    # model would). Empty: chunks are independent. A non-empty value makes a world run chunks in the
    # canonical order its manifest records ("rows south to north, west to east"); only independent
    # generators exist so far, and `satforge world` refuses the others.
    neighbours: tuple[tuple[int, int], ...]
    # Whether it reads a world window's photo beyond ``Tile.image_valid`` (a learned model's context).
    # Otherwise a world samples the photo only where the tile is valid, which saves time.
    photo_context: bool

    def generate(self, tile: Tile, settings: GenerateSettings, progress: ProgressFn) -> Scene:
        """Same tile + same settings -> same scene, on any device."""
        ...


class Estimator(Protocol):
    """A generator that can also estimate heights and land cover from a photo alone (optional):
    ``satforge world`` asks it for each window's photo, so chunks show what the model sees instead
    of the colour heuristic and height priors."""

    def estimate(self, rgb: np.ndarray, need_height: bool, need_classes: bool, settings: GenerateSettings,
                 progress: ProgressFn) -> Estimates:
        """``rgb``: (H, W, 3) float sRGB in [0, 1], NaN where there is no data."""
        ...


def resolve_device(requested: str) -> str:
    """The torch device a generator should run on; CUDA is an optional accelerator."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


@contextmanager
def chunk_threads(settings: GenerateSettings) -> Iterator[None]:
    """torch on one thread while a learned generator runs on a world chunk: on a CPU the order of
    its sums, so its results, depend on the thread count, and a chunk's bytes may not depend on how
    many cores made it (a worker has one, a run of one chunk every core). Elsewhere, every core."""
    if settings.chunk is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
