"""Gaussian-splat PLY files with known content: a box building on a ground plane, faces coloured.

The ground is a GROUND x GROUND metre square at z = 0, the box BOX_X x BOX_Y metres and BOX_H tall
at the centre; every surface is covered by splats SPACING metres apart, coloured per face.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from satforge.core.inputs.splat_ply import C0
from satforge.core.scene import quaternions_from_frames

GROUND, BOX_X, BOX_Y, BOX_H, SPACING = 40.0, 12.0, 8.0, 6.0, 0.25
COLOURS = {"ground": (0.45, 0.45, 0.42), "roof": (0.75, 0.15, 0.12), "east": (0.15, 0.25, 0.8),
           "west": (0.85, 0.8, 0.15), "north": (0.2, 0.75, 0.75), "south": (0.8, 0.25, 0.75),
           "deck": (0.5, 0.5, 0.5)}


def _grid(a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    s, t = np.meshgrid(np.arange(SPACING / 2, a, SPACING), np.arange(SPACING / 2, b, SPACING))
    return s.ravel(), t.ravel()


def box_surfaces(bridge: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """face -> (positions (N, 3), tangent u, tangent v, outward normal), z up; with ``bridge``, a
    6 x 6 m deck 5 m above the open ground east of the box (what a column model cannot hold)."""
    hx, hy = BOX_X / 2, BOX_Y / 2
    out = {}
    s, t = _grid(GROUND, GROUND)
    ground = np.stack([s - GROUND / 2, t - GROUND / 2, np.zeros_like(s)], 1)
    ground = ground[~((np.abs(ground[:, 0]) < hx) & (np.abs(ground[:, 1]) < hy))]  # none under the box
    out["ground"] = (ground, (1, 0, 0), (0, 1, 0), (0, 0, 1))
    s, t = _grid(BOX_X, BOX_Y)
    out["roof"] = (np.stack([s - hx, t - hy, np.full_like(s, BOX_H)], 1), (1, 0, 0), (0, 1, 0), (0, 0, 1))
    s, t = _grid(BOX_Y, BOX_H)
    out["east"] = (np.stack([np.full_like(s, hx), s - hy, t], 1), (0, 1, 0), (0, 0, 1), (1, 0, 0))
    out["west"] = (np.stack([np.full_like(s, -hx), s - hy, t], 1), (0, 0, 1), (0, 1, 0), (-1, 0, 0))
    s, t = _grid(BOX_X, BOX_H)
    out["north"] = (np.stack([s - hx, np.full_like(s, hy), t], 1), (0, 0, 1), (1, 0, 0), (0, 1, 0))
    out["south"] = (np.stack([s - hx, np.full_like(s, -hy), t], 1), (1, 0, 0), (0, 0, 1), (0, -1, 0))
    if bridge:
        s, t = _grid(6.0, 6.0)
        out["deck"] = (np.stack([s + 12.0, t - 3.0, np.full_like(s, 5.0)], 1), (1, 0, 0), (0, 1, 0), (0, 0, 1))
    return out


def write_splat_ply(path: Path, layout: str = "3dgs", sh_degree: int = 0, up: str = "+z",
                    units_per_metre: float = 1.0, extra: np.ndarray | None = None, ascii: bool = False,
                    bridge: bool = False) -> Path:
    """The box scene as a PLY in the graphdeco (3dgs) or hbb1 (2dgs) layout; ``up`` "+y" stores it
    y-up ((x, y, z) -> (x, z, -y)); ``extra`` (K, 3) adds lone splats (floaters)."""
    rows = []
    for face, (pos, u, v, n) in box_surfaces(bridge).items():
        m = len(pos)
        u, v, n = (np.broadcast_to(np.asarray(a, np.float64), (m, 3)) for a in (u, v, n))
        colour = np.broadcast_to(COLOURS[face], (m, 3))
        rows.append((pos, u, v, n, colour, np.full(m, 4.0)))
    if extra is not None:
        m = len(extra)
        e = np.broadcast_to(np.eye(3), (m, 3, 3))
        rows.append((extra, e[:, 0], e[:, 1], e[:, 2], np.full((m, 3), 0.9), np.full(m, 2.0)))
    pos, u, v, n, colour, opacity = (np.concatenate(parts) for parts in zip(*rows))
    if up == "+y":
        to_file = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])
        pos, u, v, n = (a @ to_file.T for a in (pos, u, v, n))
    pos = pos * units_per_metre
    big, small = np.log(0.6 * SPACING * units_per_metre), np.log(0.02 * units_per_metre)
    fields = {"x": pos[:, 0], "y": pos[:, 1], "z": pos[:, 2], "nx": 0 * pos[:, 0], "ny": 0 * pos[:, 0],
              "nz": 0 * pos[:, 0]}
    for c in range(3):
        fields[f"f_dc_{c}"] = (colour[:, c] - 0.5) / C0
    per_channel = (sh_degree + 1) ** 2 - 1
    for i in range(3 * per_channel):
        fields[f"f_rest_{i}"] = np.full(len(pos), 0.01 * (i % 3))
    fields["opacity"] = opacity
    if layout == "3dgs":  # the normal is the file's first axis: the reader must sort axes by scale
        q = quaternions_from_frames(n, u, v)
        fields.update(scale_0=np.full(len(pos), small), scale_1=np.full(len(pos), big), scale_2=np.full(len(pos), big))
    else:
        q = quaternions_from_frames(u, v, n)
        fields.update(scale_0=np.full(len(pos), big), scale_1=np.full(len(pos), big))
    for i in range(4):
        fields[f"rot_{i}"] = q[:, i]
    names = list(fields)
    data = np.zeros(len(pos), [(name, "<f4") for name in names])
    for name in names:
        data[name] = fields[name]
    header = "ply\nformat {} 1.0\nelement vertex {}\n{}end_header\n".format(
        "ascii" if ascii else "binary_little_endian", len(pos), "".join(f"property float {n}\n" for n in names))
    path.write_bytes(header.encode() + data.tobytes())
    return path
