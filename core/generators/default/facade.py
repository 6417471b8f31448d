"""Synthesized facades: no top-down image sees a wall, so walls get storeys, windows and a ground
floor derived from each building's roof colour and height, instead of smeared roof pixels.

Pattern, in metres along the wall (``along``) and above the building's ground (``up``):
- storeys of 3 m; buildings of 6 m and more get a 3.5 m ground floor with wide shop windows;
- window bays repeat every 2.4..3.6 m (per building), windows fill the middle half of a bay and
  30..80 % of a storey, glass is a dark blue-grey with a per-window brightness;
- a darker plinth (lowest 0.4 m) and cornice (top 0.35 m);
- wall colour: the roof colour mixed 55 % towards warm stone, varied per building.
Elementwise numpy: a few hundred thousand wall points take milliseconds, so it needs no torch.
"""
from __future__ import annotations

import numpy as np

from ...landcover.noise import hash_uniform

STONE = (0.78, 0.74, 0.66)
GLASS = (0.16, 0.19, 0.24)
STOREY, GROUND_FLOOR = 3.0, 3.5


def facade_base(roof_colour: np.ndarray, building_key: np.ndarray, seed: int) -> np.ndarray:
    """(N, 3) float wall colour of each building from its mean roof colour (N, 3) in [0, 1]."""
    vary = 0.9 + 0.2 * hash_uniform(seed, 3, building_key)[:, None]
    return np.clip((0.45 * roof_colour + 0.55 * np.asarray(STONE)) * vary, 0, 1)


def facade_colour(base: np.ndarray, along: np.ndarray, up: np.ndarray, height: np.ndarray,
                  bay: np.ndarray, window_key: np.ndarray) -> np.ndarray:
    """(N, 3) colours of wall points.

    base (N, 3) wall colour; along, up, height (N,) metres; bay (N,) bay width in metres;
    window_key (N,) in [0, 1): per-window brightness variation (hashed by the caller).
    """
    tall = height >= 2 * STOREY
    ground = tall & (up < GROUND_FLOOR)
    level_up = np.where(tall, up - GROUND_FLOOR, up)
    v = np.remainder(level_up, STOREY) / STOREY
    a = np.remainder(along, bay) / bay
    upper_window = (a > 0.25) & (a < 0.75) & (v > 0.3) & (v < 0.8) & (up < height - 0.8) & (level_up >= 0)
    shop_window = ground & (a > 0.1) & (a < 0.9) & (up > 0.5) & (up < GROUND_FLOOR - 0.6)
    window = (upper_window | shop_window) & (up > 0.5)
    glass = np.asarray(GLASS, np.float32) * (0.8 + 0.5 * window_key[:, None])
    colour = np.where(window[:, None], glass, base)
    trim = (up < 0.4) | (up > height - 0.35)
    return np.where(trim[:, None], colour * np.float32(0.72), colour).astype(np.float32)
