"""The generator interface: a Tile in, a Scene out."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from ..scene import Scene
from ..tile import Tile

# progress(fraction in [0, 1], message) — generators report their own sub-steps through it.
ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class GenerateSettings:
    seed: int = 0
    device: str = "auto"          # "auto" (CUDA when present), "cpu" or "cuda"


class Generator(Protocol):
    name: str
    version: str

    def generate(self, tile: Tile, settings: GenerateSettings, progress: ProgressFn) -> Scene:
        """Same tile + same settings -> same scene, on any device."""
        ...


def resolve_device(requested: str) -> str:
    """The torch device a generator should run on; CUDA is an optional accelerator."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested
