"""Column layers -> the scene's sparse shell voxels (see core/scene.py for the definition)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...arrays import ramps
from ...scene import SparseVoxels
from .layers import SIDES, ColumnLayer


def voxel_grid_origin(shape: tuple[int, int], size: float, base: float) -> np.ndarray:
    """Tile-frame position of voxel (0, 0, 0)'s min corner: the tile's south-west corner at ``base``."""
    h, w = shape
    return np.array([-w * size / 2, -h * size / 2, base], np.float64)


def shell_voxels(layers: list[ColumnLayer], size: float, colour: np.ndarray,
                 side_colour: np.ndarray, top_normal: np.ndarray,
                 progress: Callable[[float], None] = lambda fraction: None) -> SparseVoxels:
    """Shell voxels of every layer.

    colour (H, W, 3) uint8: column colour seen from above; side_colour (H, W, 3) uint8: colour of
    the column's sides (facades for buildings); top_normal (H, W, 3) float32: surface normal on top.
    ``progress`` hears the fraction of layers done.
    """
    shape = layers[0].mask.shape
    base = min(float(layer.bottom[layer.mask].min()) for layer in layers)
    base = np.floor(base / size) * size
    origin = voxel_grid_origin(shape, size, base)
    parts = []
    for done, layer in enumerate(layers, 1):
        parts.append(_layer_shell(layer, size, base, colour, side_colour, top_normal))
        progress(done / len(layers))
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return SparseVoxels(coords=cat["coords"], size=size, origin=origin, colour=cat["colour"],
                        class_id=cat["class_id"], kind=cat["kind"], normal=cat["normal"])


def _k_range(layer: ColumnLayer, size: float, base: float) -> tuple[np.ndarray, np.ndarray]:
    kb = np.floor((layer.bottom - base) / size).astype(np.int32)
    kt = np.maximum(kb, np.ceil((layer.top - base) / size).astype(np.int32) - 1)
    return np.where(layer.mask, kb, 0), np.where(layer.mask, kt, -1)


def _layer_shell(layer, size, base, colour, side_colour, top_normal) -> dict[str, np.ndarray]:
    kb, kt = _k_range(layer, size, base)
    h, w = layer.mask.shape
    rows, cols, ks, normals = [], [], [], []
    r, c = np.nonzero(layer.mask)
    # Tops and bottoms of every column.
    for k, nrm in ((kt[r, c], top_normal[r, c]), (kb[r, c], np.tile([0, 0, -1.0], (len(r), 1)))):
        rows.append(r), cols.append(c), ks.append(k), normals.append(nrm)
    # Sides: the parts of each column not covered by the neighbour column of the same kind.
    pad_b, pad_t = np.pad(kb, 1), np.pad(kt, 1, constant_values=-1)
    for (dr, dc), (nx, ny) in SIDES:
        nb = pad_b[1 + r + dr, 1 + c + dc]
        nt = pad_t[1 + r + dr, 1 + c + dc]
        empty = nt < nb
        for lo, hi in ((kb[r, c], np.where(empty, kt[r, c], np.minimum(kt[r, c], nb - 1))),
                       (np.where(empty, kt[r, c] + 1, np.maximum(kb[r, c], nt + 1)), kt[r, c])):
            n = np.maximum(hi - lo + 1, 0)
            rows.append(np.repeat(r, n)), cols.append(np.repeat(c, n))
            ks.append(np.repeat(lo, n) + ramps(n))
            normals.append(np.tile([nx, ny, 0.0], (int(n.sum()), 1)))
    rr, cc, kk = np.concatenate(rows), np.concatenate(cols), np.concatenate(ks)
    nn = np.concatenate(normals)
    # A voxel exposed on several sides appears once; its normal is the sum of its sides.
    key = (rr.astype(np.int64) * w + cc) * (1 << 20) + kk
    uniq, inv = np.unique(key, return_inverse=True)
    normal = np.stack([np.bincount(inv, nn[:, axis], minlength=len(uniq)) for axis in range(3)], -1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    first = np.zeros(len(uniq), np.int64)
    first[inv[::-1]] = np.arange(len(inv))[::-1]
    r1, c1, k1 = rr[first], cc[first], kk[first]
    is_top = k1 == kt[r1, c1]
    return {"coords": np.stack([c1, h - 1 - r1, k1], -1).astype(np.int32),
            "colour": np.where(is_top[:, None], colour[r1, c1], side_colour[r1, c1]).astype(np.uint8),
            "class_id": layer.class_id[r1, c1].astype(np.uint8),
            "kind": np.full(len(uniq), int(layer.kind), np.uint8),
            "normal": normal.astype(np.float32)}
