"""The scene model every generator returns and the converter consumes.

A Scene is sparse voxels (structure: what is solid, of which kind) plus 2D Gaussian splats
(surfels: exact surface position and appearance, finer than the voxels). Coordinates are the
tile-local frame: x east, y north, z up, metres, origin at the tile centre.

File form (``Scene.save`` / ``Scene.load``): one uncompressed ``.npz`` with these arrays

    format                   ()      str     "satforge.scene/1"
    meta                     ()      str     JSON: georeference, scheme, generator, seed, image_gsd, provenance
    voxels.coords            (N, 3)  int32   voxel indices (i east, j north, k up)
    voxels.size              ()      float64 voxel edge length, metres
    voxels.origin            (3,)    float64 position of the min corner of voxel (0, 0, 0)
    voxels.colour            (N, 3)  uint8   sRGB
    voxels.class_id          (N,)    uint8   class id in the scene's scheme
    voxels.kind              (N,)    uint8   SurfaceKind
    voxels.normal            (N, 3)  float32 unit outward normal of the surface through the voxel
    splats.position          (M, 3)  float32 surfel centre
    splats.rotation          (M, 4)  float32 unit quaternion (w, x, y, z); local x, y = tangents, z = normal
    splats.scale             (M, 2)  float32 standard deviation along the two tangents, metres
    splats.opacity           (M,)    float32 in [0, 1]
    splats.colour            (M, 3)  float32 sRGB in [0, 1] (SH degree 0, stored as colour)
    splats.sh1               (M, 3, 3) float32 optional degree-1 SH coefficients (basis, channel)
    splats.class_id          (M,)    uint8
    splats.kind              (M,)    uint8

Voxels are the surface shell of each kind's solid: a voxel is stored when it is occupied by a
kind and at least one of its six neighbours is not occupied by the same kind. So every column of a
kind holds its top and bottom voxel, and the sides show where walls are.

``meta.solid`` says what the shells bound: ``"columns"`` (the default: each kind is one vertical
run per voxel column, as a height field makes it) or ``"volume"`` (arbitrary 3D solids, with
overhangs and cavities, as a density volume makes them); the converter meshes each accordingly.
"""
from __future__ import annotations

import dataclasses
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .georef import Georeference

FORMAT = "satforge.scene/1"


@dataclass
class SparseVoxels:
    coords: np.ndarray   # (N, 3) int32
    size: float
    origin: np.ndarray   # (3,) float64
    colour: np.ndarray   # (N, 3) uint8
    class_id: np.ndarray  # (N,) uint8
    kind: np.ndarray     # (N,) uint8
    normal: np.ndarray   # (N, 3) float32

    def __len__(self) -> int:
        return len(self.coords)

    def centres(self) -> np.ndarray:
        """(N, 3) float64 voxel centres in the tile frame."""
        return self.origin + (self.coords + 0.5) * self.size


@dataclass
class Splats:
    position: np.ndarray  # (M, 3) float32
    rotation: np.ndarray  # (M, 4) float32 (w, x, y, z)
    scale: np.ndarray     # (M, 2) float32
    opacity: np.ndarray   # (M,) float32
    colour: np.ndarray    # (M, 3) float32
    class_id: np.ndarray  # (M,) uint8
    kind: np.ndarray      # (M,) uint8
    sh1: np.ndarray | None = None  # (M, 3, 3) float32

    def __len__(self) -> int:
        return len(self.position)

    def take(self, index) -> Splats:
        """The splats at ``index`` (a slice, mask or indices)."""
        return Splats(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[index]
                         for f in dataclasses.fields(self)})

    @staticmethod
    def concat(parts: list[Splats]) -> Splats:
        names = ["position", "rotation", "scale", "opacity", "colour", "class_id", "kind"]
        return Splats(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})

    def frames(self) -> np.ndarray:
        """(M, 3, 3) float32 rotation matrices; columns are tangent u, tangent v, normal."""
        w, x, y, z = self.rotation.T
        return np.stack([
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)], -1),
            np.stack([2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)], -1),
            np.stack([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)], -1),
        ], -1).astype(np.float32)


