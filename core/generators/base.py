"""The generator interface: a Tile in, a Scene out."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

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

    def generate(self, tile: Tile, settings: GenerateSettings, progress: ProgressFn) -> Scene:
        """Same tile + same settings -> same scene, on any device."""
        ...


def resolve_device(requested: str) -> str:
    """The torch device a generator should run on; CUDA is an optional accelerator."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested
