"""Sat3DGen's density and colour: from an image to feature planes, at arbitrary points, and on grids.

Coordinates. The model's own frame ("model coordinates", what ``query`` takes and upstream's
``density_reg`` takes) is the cube [-1, 1]³ with x along the image's columns (east for a north-up
image), y along its rows (downwards: south), z up; the planes' outer edges are at ±1 (grid_sample with
align_corners=False). The 256 px image the model reads covers [-0.8, 0.8] in x and y (0.8 =
1 / (1 + 2·pad), pad = 0.125), so one model unit is 160 of its pixels, in z as well.

``Volume`` arrays are indexed [x east, y north, z up], index 0 at the west, south and bottom; so a
grid's y index runs opposite to the model's y. Metric positions are relative to the image centre
(x, y) and to the model cube's mid-height (z = 0; the model places the ground wherever it sees it,
above the zeroed bottom slab). With ``metres_per_pixel`` m the size of a pixel of the 256 px model
input (Sat3DGen was trained at 0.28 m), one model unit is 160·m metres, so the model cube spans
±160·m = ±44.8 m and a 320-cell grid has cells of exactly one input pixel (0.28 m).

Grids. ``density_grid`` samples N³ cell centres ("regular": model coordinate -1 + (2i + 1)/N along
each axis) or upstream's own lattice ("upstream", for comparing with ``forward_grid`` value for
value: see ``model_points``), zeroes the borders as upstream does (the cells outside the image's
footprint in x and y, the bottom ones in z: 32 of 320 each), and evaluates only where it matters:
a coarse pass every ``coarse_stride`` cells, then the fine grid in the coarse cells (and their
neighbours) where a coarse sample reaches ``COARSE_LEVEL``. Where evaluated, values equal a dense
evaluation; elsewhere density and colour are 0 (``Volume.evaluated`` says which cells were
evaluated). ``coarse_stride=1`` is the dense evaluation.

Larger images. ``window_volume`` runs upstream's sliding window (``big_image_slice_inference.py``):
256 px windows every 64 px (the last flush with the image's far edge), each window's volume cropped to
its image footprint and above the zeroed bottom slab (256 x 256 x 288 cells of one pixel), 32 px
dropped at window edges that are not image edges, overlapping windows averaged. Differences, all
outside what upstream computes: any rectangle (upstream crops the image to a centred square of at most
1000 px), images under 256 px are mirrored up to 256 px and cropped back, and a cell averages only the
windows that evaluated it (every window, wherever density reaches ``COARSE_LEVEL`` nearby).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from .model import MEAN, STD, Sat3DGenModel

# Upstream's marching-cubes level (``extract_mesh``): occupied where density >= ISO_LEVEL.
ISO_LEVEL = 5.0
# Ground sampling distance Sat3DGen was trained at (VIGOR; upstream's ``--pixel_resolution``).
MODEL_METRES_PER_PIXEL = 0.28
# The coarse pass samples every COARSE_STRIDE cells. A coarse sample at half the iso level marks its
# neighbourhood for the fine pass: the margin catches surfaces that peak between coarse samples.
COARSE_STRIDE = 4
COARSE_LEVEL = ISO_LEVEL / 2
# Points per model call: bounds the transient memory (about 1 KB a point with colour) at ~0.3 GB.
CHUNK = 1 << 18
WINDOW_STRIDE = 64
WINDOW_MARGIN = 32

ProgressFn = Callable[[float, str], None]
Sampling = Literal["regular", "upstream"]


@dataclass(frozen=True)
class Volume:
    """Density and colour on a grid of cubic cells (see the module docstring for the frame).

    ``density`` [nx, ny, nz] float32 and ``colour`` [nx, ny, nz, 3] float32 (RGB in [0, 1]) are
    indexed [x east, y north, z up]; ``evaluated`` [nx, ny, nz] bool marks the cells the model was
    evaluated at (0 density and colour elsewhere). ``origin`` is the metric centre of cell [0, 0, 0]
    (x, y from the image centre, z from the model cube's mid-height); ``voxel_size`` the cell edge in
    metres. Occupied: ``density >= iso``. A grid sampled on upstream's lattice (``sampling="upstream"``)
    has cells 2/(N - 1) model units apart from -1; its small shear (``model_points``) is not described.
    """

    density: np.ndarray
    colour: np.ndarray
    evaluated: np.ndarray
    voxel_size: float
    origin: tuple[float, float, float]
    iso: float = ISO_LEVEL

    def centres(self, axis: int) -> np.ndarray:
        """Metric cell centres along an axis (0 x, 1 y, 2 z)."""
        return self.origin[axis] + self.voxel_size * np.arange(self.density.shape[axis])

    @property
    def bounds(self) -> tuple[tuple[float, float], tuple[float, float], tuple[float, float]]:
        """(min, max) metres of the cells' outer faces along x, y, z."""
        half = self.voxel_size / 2
        return tuple((float(c[0] - half), float(c[-1] + half)) for c in map(self.centres, range(3)))


def model_input(rgb: np.ndarray, size: int) -> Tensor:
    """[H, W, >=3] uint8 or float (0-255 units) -> [1, 3, size, size] as upstream's inference
    prepares it: bicubic resize (PIL's, on the 8-bit image; per float channel for float input),
    then /255 and ImageNet mean/std."""
    rgb = np.ascontiguousarray(rgb[..., :3])
    if rgb.shape[:2] != (size, size):
        bicubic = Image.Resampling.BICUBIC
        if rgb.dtype == np.uint8:
            rgb = np.asarray(Image.fromarray(rgb).resize((size, size), bicubic))
        else:  # PIL's float images ("F") are single-channel
            rgb = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(rgb[..., c], np.float32))
                                       .resize((size, size), bicubic)) for c in range(3)], axis=-1)
    x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float().div(255)
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


