"""Upper tiles: a quadtree of merged, simplified tiles above the chunks (hierarchical LOD), so a
viewer shows a whole world from a few files instead of every chunk.

Level 0 is the chunks. The tile (L, X, Y) of level L >= 1 covers chunks [X·2^L, (X+1)·2^L) ×
[Y·2^L, (Y+1)·2^L) and is made from its (at most 4) children of level L - 1 that exist: the chunks'
coarsest LOD at level 1, upper tiles above. Levels are added until one has at most 4 tiles: those
are the children of the tileset's root. Files: ``tiles/hlod/{L}/tile_x{X}_y{Y}.glb``
(``core.contract.hlod_path``), vertices relative to the tile's centre, the same glTF layout as a
chunk; ``tiles/hlod/index.json`` (``HLOD_INDEX``) records for each what it was made from and what
was measured (content bounds, vertical deviation from its children, texel size).

A tile has the triangle budget of one chunk's finest LOD and half its texture side, so whatever
level a viewer draws, a tile costs at most what a chunk costs:
- terrain: the children's terrain sampled on a regular grid over the tile's square, simplified with
  the grid's border locked; neighbours sample the same border points from the same chunks' border
  vertices, so their borders meet.
- objects: the children's objects of each kind merged and simplified (pyfqmr) with what the terrain
  left of the budget.
- texture: the children seen from straight above (their own textures), mapped from above onto the
  tile (planar UVs), so simplification never breaks a texture chart.

Incremental: a tile is rebuilt only when what it is made from changed (the SHA-256 of its children's
files, the world's settings, the builder's version), so adding chunks rebuilds only their ancestors,
and a killed run resumes where it stopped. A tile is built as soon as its children are settled
(``UpperTiles``), by worker processes or a Dask cluster's alongside the chunks still being made;
only the parent process writes, every file atomically, the index after each tile.
"""
from __future__ import annotations

import dataclasses
import io
import json
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyfqmr
from PIL import Image
from scipy import ndimage
from scipy.spatial import cKDTree

from ..core.atomic import write_bytes_atomic
from ..core.contract import HLOD_INDEX, hlod_path, tile_path
from ..core.meshes import TexturedMesh, TexturedScene
from ..core.raster import Grid, heights
from ..core.schemes import SurfaceKind, get_scheme
from ..exporters.gltf import glb_bytes
from ..exporters.textures import encode_png
from .chunk import TERRAIN_SHARE
from .layout import WorldSpec, sha256, write_if_changed
from .surface import Soup, ceil_mm, ground_texel, sample, triangles, vertical_deviation

VERSION = "satforge.hlod/1"  # part of every tile's source key: a new builder rebuilds every tile
ROOT_CHILDREN = 4            # the quadtree stops at the first level with at most this many tiles
GRID_OVERSAMPLING = 4        # terrain grid triangles per triangle of the terrain's budget, before simplifying

Part = tuple[list[TexturedMesh], np.ndarray, tuple[float, float]]  # meshes, atlas, offset into the tile