def quaternions_from_frames(u: np.ndarray, v: np.ndarray, n: np.ndarray) -> np.ndarray:
    """(M, 4) unit quaternions (w, x, y, z) of the rotations whose columns are u, v, n."""
    (m00, m10, m20), (m01, m11, m21), (m02, m12, m22) = (np.asarray(c, np.float64).T for c in (u, v, n))
    # Shepperd's method: divide by the largest of 4w², 4x², 4y², 4z² (each frame picks its own), for stability.
    cand = np.stack([1 + (m00 + m11 + m22), 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22])
    pick = np.argmax(cand, 0)
    s = np.sqrt(np.maximum(np.take_along_axis(cand, pick[None], 0)[0], 1e-12)) * 2
    quarter, d21, d02, d10 = s / 4, (m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s
    s01, s02, s12 = (m01 + m10) / s, (m02 + m20) / s, (m12 + m21) / s
    q = np.stack([np.choose(pick, choices) for choices in ((quarter, d21, d02, d10), (d21, quarter, s01, s02),
                                                         (d02, s01, quarter, s12), (d10, s02, s12, quarter))], -1)
    q *= np.sign(q[:, :1] + 1e-12)
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


@dataclass
class Scene:
    voxels: SparseVoxels
    splats: Splats
    georef: Georeference
    scheme: str
    generator: str
    seed: int
    image_gsd: float  # spacing of the appearance surfels (orthophoto pixels), metres
    provenance: dict = field(default_factory=dict)  # e.g. {"height": "input", "classes": "heuristic"}
    solid: str = "columns"  # "columns" or "volume": what the voxel shells bound (see the module docstring)

    def save(self, path: str | Path) -> None:
        """Write the documented ``.npz`` form atomically."""
        from .atomic import atomic_path

        meta = {"georef": self.georef.to_dict(), "scheme": self.scheme, "generator": self.generator,
                "seed": self.seed, "image_gsd": self.image_gsd, "provenance": self.provenance}
        if self.solid != "columns":
            meta["solid"] = self.solid  # column scenes keep their old bytes
        arrays = {"format": np.array(FORMAT), "meta": np.array(json.dumps(meta))}
        for name in ("coords", "colour", "class_id", "kind", "normal", "origin"):
            arrays[f"voxels.{name}"] = getattr(self.voxels, name)
        arrays["voxels.size"] = np.float64(self.voxels.size)
        for name in ("position", "rotation", "scale", "opacity", "colour", "class_id", "kind"):
            arrays[f"splats.{name}"] = getattr(self.splats, name)
        if self.splats.sh1 is not None:
            arrays["splats.sh1"] = self.splats.sh1
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Scene:
        from .errors import InputError

        try:
            data = np.load(path, allow_pickle=False)
            if str(data["format"]) != FORMAT:
                raise InputError(path, f"not a {FORMAT} scene file", "write it with Scene.save")
            meta = json.loads(str(data["meta"]))
            vox = SparseVoxels(size=float(data["voxels.size"]), **{
                n: data[f"voxels.{n}"] for n in ("coords", "origin", "colour", "class_id", "kind", "normal")})
            spl = Splats(sh1=data["splats.sh1"] if "splats.sh1" in data.files else None, **{
                n: data[f"splats.{n}"] for n in
                ("position", "rotation", "scale", "opacity", "colour", "class_id", "kind")})
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise InputError(path, f"cannot read scene file ({exc}; truncated or not a scene.npz)",
                             "write it again with satforge generate --save-scene") from None
        return cls(voxels=vox, splats=spl, georef=Georeference.from_dict(meta["georef"]),
                   scheme=meta["scheme"], generator=meta["generator"], seed=int(meta["seed"]),
                   image_gsd=float(meta["image_gsd"]), provenance=meta["provenance"],
                   solid=meta.get("solid", "columns"))
