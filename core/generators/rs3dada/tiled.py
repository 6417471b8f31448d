"""RS3DAda's tiled inference, computing what SynRS3D's ``infer_height.py`` and
``infer_segmentation.py`` compute, on images of any size.

Upstream cuts the image (zero-padded at its right and bottom edges) into patches of ``patch`` px
every ``stride`` px, normalises each with ImageNet's mean/std in 0-255 units, optionally averages
the outputs of four flips, and blends overlapping patches with a separable tent weight; heights are
the weighted mean, classes the argmax of the weighted class scores. Differences, all outside what
upstream can compute: images smaller than a patch are padded to one patch (below patch - stride px
upstream runs no patch at all and returns NaN heights), patches are batched, and the nDSM is
clamped at 0 m.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from ...errors import InputError
from .model import CLASSES_HEAD, HEIGHT_HEAD, RS3DAda, RS3DAdaModels

# Albumentations' Normalize(mean, std, max_pixel_value=1) as upstream configures it: 0-255 RGB.
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)
PATCH = 1022    # upstream default (73 tokens of 14 px)
STRIDE = 511
# Upstream class ids 0..7 are OpenEarthMap's 1..8 (0 = unknown).
CLASS_ID_OFFSET = 1

ProgressFn = Callable[[float, str], None]


def tile_starts(size: int, patch: int, stride: int) -> list[int]:
    """First pixel of each patch along an axis of ``size`` px: upstream's ceil((size - patch) /
    stride) + 1 patches, at least one (upstream gets none below patch - stride px)."""
    count = max(1, math.ceil((size - patch) / stride) + 1)
    return [i * stride for i in range(count)]


def tent_weights(patch: int, stride: int) -> np.ndarray:
    """Upstream's blending weight [patch, patch] (float64): 1 in the middle, falling linearly over
    the last ``patch - stride`` px towards each edge (never reaching 0), the four falls multiplied
    in upstream's order so the values are bit-identical."""
    if patch <= stride:
        return np.ones((patch, patch))
    fall = patch - stride
    edge = np.ones(patch)
    edge[stride:] = -np.arange(1, fall + 1) * (1 / (1 + fall)) + 1
    rise = edge[::-1]
    return edge[None, :] * rise[None, :] * edge[:, None] * rise[:, None]


def estimate(rgb: np.ndarray, models: RS3DAdaModels, patch: int = PATCH, stride: int = STRIDE, tta: bool = False,
             device: str | torch.device = "cpu", batch: int | None = None,
             progress: ProgressFn | None = None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """nDSM and land cover of an image.

    ``rgb`` [H, W, >=3]: uint8, or float already in 0-255 units (upstream reads uint8 GeoTIFFs);
    only the first three bands are used. ``models`` come from ``load_rs3dada`` (and are moved to
    ``device``). ``batch``: patches per forward pass (default 4 on CUDA, 1 on CPU, where batching
    buys no speed but costs memory); with ``tta`` each patch is 4 images.

    Returns (nDSM float32 [H, W] metres >= 0, classes uint8 [H, W] OpenEarthMap ids 1..8); each is
    None when ``models`` has no network for it.
    """
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"rgb must be [H, W, >=3], got shape {rgb.shape}")
    if rgb.dtype != np.uint8 and not np.issubdtype(rgb.dtype, np.floating):
        raise TypeError(f"rgb must be uint8 or float in 0-255 units, got {rgb.dtype}")
    device = torch.device(device)
    passes = _passes(models, device)
    _check_tiling(patch, stride, passes[0][0].cfg.vit.patch_size)
    batch = batch or (4 if device.type == "cuda" else 1)

    height, width = rgb.shape[:2]
    blend = _Blend((height, width), tent_weights(patch, stride), models.height is not None)
    origins = [(r, c) for r in tile_starts(height, patch, stride) for c in tile_starts(width, patch, stride)]
    for done, starts in _batches(origins, batch):
        blend.add(_predict(passes, _normalised_patches(rgb, starts, patch, device), tta), starts)
        if progress:
            progress(done / len(origins), f"patch {done}/{len(origins)}")
    return blend.result()


def _check_tiling(patch: int, stride: int, vit_patch: int) -> None:
    if patch <= 0 or patch % vit_patch:
        raise InputError("--patch", f"{patch} is not a positive multiple of {vit_patch} px (the ViT patch size)",
                         f"use e.g. {PATCH}")
    if not 0 < stride <= patch:
        raise InputError("--stride", f"{stride} is not between 1 and the patch size {patch}", f"use e.g. {patch // 2}")