@torch.inference_mode()
def planes(model: Sat3DGenModel, rgb: np.ndarray) -> Tensor:
    """Feature planes [1, 2C, P, P] (P = 320) of an RGB image of any size (resampled to the model's
    256 px), on the model's device."""
    return model.planes(model_input(rgb, model.cfg.input_size).to(model.device))


@torch.inference_mode()
def query(model: Sat3DGenModel, planes: Tensor, points: Tensor, chunk: int = CHUNK,
          colour: bool = True) -> tuple[Tensor, Tensor | None]:
    """Density [N] and RGB [N, 3] (None unless ``colour``) at points [N, 3] in model coordinates,
    evaluated ``chunk`` points at a time on the planes' device; results on the points' device."""
    plane, line = model.split(planes)
    densities, colours = [], []
    for part in points.split(chunk):
        density, rgb = model.density_colour(plane, line, part.to(planes.device, torch.float32), colour)
        densities.append(density.to(points.device))
        if colour:
            colours.append(rgb.to(points.device))
    empty = points.new_zeros((0,))
    density = torch.cat(densities) if densities else empty
    if not colour:
        return density, None
    return density, torch.cat(colours) if colours else points.new_zeros((0, 3))


def model_points(i: Tensor, j: Tensor, k: Tensor, n: int, sampling: Sampling = "regular") -> Tensor:
    """Model coordinates [M, 3] of grid indices (i along x, j along the model's y, k along z; long
    tensors of one shape M).

    "regular": cell centres -1 + (2·index + 1) / n. "upstream": what upstream's ``create_voxel``
    computes, in its float32 arithmetic, for the flat index (i·n + j)·n + k: a lattice from -1 to 1
    in steps of 2 / (n - 1), except that its float division shears it, putting sample (i, j, k) at
    y index j + k / n and x index i + j / n + k / n², so its column at (i, j) leans by up to one
    cell towards +y from bottom to top.
    """
    if sampling == "regular":
        centres = (2 * torch.arange(n) + 1).float() / n - 1
        return torch.stack((centres[i], centres[j], centres[k]), dim=-1)
    flat = (i * n + j) * n + k
    f = flat.float()
    indices = (f / n / n % n, f / n % n, (flat % n).float())
    return torch.stack([t * (2.0 / (n - 1)) + (-1.0) for t in indices], dim=-1)


