"""Wavefront OBJ + MTL writer, by hand, so that objects, materials and number formats are ours.

Same frame as the glTF: +Y up, +X east, -Z north, metres, origin at the tile centre. One ``o``/``g``
block and one material per surface kind, all materials using the one atlas PNG. Every vertex has its
own ``vt`` and ``vn`` line, so faces read ``f i/i/i``. OBJ has no per-vertex attributes: class ids
are not written (the glTF carries them as ``_FEATURE_ID_0``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .. import __version__
from ..core.meshes import TexturedScene
from .frame import clamped_uvs, exported_meshes, unit_normals, y_up

# Rows formatted per call: bounds the temporary byte matrices (~50 MB) for any mesh size.
_CHUNK_ROWS = 200_000
# "0000".."9999" as four ASCII bytes packed in one uint32: one lookup writes four digits.
_DIGITS4 = np.frombuffer("".join(f"{i:04d}" for i in range(10_000)).encode(), np.uint32)
_POWERS = 10 ** np.arange(1, 19, dtype=np.int64)


def number_text(values: np.ndarray, decimals: int) -> np.ndarray:
    """(N,) numbers -> (N, W) uint8 ASCII of ``"%.{decimals}f" % value``, right-aligned, NUL-padded.

    Vectorised: a few numpy passes, about twice as fast as one giant %-format string. Unlike
    printf, a negative value that rounds to zero prints without a sign.
    """
    scaled = np.rint(np.asarray(values, np.float64) * 10.0 ** decimals).astype(np.int64)
    magnitude = np.abs(scaled)
    groups = (max(len(str(int(magnitude.max(initial=0)))), decimals + 1) + 3) // 4
    packed = np.empty((len(scaled), groups), np.uint32)
    rest = magnitude
    for g in range(groups - 1, -1, -1):
        rest, low = np.divmod(rest, 10_000)
        packed[:, g] = _DIGITS4[low]
    digits = packed.view(np.uint8)
    # Blank the leading zeros; the units digit and the decimals always show.
    shown = np.maximum(np.searchsorted(_POWERS, magnitude, side="right") + 1, decimals + 1)
    np.putmask(digits, np.arange(digits.shape[1])[::-1] >= shown[:, None], 0)
    sign = np.where(scaled < 0, ord("-"), 0).astype(np.uint8)[:, None]
    if not decimals:
        return np.concatenate([sign, digits], axis=1)
    point = np.full_like(sign, ord("."))
    return np.concatenate([sign, digits[:, :-decimals], point, digits[:, -decimals:]], axis=1)


def ascii_rows(keyword: str, values: np.ndarray, decimals: int = 0, repeat: int = 1) -> bytes:
    """One line per row: ``keyword`` then each value (written ``repeat`` times joined by "/",
    for faces' ``i/i/i``), space-separated, as ``%.{decimals}f``."""
    rows = len(values)

    def column(char: str) -> np.ndarray:
        return np.full((rows, 1), ord(char), np.uint8)

    parts = [np.broadcast_to(np.frombuffer(keyword.encode(), np.uint8), (rows, len(keyword)))]
    for values_c in np.asarray(values).T:
        text = number_text(values_c, decimals)
        parts += [column(" "), text] + [column("/"), text] * (repeat - 1)
    flat = np.concatenate(parts + [column("\n")], axis=1).ravel()
    return flat[flat != 0].tobytes()


def _write_rows(out: BinaryIO, keyword: str, values: np.ndarray, decimals: int = 0, repeat: int = 1) -> None:
    for start in range(0, len(values), _CHUNK_ROWS):
        out.write(ascii_rows(keyword, values[start:start + _CHUNK_ROWS], decimals, repeat))


def write_mtl(scene: TexturedScene, path: Path, png_name: str) -> None:
    lines = [f"# SatForge {__version__}: one material per surface kind, all on one atlas"]
    for mesh in exported_meshes(scene):
        # Ns 10 is what Blender's importer turns into roughness 0.9, as in the glTF materials.
        lines += ["", f"newmtl {mesh.kind.label}", "Ka 0 0 0", "Kd 1 1 1", "Ks 0 0 0", "Ns 10",
                  "d 1", "illum 1", f"map_Kd {png_name}"]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_obj(scene: TexturedScene, path: Path, mtl_name: str) -> None:
    header = [
        f"# SatForge {__version__}",
        "# Frame: right-handed, +Y up, +X east, -Z north, metres, origin at the tile centre (as the glTF).",
        "# vt: OBJ convention, v = 0 at the bottom of the image. Class ids are not stored (see the glTF).",
        f"# georeference: {json.dumps(scene.georef.to_dict())}",
        f"mtllib {mtl_name}",
    ]
    offset = 1  # OBJ indices are 1-based and global across the file
    with open(path, "wb") as out:
        out.write(("\n".join(header) + "\n").encode("utf-8"))
        for mesh in exported_meshes(scene):
            label = mesh.kind.label
            uvs = clamped_uvs(mesh.uvs)
            uvs[:, 1] = 1.0 - uvs[:, 1]  # TexturedMesh UVs have their origin at the top-left
            out.write(f"o {label}\ng {label}\nusemtl {label}\n".encode())
            _write_rows(out, "v", y_up(mesh.vertices), decimals=4)  # 0.1 mm
            _write_rows(out, "vt", uvs, decimals=6)  # well under a texel of a 16k atlas
            _write_rows(out, "vn", unit_normals(mesh.normals), decimals=4)
            _write_rows(out, "f", mesh.faces.astype(np.int64) + offset, repeat=3)
            offset += len(mesh.vertices)