class _Blend:
    """Tent-weighted sums of patch outputs over the image: heights [H, W] with their weight sum,
    class scores [C, H, W] (allocated on first use, when C is known)."""

    def __init__(self, shape: tuple[int, int], weight: np.ndarray, heights: bool):
        self.shape = shape
        self.weight = weight.astype(np.float32)
        self.height = np.zeros(shape, np.float32) if heights else None
        self.total = np.zeros(shape, np.float32) if heights else None
        self.scores: np.ndarray | None = None

    def add(self, outputs: dict[str, np.ndarray], starts: list[tuple[int, int]]) -> None:
        """``outputs``: head -> [B, C, patch, patch] for the patches starting at ``starts``."""
        for i, (r, c) in enumerate(starts):
            rows, cols = min(self.weight.shape[0], self.shape[0] - r), min(self.weight.shape[1], self.shape[1] - c)
            window = (slice(r, r + rows), slice(c, c + cols))
            w = self.weight[:rows, :cols]
            if HEIGHT_HEAD in outputs:
                self.height[window] += outputs[HEIGHT_HEAD][i, 0, :rows, :cols] * w
                self.total[window] += w
            if CLASSES_HEAD in outputs:
                scores = outputs[CLASSES_HEAD][i, :, :rows, :cols] * w
                if self.scores is None:
                    self.scores = np.zeros((scores.shape[0], *self.shape), np.float32)
                self.scores[(slice(None), *window)] += scores

    def result(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        ndsm = None if self.height is None else np.maximum(self.height / self.total, 0.0).astype(np.float32)
        # Dividing every class score by the same positive weight sum cannot change the argmax: skipped.
        classes = None
        if self.scores is not None:
            classes = (np.argmax(self.scores, axis=0) + CLASS_ID_OFFSET).astype(np.uint8)
        return ndsm, classes


def _passes(models: RS3DAdaModels, device: torch.device) -> list[tuple[RS3DAda, tuple[str, ...]]]:
    """(network, heads to run) per forward pass: one pass when one network serves both rasters."""
    if models.height is None and models.classes is None:
        raise ValueError("models holds no network")
    if models.height is models.classes:
        return [(models.height.to(device), (HEIGHT_HEAD, CLASSES_HEAD))]
    passes = []
    if models.height is not None:
        passes.append((models.height.to(device), (HEIGHT_HEAD,)))
    if models.classes is not None:
        passes.append((models.classes.to(device), (CLASSES_HEAD,)))
    return passes


def _batches(origins: list[tuple[int, int]], size: int) -> Iterator[tuple[int, list[tuple[int, int]]]]:
    for start in range(0, len(origins), size):
        chunk = origins[start:start + size]
        yield start + len(chunk), chunk


def _normalised_patches(rgb: np.ndarray, starts: list[tuple[int, int]], patch: int, device: torch.device) -> Tensor:
    """[B, 3, patch, patch] float32: each patch cut from the zero-padded image, then (x - mean) *
    (1 / std) in float32, as albumentations' Normalize computes it."""
    cut = np.zeros((len(starts), patch, patch, 3), np.float32)
    for i, (r, c) in enumerate(starts):
        piece = rgb[r:r + patch, c:c + patch, :3]
        cut[i, :piece.shape[0], :piece.shape[1]] = piece
    x = torch.from_numpy(cut).to(device).permute(0, 3, 1, 2)
    mean = torch.tensor(MEAN, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    inv_std = torch.reciprocal(torch.tensor(STD, dtype=torch.float32, device=device)).view(1, 3, 1, 1)
    return ((x - mean) * inv_std).contiguous()


@torch.inference_mode()
def _predict(passes: list[tuple[RS3DAda, tuple[str, ...]]], images: Tensor, tta: bool) -> dict[str, np.ndarray]:
    """Head outputs [B, C, patch, patch] as float32 arrays; with ``tta`` the mean of the outputs
    for the image, its left-right flip, its up-down flip and both, each flipped back (in upstream's
    summation order)."""
    if tta:
        images = torch.stack([images, images.flip(-1), images.flip(-2), images.flip(-2, -1)], dim=1).flatten(0, 1)
    out = {}
    for net, heads in passes:
        for name, pred in net(images, heads).items():
            if tta:
                pred = pred.unflatten(0, (-1, 4))
                pred = (pred[:, 0] + pred[:, 1].flip(-1) + pred[:, 2].flip(-2) + pred[:, 3].flip(-2, -1)) / 4
            out[name] = pred.float().cpu().numpy()
    return out
