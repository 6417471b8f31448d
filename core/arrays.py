"""Small vectorised array helpers that several stages share."""
from __future__ import annotations

import numpy as np


def ramps(counts: np.ndarray) -> np.ndarray:
    """Concatenated aranges: counts [2, 3] -> [0, 1, 0, 1, 2] (one run per count, no Python loop)."""
    counts = np.asarray(counts)
    return np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)


def to_u8(colour: np.ndarray) -> np.ndarray:
    """Colours in [0, 1] (clipped) -> uint8, rounded to the nearest level."""
    return np.round(np.clip(colour, 0, 1) * 255).astype(np.uint8)
