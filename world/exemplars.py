"""The continuation's texture, cut from the input photo itself, so the land beyond a tile looks like
the place and not like a palette.

At the start of a world (``choose``), squares of the photo that one land-cover class fills (PURE of
their pixels) become that class's exemplars: up to PER_CLASS of them, spread over the photo. A chunk
reads them once per process (``inputs.read_squares``) and paints any world position of a class with
them by texture bombing: a lattice of half an exemplar's side, each lattice point showing one
exemplar (picked and turned by a hash of the point) over the two cells round it, neighbours blended
with weights that keep the texture's contrast (the exemplars' details, less their own tone, divided
by the root of the summed squared weights). Procedural roofs and crowns take the tone of one of
their class's exemplars each. Open ground of a class the photo shows nowhere (fields where it has
only meadow) is painted as the photo's open ground closest to it in colour; roads, water, crowns and
roofs the photo lacks keep the procedural palette. Every colour is a pure function of (seed,
exemplars, world position): chunks agree at their borders whatever their order.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..core.landcover.noise import hash_uniform, smoothstep
from .source import BARE, BUILDING, COLOURS, DEVELOPED, FIELD, RANGE, ROAD, TREE, WATER

CLASSES = (BARE, RANGE, DEVELOPED, ROAD, TREE, WATER, FIELD, BUILDING)
EXEMPLAR_PX = 16  # an exemplar's side, photo pixels (divides the statistics' patches)
PURE = 0.9        # an exemplar is at least this share of its class ...
PER_CLASS = 8     # ... and a class has at most this many, spread over the photo
SPECK_PX, SPECK = 9, 0.12  # pixels off their SPECK_PX-wide median by more than SPECK (cars, markings) take it
LAND = (BARE, RANGE, DEVELOPED, FIELD)  # open ground: one the photo lacks is painted as its closest
SALT = 900        # hash salts: the lattice points' exemplars (900) and turns (901), objects' tones (902)


@dataclass(frozen=True)
class Exemplars:
    """Where each class's exemplars lie in the photo: north-up pixel (row, col) of squares of
    ``side`` pixels. JSON-able (stored with the world's inputs)."""

    side: int
    squares: tuple[tuple[int, tuple[tuple[int, int], ...]], ...]  # (OpenEarthMap class, origins)

    @classmethod
    def from_dict(cls, data: dict) -> Exemplars:
        return cls(data["side"], tuple((int(c), tuple(tuple(o) for o in origins)) for c, origins in data["squares"]))


def choose(classes: np.ndarray, rgb: np.ndarray, squares: list[tuple[int, int, int, int]],
           side: int) -> Exemplars | None:
    """Exemplars from OpenEarthMap ``classes`` of a sample of the photo, ``rgb`` (rows, cols, 3) its
    colours; ``squares``: (sample row, sample col, photo row, photo col) of the sample's squares of
    ``side`` pixels, on the sample's grid of that side. Of each class's pure squares the calmer
    half (by the spread of their brightness) are candidates: a road's markings or a yard's clutter
    would repeat as scratches. None when no class fills any square."""
    rows, cols = classes.shape[0] // side, classes.shape[1] // side

    def per_square(values: np.ndarray) -> np.ndarray:  # (rows, side, cols, side): one square per (row, col)
        return values[:rows * side, :cols * side].reshape(rows, side, cols, side)

    sample_squares = np.array([(sr // side, sc // side) for sr, sc, _, _ in squares], int).reshape(-1, 2)
    spread = per_square(rgb.mean(-1)).std(axis=(1, 3))[tuple(sample_squares.T)]
    chosen = []
    for cls in CLASSES:
        share = (per_square(classes) == cls).mean(axis=(1, 3))[tuple(sample_squares.T)]
        pure = np.flatnonzero(share >= PURE)
        if not pure.size:
            continue
        calm = pure[spread[pure] <= np.median(spread[pure])]
        picks = np.unique(np.linspace(0, len(calm) - 1, min(PER_CLASS, len(calm))).round().astype(int))
        chosen.append((cls, tuple((squares[i][2], squares[i][3]) for i in calm[picks])))
    return Exemplars(side, tuple(chosen)) if chosen else None


@dataclass(frozen=True, eq=False)  # arrays: compared and hashed as objects
class Texture:
    """Exemplars ready to paint with: ``detail`` (E, S, S, 3) float32 north-up (each square less its
    ``tone``, its mean colour (E, 3)), every class's run of them (``first``, ``count``, by
    OpenEarthMap id, none for a class the photo lacks unless LAND lends it another's) and the
    colour its ground is painted at (``base``: its exemplars' mean); the lattice's ``cell`` in metres."""

    seed: int
    detail: np.ndarray
    tone: np.ndarray
    first: np.ndarray
    count: np.ndarray
    base: np.ndarray
    cell: float

    @classmethod
    def of(cls, seed: int, exemplars: Exemplars, pixels: np.ndarray, pixel_m: float) -> Texture:
        """The texture of ``exemplars`` from their ``pixels`` (E, S, S, 3) (``inputs.read_squares``,
        in the order of ``exemplars.squares``), the photo's pixels ``pixel_m`` metres wide."""
        first, count = np.zeros(256, np.int64), np.zeros(256, np.int64)
        base = np.zeros((256, 3), np.float32)
        median = ndimage.median_filter(pixels, size=(1, SPECK_PX, SPECK_PX, 1), mode="mirror")
        pixels = np.where(np.abs(pixels - median).max(-1, keepdims=True) > SPECK, median, pixels)
        tone = pixels.mean((1, 2))
        at = 0
        for c, run in exemplars.squares:
            first[c], count[c] = at, len(run)
            base[c] = tone[at:at + len(run)].mean(0)
            at += len(run)
        shown = [c for c in LAND if count[c]]
        for c in LAND:
            if shown and not count[c]:  # the photo's open ground whose procedural colour is closest
                donor = min(shown, key=lambda d: np.sum(np.subtract(COLOURS[d], COLOURS[c]) ** 2))
                first[c], count[c], base[c] = first[donor], count[donor], base[donor]
        # The detail alone is tiled: the squares' own tones would show the lattice.
        return cls(seed, pixels - tone[:, None, None], tone, first, count, base, exemplars.side * pixel_m / 2)

    def has(self, class_id: np.ndarray) -> np.ndarray:
        return self.count[class_id] > 0

    def colour(self, class_id: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(..., 3) float32 colour of ground of OpenEarthMap classes (each one ``has``) at world positions."""
        class_id, x, y = np.broadcast_arrays(class_id, x, y)
        return self._painted(self.base[class_id], class_id, x, y)

    def object_colour(self, class_id: np.ndarray, x: np.ndarray, y: np.ndarray, anchor: np.ndarray) -> np.ndarray:
        """(..., 3) float32 colour of objects (roofs, crowns) of classes that ``has``, each in the
        tone of one of its class's exemplars picked by its ``anchor`` (..., 2): roofs and crowns vary
        as the photo's do."""
        class_id, x, y = np.broadcast_arrays(class_id, x, y)
        pick = hash_uniform(self.seed, SALT + 2, np.floor(anchor[..., 0] * 8), np.floor(anchor[..., 1] * 8))
        return self._painted(self.tone[self._exemplar(class_id, pick)], class_id, x, y)

    def _exemplar(self, class_id: np.ndarray, pick: np.ndarray) -> np.ndarray:
        """Index of the exemplar of each class that ``pick`` (0..1) names."""
        count = self.count[class_id]
        return self.first[class_id] + np.minimum((pick * count).astype(np.int64), count - 1)

    def _painted(self, tone: np.ndarray, class_id: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``tone`` plus the class's detail, bombed on the lattice (see the module)."""
        shape, side = np.shape(x), self.detail.shape[1]
        class_id, x, y, tone = class_id.ravel(), x.ravel(), y.ravel(), tone.reshape(-1, 3)
        u, v = x / self.cell - 0.5, y / self.cell - 0.5
        iu, iv = np.floor(u), np.floor(v)
        su, sv = smoothstep(u - iu).astype(np.float32), smoothstep(v - iv).astype(np.float32)
        deviation, weights = np.zeros((len(x), 3), np.float32), np.zeros(len(x), np.float32)
        for a in (0, 1):
            for b in (0, 1):
                pu, pv = iu + a, iv + b  # the lattice point, its exemplar west of it by half a side
                w = (su if a else 1 - su) * (sv if b else 1 - sv)
                e = self._exemplar(class_id, hash_uniform(self.seed, SALT, pu, pv, class_id))
                s = (x / self.cell - (pu - 0.5)) / 2  # 0..1 across the exemplar, east
                t = (pv + 1.5 - y / self.cell) / 2    # 0..1 down the exemplar, south
                row, col = _turned(s, t, hash_uniform(self.seed, SALT + 1, pu, pv) < 0.5, side)
                deviation += w[:, None] * self.detail[e, row, col]
                weights += w * w
        colour = tone + deviation / np.sqrt(weights)[:, None]
        return np.clip(colour, 0, 1).reshape(*shape, 3).astype(np.float32)


def _turned(s: np.ndarray, t: np.ndarray, half_turn: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel (row, col) of exemplar coordinates (s east, t south, 0..1), the square turned by half
    a turn where ``half_turn``: neighbours showing one exemplar then differ, and its streaks (tracks,
    furrows) keep their direction (a quarter turn or a mirror would cross-hatch them)."""
    s, t = np.where(half_turn, 1 - s, s), np.where(half_turn, 1 - t, t)
    return (np.clip((t * side).astype(np.int64), 0, side - 1), np.clip((s * side).astype(np.int64), 0, side - 1))