def border_cells(model: Sat3DGenModel, n: int) -> int:
    """Cells upstream zeroes on each x/y side and at the bottom: those outside the image footprint,
    round((1 - 1/(1 + 2 pad)) · n / 2) (32 of 320)."""
    return round((1 - model.cfg.image_half_extent) * n / 2)


def density_grid(model: Sat3DGenModel, planes: Tensor, grid: int = 320, progress: ProgressFn | None = None, *,
                 metres_per_pixel: float = MODEL_METRES_PER_PIXEL, coarse_stride: int = COARSE_STRIDE,
                 sampling: Sampling = "regular", chunk: int = CHUNK) -> Volume:
    """The model's density and colour on a ``grid``³ volume over its whole cube (see the module
    docstring: coarse to fine, borders zeroed, [x east, y north, z up])."""
    n = grid
    border = border_cells(model, n)
    lo, hi = border, n - border                       # the x/y cells inside the image footprint
    if hi - lo < 2 or n - border < 2:
        raise ValueError(f"a {n}-cell grid leaves fewer than 2 cells inside the image")
    selected = _near_surface(model, planes, n, lo, hi, coarse_stride, sampling, chunk)   # [hi-lo, hi-lo, n-lo]
    density = np.zeros((n, n, n), np.float32)
    colour = np.zeros((n, n, n, 3), np.float32)
    evaluated = np.zeros((n, n, n), bool)
    slab = max(1, chunk // (selected.shape[1] * selected.shape[2]))
    for start in range(0, selected.shape[0], slab):
        cells = selected[start:start + slab].nonzero()                  # [M, 3] offsets from (lo, lo, lo)
        if len(cells):
            i, j, k = cells[:, 0] + lo + start, cells[:, 1] + lo, cells[:, 2] + lo
            d, c = query(model, planes, model_points(i, j, k, n, sampling), chunk)
            # Volume index: y runs north, opposite to the model's j.
            index = (i.numpy(), (n - 1 - j).numpy(), k.numpy())
            density[index], colour[index], evaluated[index] = d.numpy(), c.numpy(), True
        if progress:
            progress(min(1.0, (start + slab) / selected.shape[0]), "density grid")
    unit = _model_unit_metres(model, metres_per_pixel)
    if sampling == "regular":
        step, first = 2 / n, -1 + 1 / n
    else:
        step, first = 2 / (n - 1), -1.0
    return Volume(density, colour, evaluated, step * unit, (first * unit,) * 3)


def _near_surface(model: Sat3DGenModel, planes: Tensor, n: int, lo: int, hi: int, stride: int,
                  sampling: Sampling, chunk: int) -> Tensor:
    """Which cells of the box [lo, hi)² x [lo, n) the fine pass evaluates, bool [hi-lo, hi-lo, n-lo]:
    those in a coarse cell, or next to one, with a corner sample >= COARSE_LEVEL. The coarse nodes are
    every ``stride``-th cell from ``lo`` plus the box's last cell; ``stride`` 1 selects every cell."""
    if stride <= 1:
        return torch.ones((hi - lo, hi - lo, n - lo), dtype=torch.bool)
    xy_nodes, z_nodes = (torch.tensor(sorted({*range(lo, end, stride), end - 1})) for end in (hi, n))
    i, j, k = torch.meshgrid(xy_nodes, xy_nodes, z_nodes, indexing="ij")
    density, _ = query(model, planes, model_points(i.flatten(), j.flatten(), k.flatten(), n, sampling), chunk,
                       colour=False)
    marked = (density.cpu() >= COARSE_LEVEL).float().view(1, 1, *i.shape)
    cells = F.max_pool3d(marked, kernel_size=2, stride=1)                      # any corner of each coarse cell
    cells = F.max_pool3d(cells, kernel_size=3, stride=1, padding=1)[0, 0] > 0  # and its neighbours
    cx, cz = (torch.clamp(torch.searchsorted(nodes, torch.arange(lo, end), right=True) - 1, max=len(nodes) - 2)
              for nodes, end in ((xy_nodes, hi), (z_nodes, n)))
    return cells[cx][:, cx][:, :, cz]


def _model_unit_metres(model: Sat3DGenModel, metres_per_pixel: float) -> float:
    """Metres per model unit: the input's half side in pixels over its half extent in units (160 px)."""
    return metres_per_pixel * model.cfg.input_size / 2 / model.cfg.image_half_extent


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """First pixel of each window along an axis: every ``stride`` px, the last flush with the far edge
    (upstream's ``iter_tiles``); one window when ``size <= window``."""
    last = max(0, size - window)
    starts = list(range(0, last + 1, stride))
    return starts if starts[-1] == last else [*starts, last]


def window_volume(model: Sat3DGenModel, rgb: np.ndarray, progress: ProgressFn | None = None, *,
                  metres_per_pixel: float = MODEL_METRES_PER_PIXEL, stride: int = WINDOW_STRIDE,
                  coarse_stride: int = COARSE_STRIDE, chunk: int = CHUNK) -> Volume:
    """One volume over a whole image [H, W, >=3] (uint8 or float 0-255) whose pixels are already
    ``metres_per_pixel`` m: cells of one pixel, [W, H, 288] for the published model, from upstream's
    sliding window (see the module docstring). z: the cells above each window's zeroed bottom slab."""
    height, width = rgb.shape[:2]
    window = model.cfg.input_size
    n = round(window / model.cfg.image_half_extent)           # the grid whose cells are the window's pixels
    border = (n - window) // 2
    padded = np.pad(rgb[..., :3], ((0, max(0, window - height)), (0, max(0, window - width)), (0, 0)),
                    mode="symmetric")
    rows, cols = padded.shape[:2]
    depth = n - border
    total = np.zeros((cols, rows, depth), np.float32)
    colour = np.zeros((cols, rows, depth, 3), np.float32)
    count = np.zeros((cols, rows, depth), np.uint8)
    row_starts, col_starts = window_starts(rows, window, stride), window_starts(cols, window, stride)
    tiles = [(r, c) for r in row_starts for c in col_starts]
    for done, (r0, c0) in enumerate(tiles):
        tile = density_grid(model, planes(model, padded[r0:r0 + window, c0:c0 + window]), n,
                            metres_per_pixel=metres_per_pixel, coarse_stride=coarse_stride, chunk=chunk)
        # Keep the window's pixels [r0 + top, r0 + window - bottom) x [c0 + left, c0 + window - right).
        left, right = _margins(c0, window, cols)
        top, bottom = _margins(r0, window, rows)
        # Tile and output are both north-up: image row r is output y index rows - 1 - r, and the window's
        # pixel p is tile cell border + p in x, n - 1 - border - p in y.
        src = (slice(border + left, border + window - right), slice(border + bottom, border + window - top),
               slice(border, n))
        dst = (slice(c0 + left, c0 + window - right), slice(rows - r0 - window + bottom, rows - r0 - top))
        seen = tile.evaluated[src]
        total[dst] += np.where(seen, tile.density[src], 0)
        colour[dst] += np.where(seen[..., None], tile.colour[src], 0)
        count[dst] += seen
        if progress:
            progress((done + 1) / len(tiles), f"window {done + 1}/{len(tiles)}")
    keep = (slice(0, width), slice(rows - height, rows))           # drop the mirrored padding
    total, colour, count = total[keep], colour[keep], count[keep]
    hits = np.maximum(count, 1)
    density = total / hits
    colour /= hits[..., None]
    z0 = (border + 0.5 - n / 2) * metres_per_pixel                 # centre of the first kept z cell
    origin = ((0.5 - width / 2) * metres_per_pixel, (0.5 - height / 2) * metres_per_pixel, z0)
    return Volume(density, colour, count > 0, metres_per_pixel, origin)


def _margins(start: int, window: int, size: int) -> tuple[int, int]:
    """Pixels dropped at a window's near and far edges: WINDOW_MARGIN unless that edge is the image's."""
    return (0 if start == 0 else WINDOW_MARGIN), (0 if start + window == size else WINDOW_MARGIN)