def levels(chunks: Iterable[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """The tiles of every level, sorted: [chunks, level 1, ...], up to the first level with at most
    ROOT_CHILDREN tiles. Indices halve with floor (``>>``), so negative chunks fall in place."""
    tiles = [sorted(set(chunks))]
    while len(tiles[-1]) > ROOT_CHILDREN:
        tiles.append(sorted({(x >> 1, y >> 1) for x, y in tiles[-1]}))
    return tiles


def children(tiles: list[list[tuple[int, int]]]) -> list[dict[tuple[int, int], list[tuple[int, int]]]]:
    """For each level (from 1; index 0 is empty), every tile's children of the level below, sorted."""
    below: list[dict[tuple[int, int], list[tuple[int, int]]]] = [{}]
    for level in range(1, len(tiles)):
        kids: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for cx, cy in tiles[level - 1]:
            kids.setdefault((cx >> 1, cy >> 1), []).append((cx, cy))
        below.append(kids)
    return below


def tile_centre(spec: WorldSpec, level: int, x: int, y: int) -> tuple[float, float]:
    """Centre of tile (level, x, y) in world metres (level 0: the chunk's centre)."""
    return _as_chunk(spec, level).centre(x, y)


def _as_chunk(spec: WorldSpec, level: int) -> WorldSpec:
    """The spec whose chunks are the tiles of ``level``: their centres and georeferences."""
    return dataclasses.replace(spec, chunk_size=spec.chunk_size * 2 ** level)


def content_path(spec: WorldSpec, level: int, x: int, y: int) -> str:
    """What a tile draws: a chunk's coarsest LOD (level 0) or an upper tile."""
    return tile_path(spec.lods - 1, x, y) if level == 0 else hlod_path(level, x, y)


def read_glb(data: bytes) -> tuple[list[TexturedMesh], np.ndarray]:
    """The meshes (core frame) and atlas of a GLB in SatForge's layout (exporters.gltf: one
    primitive per kind, plain accessors, one embedded image)."""
    length = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + length])
    blob = memoryview(data)[28 + length:]

    def view(index: int) -> memoryview:
        bv = doc["bufferViews"][index]
        start = bv.get("byteOffset", 0)
        return blob[start:start + bv["byteLength"]]

    def accessor(index: int) -> np.ndarray:
        acc = doc["accessors"][index]
        dtype = np.dtype({5126: "<f4", 5125: "<u4", 5123: "<u2", 5121: "u1"}[acc["componentType"]])
        width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3}[acc["type"]]
        stride = doc["bufferViews"][acc["bufferView"]].get("byteStride", dtype.itemsize * width)
        flat = np.frombuffer(view(acc["bufferView"]), dtype)
        return flat.reshape(acc["count"], stride // dtype.itemsize)[:, :width]

    def core(v: np.ndarray) -> np.ndarray:  # glTF (x, y up, z south) -> core (x, y north, z up)
        return np.stack([v[:, 0], 0 - v[:, 2], v[:, 1]], 1).astype(np.float32)

    meshes = []
    for mesh in doc["meshes"]:
        prim = mesh["primitives"][0]
        attrs = prim["attributes"]
        meshes.append(TexturedMesh(kind=SurfaceKind[mesh["name"].upper()], vertices=core(accessor(attrs["POSITION"])),
                                   faces=accessor(prim["indices"]).reshape(-1, 3).astype(np.int32),
                                   uvs=accessor(attrs["TEXCOORD_0"]).copy(), normals=core(accessor(attrs["NORMAL"])),
                                   class_id=accessor(attrs["_FEATURE_ID_0"])[:, 0].copy()))
    image = Image.open(io.BytesIO(view(doc["images"][0]["bufferView"]))).convert("RGB")
    return meshes, np.asarray(image)


@dataclass
class Built:
    glb: bytes
    bounds: list[float]  # content min x, y, z, max x, y, z in the tile's frame
    deviation: float     # vertical deviation from the children's content, metres
    texel: float         # metres per texel of its texture


def build_tile(spec: WorldSpec, level: int, x: int, y: int, parts: list[Part]) -> Built:
    """Upper tile (level, x, y) from its children's content (``Part``: meshes, atlas, offset from
    the child's frame to this tile's)."""
    preset = spec.stored_preset()
    area = spec.chunk_size ** 2
    # A chunk's finest-LOD triangles, and half its texture side: at level 1 a chunk's LOD 1 texels.
    budget, side = preset.triangle_budget(area), int(preset.texel_budget(area) ** 0.5) // 2
    soup = Soup.of(parts)
    texture = _texture_grid(soup, side)
    seen = sample(soup, texture)
    half = spec.chunk_size * 2 ** level / 2
    terrain = _terrain(soup.subset(soup.kind == SurfaceKind.TERRAIN), half, int(budget * TERRAIN_SHARE), texture)
    meshes = [terrain, *_objects(parts, budget - len(terrain.faces), texture)]
    atlas = _filled(seen.colour, ~np.isnan(seen.height))
    georef = _as_chunk(spec, level).georef(x, y, 2 * half, "satforge world upper tile")
    scene = TexturedScene(meshes=meshes, atlas=atlas, georef=georef, scheme=spec.palette,
                          class_names=get_scheme(spec.palette).names, feature_ids=preset.feature_ids,
                          extras={"generator": spec.generator, "seed": spec.seed, "preset": preset.name,
                                  "hlod": [level, x, y], "chunk_size_m": spec.chunk_size})
    points = np.concatenate([m.vertices for m in meshes])
    return Built(glb=glb_bytes(scene, encode_png(atlas)), bounds=[*points.min(0).tolist(), *points.max(0).tolist()],
                 deviation=vertical_deviation(seen.height, heights(triangles(meshes), texture)),
                 texel=ground_texel(meshes, atlas))


def _texture_grid(soup: Soup, side: int) -> Grid:
    """side × side texel centres over everything the children draw, seen from above (objects may
    reach past the tile's square)."""
    lo, hi = soup.xyz[..., :2].min((0, 1)), soup.xyz[..., :2].max((0, 1))
    return Grid(float(lo[0]), float(hi[1]), float(hi[0] - lo[0]) / side, float(hi[1] - lo[1]) / side, side, side)


def _planar(vertices: np.ndarray, grid: Grid) -> np.ndarray:
    """UVs of the texture seen from above: (0, 0) at the north-west corner of ``grid``."""
    u = (vertices[:, 0] - grid.west) / (grid.dx * grid.cols)
    v = (grid.north - vertices[:, 1]) / (grid.dy * grid.rows)
    return np.stack([u, v], 1).astype(np.float32)


def _filled(colour: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Texels where nothing is seen take the nearest seen colour, so filtering never blends in black."""
    if covered.all() or not covered.any():
        return colour
    _, (rows, cols) = ndimage.distance_transform_edt(~covered, return_indices=True)
    return colour[rows, cols]


def _terrain(soup: Soup, half: float, target: int, texture: Grid) -> TexturedMesh:
    """The children's terrain on a grid over the tile's square [-half, half]², simplified to
    ``target`` triangles with the border locked (where there is no chunk there is no terrain)."""
    n = 1
    while 2 * n * n < GRID_OVERSAMPLING * target:
        n *= 2
    grid = Grid(-half, half, 2 * half / n, 2 * half / n, n + 1, n + 1, offset=0.0)
    seen = sample(soup, grid)
    gx, gy = grid.points()
    vertices = np.stack([gx, gy, seen.height], -1).reshape(-1, 3)
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)  # row 0 north
    a, b, c, d = idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:], idx[:-1, :-1]  # counter-clockwise from above
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    faces = faces[~np.isnan(vertices[faces, 2]).any(1)]
    vertices, faces = _simplified(vertices, faces, target, lock_border=True)
    nearest = cKDTree(np.stack([gx.ravel(), gy.ravel()], 1)).query(vertices[:, :2])[1]
    return TexturedMesh(kind=SurfaceKind.TERRAIN, vertices=vertices.astype(np.float32), faces=faces,
                        uvs=_planar(vertices, texture), normals=_normals(vertices, faces),
                        class_id=seen.class_id.ravel()[nearest])


def _objects(parts: list[Part], budget: int, texture: Grid) -> list[TexturedMesh]:
    """Each object kind of the children merged and simplified; the kinds share ``budget`` by their
    triangle counts."""
    merged: dict[SurfaceKind, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for meshes, _, (dx, dy) in parts:
        for mesh in meshes:
            if mesh.kind != SurfaceKind.TERRAIN and len(mesh.faces):
                merged.setdefault(mesh.kind, []).append((mesh.vertices + np.float32([dx, dy, 0]), mesh.faces,
                                                         mesh.class_id))
    total = sum(len(f) for pieces in merged.values() for _, f, _ in pieces)
    out = []
    for kind in sorted(merged):
        pieces = merged[kind]
        starts = np.cumsum([0] + [len(v) for v, _, _ in pieces])
        vertices = np.concatenate([v for v, _, _ in pieces]).astype(np.float64)
        faces = np.concatenate([f + s for (_, f, _), s in zip(pieces, starts)])
        class_id = np.concatenate([c for _, _, c in pieces])
        simple_v, simple_f = _simplified(vertices, faces, max(budget * len(faces) // total, 12), lock_border=False)
        nearest = cKDTree(vertices).query(simple_v)[1]
        out.append(TexturedMesh(kind=kind, vertices=simple_v.astype(np.float32), faces=simple_f,
                                uvs=_planar(simple_v, texture), normals=_normals(simple_v, simple_f),
                                class_id=class_id[nearest]))
    return out


def _simplified(vertices: np.ndarray, faces: np.ndarray, target: int,
                lock_border: bool) -> tuple[np.ndarray, np.ndarray]:
    """pyfqmr down to ``target`` triangles (vertices float64, faces int32, unused vertices dropped)."""
    used, faces = np.unique(faces, return_inverse=True)
    vertices, faces = vertices[used], faces.reshape(-1, 3).astype(np.int32)
    if len(faces) <= target:
        return vertices, faces
    simplifier = pyfqmr.Simplify()
    simplifier.setMesh(vertices, faces)
    simplifier.simplify_mesh(target_count=target, aggressiveness=7, preserve_border=lock_border, verbose=False)
    v, f, _ = simplifier.getMesh()
    return np.asarray(v, np.float64), np.asarray(f, np.int32)


def _normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals (unit; straight up where a vertex has no area)."""
    tri = vertices[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n = np.zeros_like(vertices)
    for corner in range(3):
        np.add.at(n, faces[:, corner], face_n)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    return np.where(length > 1e-12, n / np.maximum(length, 1e-12), [0.0, 0.0, 1.0]).astype(np.float32)


def _source_key(spec: WorldSpec, sources: list[tuple[str, str]]) -> str:
    """What a tile's bytes depend on: the builder, the world's settings, its children's files."""
    return sha256(json.dumps([VERSION, spec.header(), sources], sort_keys=True).encode())


def _index_key(level: int, x: int, y: int) -> str:
    return f"{level}/{x},{y}"


def _read_index(out: Path) -> dict:
    path = out / HLOD_INDEX
    try:
        return json.loads(path.read_text(encoding="utf-8"))["tiles"] if path.is_file() else {}
    except (OSError, ValueError, KeyError):
        return {}  # unreadable: every tile is rebuilt, byte for byte the same


def _index_bytes(tiles: dict) -> bytes:
    return (json.dumps({"format": VERSION, "tiles": dict(sorted(tiles.items()))}, indent=1) + "\n").encode()


@dataclass(frozen=True)
class TileJob:
    """An upper tile to build: its children (level - 1) and the source key its entry will carry."""
    level: int
    x: int
    y: int
    kids: tuple[tuple[int, int], ...]
    key: str


class UpperTiles:
    """The upper tiles of a world whose chunks will be ``chunks``, settled as their children are.

    A tile is ready when all its children are settled (a chunk committed, an upper tile up to date):
    if its index entry was made from the same sources and its file is there it is kept (and settles
    in turn), else it is a ``TileJob`` for the caller to build anywhere (``arguments``: what
    ``build_from_glbs`` takes) and hand back to ``built``, which writes it. So tiles are built while
    chunks are still being made, each as soon as its children are done. The index is written after
    every built tile (a killed run keeps what is done) and by ``finish`` (only the current tiles)."""

    def __init__(self, out: Path, spec: WorldSpec, chunks: Iterable[tuple[int, int]]):
        self.out, self.spec = out, spec
        self.tiles = levels(chunks)
        self.below = children(self.tiles)
        self.waiting = {(level, x, y): len(kids) for level in range(1, len(self.tiles))
                        for (x, y), kids in self.below[level].items()}
        self.sha: dict[tuple[int, int, int], str] = {}
        self.old, self.index = _read_index(out), {}

    def order(self, chunks: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
        """``chunks`` in the order that makes the most of the tiles: each top-level tile's chunks
        in Z-order (each upper tile's children one after the other, so tiles are ready early and
        built while chunks are still made), the top-level tiles taking turns, so they are all
        ready together at the end instead of one last chain of tiles on one core."""
        top = len(self.tiles) - 1
        by_top: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for x, y in sorted(chunks, key=lambda c: [((c[1] >> b) & 1, (c[0] >> b) & 1) for b in range(top - 1, -1, -1)]):
            by_top.setdefault((x >> top, y >> top), []).append((x, y))
        ranked = [(rank, tile, chunk) for tile, group in by_top.items() for rank, chunk in enumerate(group)]
        return [chunk for _, _, chunk in sorted(ranked)]

    @property
    def left(self) -> int:
        """Upper tiles not settled yet."""
        return len(self.waiting) - len(self.index)

    def settled(self, level: int, x: int, y: int, sha: str) -> list[TileJob]:
        """Tile (level, x, y) (level 0: a chunk's coarsest LOD) is final with content ``sha``: the
        upper tiles this makes ready to build."""
        self.sha[(level, x, y)] = sha
        parent = (level + 1, x >> 1, y >> 1)
        if parent not in self.waiting:
            return []
        self.waiting[parent] -= 1
        if self.waiting[parent]:
            return []
        kids = tuple(self.below[parent[0]][parent[1:]])
        sources = [(content_path(self.spec, level, kx, ky), self.sha[(level, kx, ky)]) for kx, ky in kids]
        job = TileJob(*parent, kids, _source_key(self.spec, sources))
        entry, path = self.old.get(_index_key(*parent)), self.out / hlod_path(*parent)
        if entry and entry["source"] == job.key and path.is_file() and path.stat().st_size == entry["bytes"]:
            self.index[_index_key(*parent)] = entry
            return self.settled(*parent, entry["sha256"])
        return [job]

    def arguments(self, job: TileJob) -> tuple:
        """``build_from_glbs``'s arguments for ``job``: its children's bytes, read now."""
        kids = [(kid, (self.out / content_path(self.spec, job.level - 1, *kid)).read_bytes()) for kid in job.kids]
        return self.spec, job.level, job.x, job.y, kids

    def built(self, job: TileJob, built: Built) -> list[TileJob]:
        """Write ``job``'s tile; the tiles this makes ready."""
        entry = _written(self.out, job.level, job.x, job.y, job.key, built)
        self.index[_index_key(job.level, job.x, job.y)] = entry
        write_if_changed(self.out / HLOD_INDEX, _index_bytes({**self.old, **self.index}))
        return self.settled(job.level, job.x, job.y, entry["sha256"])

    def finish(self) -> dict:
        """Write the index of the current tiles ({"L/X,Y": entry}) and return it; every tile is settled."""
        assert self.left == 0, f"{self.left} upper tiles were not settled"
        write_if_changed(self.out / HLOD_INDEX, _index_bytes(self.index))
        return self.index


def build_from_glbs(spec: WorldSpec, level: int, x: int, y: int,
                    kids: list[tuple[tuple[int, int], bytes]]) -> Built:
    """Upper tile (level, x, y) from its children's GLB bytes ((child x, child y), bytes)."""
    cx, cy = tile_centre(spec, level, x, y)
    parts = []
    for (kx, ky), glb in kids:
        meshes, atlas = read_glb(glb)
        kcx, kcy = tile_centre(spec, level - 1, kx, ky)
        parts.append((meshes, atlas, (kcx - cx, kcy - cy)))
    return build_tile(spec, level, x, y, parts)


def _written(out: Path, level: int, x: int, y: int, key: str, built: Built) -> dict:
    """Write a built tile's file; its index entry."""
    path = hlod_path(level, x, y)
    write_bytes_atomic(out / path, built.glb)
    return {"level": level, "x": x, "y": y, "path": path, "sha256": sha256(built.glb), "bytes": len(built.glb),
            "bounds": [round(b, 4) for b in built.bounds], "deviation": ceil_mm(built.deviation),
            "texel": ceil_mm(built.texel), "source": key}
