"""A Tile: every input raster of one place, brought onto one grid and masked."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .georef import Georeference
from .schemes import ClassScheme


@dataclass
class Tile:
    """Co-registered inputs of one tile. Row 0 is north, column 0 is west.

    Two grids cover the same extent (``georef.width_m`` x ``georef.height_m``):
    - the analysis grid (H, W) at ``georef.gsd`` metres: heights, classes, validity;
    - the image grid (Hi, Wi) at ``image_gsd``: the orthophoto at its own resolution (usually finer;
      coarser only when the height or semantic raster is more than twice as fine as the photo).
    """

    name: str
    georef: Georeference
    scheme: ClassScheme
    valid: np.ndarray                    # (H, W) bool: False where every input is no-data
    height: np.ndarray | None = None  # (H, W) float32 nDSM, metres above ground; NaN = no data
    ground: np.ndarray | None = None  # (H, W) float32 terrain (DTM) relative to georef.elevation
    classes: np.ndarray | None = None  # (H, W) uint8 class ids of ``scheme``
    rgb: np.ndarray | None = None     # (Hi, Wi, 3) float32 sRGB in [0, 1]
    nir: np.ndarray | None = None     # (Hi, Wi) float32 near-infrared in [0, 1]
    image_valid: np.ndarray | None = None  # (Hi, Wi) bool
    image_gsd: float = 0.0
    sources: dict[str, str] = field(default_factory=dict)  # role -> file path

    @property
    def shape(self) -> tuple[int, int]:
        return self.valid.shape

    @property
    def gsd(self) -> float:
        return self.georef.gsd
