"""Gaussian-splat scenes in PLY: the 3DGS (graphdeco-inria) and 2DGS (hbb1) layouts.

Binary little-endian PLY with one ``vertex`` element of float32 properties, in any order:

    x y z  [nx ny nz]  f_dc_0..2  [f_rest_0..K-1]  opacity  scale_0 scale_1 [scale_2]  rot_0..3

``scale_2`` present: 3DGS (ellipsoids), absent: 2DGS (surfels). Stored values are pre-activation:
standard deviation = exp(scale), opacity = sigmoid(opacity), rotation = normalise(rot) with rot_0 = w,
base colour = 0.5 + C0 * f_dc. ``f_rest`` is channel-major (every R coefficient, then G, then B); its
count gives the SH degree (0, 9, 24, 45 -> 0..3); degree 1's three coefficients per channel are kept.
A 3DGS ellipsoid becomes the surfel across its two largest axes, its normal along the smallest.
Anything else (ASCII or big-endian PLY, another element, another property type, a missing property,
a short file, non-finite positions, no splats) is refused with one line.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

C0 = 0.28209479177387814    # the degree-0 SH basis constant
SH_DEGREE = {0: 0, 9: 1, 24: 2, 45: 3}  # f_rest count -> degree
_FIX = "export the splats as binary little-endian PLY (3DGS or 2DGS layout)"
_MAX_HEADER = 1 << 16


@dataclass
class SplatCloud:
    """Activated splats in the file's own frame and units."""

    position: np.ndarray   # (M, 3) float64
    frames: np.ndarray     # (M, 3, 3) float64; columns: tangent u, tangent v, normal
    scale: np.ndarray      # (M, 2) float64 standard deviations along u and v (file units)
    opacity: np.ndarray    # (M,) float32 in [0, 1]
    colour: np.ndarray     # (M, 3) float32 sRGB base colour in [0, 1]
    sh1: np.ndarray | None  # (M, 3, 3) float32 degree-1 coefficients (basis, channel), or None
    layout: str            # "3dgs" or "2dgs"
    sh_degree: int


def read_splat_ply(path: Path) -> SplatCloud:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise InputError(path, f"cannot read the file ({err.strerror})", "check the path") from None
    count, names, body = _header(path, raw)
    dtype = np.dtype([(name, "<f4") for name in names])
    if len(body) < count * dtype.itemsize:
        raise InputError(path, f"the file ends after {len(body) // dtype.itemsize} of {count} splats "
                         "(truncated)", "export or download it again")
    data = np.frombuffer(body, dtype, count)
    return _activate(path, data, names)


def _header(path: Path, raw: bytes) -> tuple[int, list[str], bytes]:
    end = raw.find(b"end_header\n", 0, _MAX_HEADER)
    if not raw.startswith(b"ply\n") or end < 0:
        raise InputError(path, "not a PLY file", _FIX)
    lines = raw[:end].decode("ascii", "replace").splitlines()[1:]
    fmt = next((line.split()[1] for line in lines if line.startswith("format ")), "")
    if fmt != "binary_little_endian":
        raise InputError(path, f"PLY format {fmt or 'missing'} is not supported", _FIX)
    elements = [line.split() for line in lines if line.startswith("element ")]
    if [e[1] for e in elements] != ["vertex"]:
        raise InputError(path, f"elements {', '.join(e[1] for e in elements) or 'none'}; a splat file "
                         "has one vertex element", _FIX)
    names = []
    for line in lines:
        parts = line.split()
        if parts and parts[0] == "property":
            if parts[1] not in ("float", "float32"):
                raise InputError(path, f"property {parts[-1]} is {parts[1]}; splat properties are float32", _FIX)
            names.append(parts[2])
    return int(elements[0][2]), names, raw[end + len(b"end_header\n"):]


def _activate(path: Path, data: np.ndarray, names: list[str]) -> SplatCloud:
    layout = "3dgs" if "scale_2" in names else "2dgs"
    scales = [f"scale_{i}" for i in range(3 if layout == "3dgs" else 2)]
    required = ["x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", *scales, "rot_0", "rot_1", "rot_2", "rot_3"]
    missing = [n for n in required if n not in names]
    if missing:
        raise InputError(path, f"missing propert{'y' if len(missing) == 1 else 'ies'} {', '.join(missing)}", _FIX)
    rest = sorted((n for n in names if n.startswith("f_rest_")), key=lambda n: int(n[7:]))
    if len(rest) not in SH_DEGREE:
        raise InputError(path, f"{len(rest)} f_rest properties (SH degree 0-3 has 0, 9, 24 or 45)", _FIX)
    if not len(data):
        raise InputError(path, "the file holds no splats", "export a scene with splats in it")
    position = np.stack([data["x"], data["y"], data["z"]], 1).astype(np.float64)
    bad = ~np.isfinite(position).all(1)
    if bad.any():
        raise InputError(path, f"{int(bad.sum())} of {len(data)} splats have a non-finite position",
                         "drop them in the tool that made the file")
    rotation = np.stack([data[f"rot_{i}"] for i in range(4)], 1).astype(np.float64)
    rotation /= np.maximum(np.linalg.norm(rotation, axis=1, keepdims=True), 1e-12)
    axes = _matrices(rotation)                                               # columns: local x, y, z
    sigma = np.exp(np.stack([data[n] for n in scales], 1).astype(np.float64))
    frames, scale = _surfels(axes, sigma) if layout == "3dgs" else (axes, sigma)
    dc = np.stack([data[f"f_dc_{c}"] for c in range(3)], 1)
    sh1 = None
    if rest:
        per_channel = len(rest) // 3
        coeffs = np.stack([data[n] for n in rest], 1).reshape(len(data), 3, per_channel)  # channel-major
        sh1 = np.ascontiguousarray(coeffs[:, :, :3].transpose(0, 2, 1)).astype(np.float32)
    return SplatCloud(position=position, frames=frames, scale=scale,
                      opacity=(1 / (1 + np.exp(-data["opacity"].astype(np.float64)))).astype(np.float32),
                      colour=np.clip(0.5 + C0 * dc, 0, 1).astype(np.float32), sh1=sh1, layout=layout,
                      sh_degree=SH_DEGREE[len(rest)])


def _matrices(q: np.ndarray) -> np.ndarray:
    """(M, 3, 3) rotation matrices of unit quaternions (w, x, y, z)."""
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], 1)


def _surfels(axes: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 3DGS ellipsoid's surfel: its two largest axes as tangents, the smallest as the normal."""
    order = np.argsort(-sigma, axis=1)
    rows = np.arange(len(sigma))[:, None]
    picked = np.take_along_axis(axes, order[:, None, :], axis=2)  # columns sorted by sigma, largest first
    u, v = picked[:, :, 0], picked[:, :, 1]
    n = np.cross(u, v)  # right-handed whatever the file's axis order
    return np.stack([u, v, n], -1), sigma[rows, order[:, :2]]
