"""One chunk, every LOD: window Tile -> the world's generator -> object meshes + locked-border terrain -> GLBs.

- Objects (buildings, trees) come from the world's generator (chunk-safe, by name) run on a window of the chunk plus an
  overlap band on every side, holding only the objects this chunk owns (see ``view`` for who owns
  what): whole objects are seen whole, and only input objects wider than the band are cut at the
  chunk border, meshed with a few metres past it and trimmed there (``core.convert.solids.Cut``).
  The window is centred on the chunk, so the scene's frame is the chunk's frame.
- Terrain is not taken from the scene: it is a height field on the world grid (every
  TERRAIN_STEP metres from the chunk's south-west corner), cut exactly at the chunk square and
  simplified by pyfqmr with its open border locked, so every LOD of two neighbours keeps the same
  full-resolution border vertices, computed from the same world function. Normals are the world
  height field's gradient (central differences reaching past the border), identical on both sides.
- Terrain texture: its own block of the atlas, one texel centre every ``S / n`` metres from the
  chunk's corner, the border texels exactly on the border, coloured by the world's ground colour:
  neighbours sample the same world positions. Object charts are packed and baked by the existing
  unwrap and bake stages and placed beside it.
- LODs share what they can: the objects' top surfaces are extracted once and each coarser LOD
  simplifies the finer one's (``core.convert.Tops``); every bake uses one prepared splat field;
  the terrain of every LOD is made on a background thread while the objects are generated.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import pyfqmr

from ..core.arrays import to_u8
from ..core.bake import BakeField, bake_field
from ..core.convert import MeshSource, mesh_source
from ..core.generators import ChunkPlace, GenerateSettings, get_generator
from ..core.meshes import TexturedMesh, TexturedScene
from ..core.presets import Preset
from ..core.scene import Scene, SparseVoxels
from ..core.schemes import SurfaceKind, get_scheme
from ..core.texturing import Budget, meshes_within, unwrap_bake
from ..exporters.gltf import glb_bytes
from ..exporters.textures import encode_png
from .layout import WorldSpec
from .surface import lod_errors
from .view import View, open_view

OBJECT_KINDS = (SurfaceKind.BUILDING, SurfaceKind.VEGETATION)
TERRAIN_SHARE = 0.5      # share of a LOD's triangle budget the terrain may use
TERRAIN_TEXEL_SHARE = 0.25  # share of a LOD's texel budget the terrain block may use
ATLAS_GAP = 8            # texels between the terrain block and the object charts (edge-extended)


@dataclass
class ChunkResult:
    x: int
    y: int
    glbs: list[bytes]        # one per LOD, finest first
    bounds: list[float]      # min x, y, z, max x, y, z of every LOD in the chunk frame (z up)
    triangles: int           # over all LODs
    errors: list[float]      # geometric error of each LOD, metres (world.surface.lod_errors)


def terrain_step(spec: WorldSpec) -> float:
    return 2 * spec.gsd


def _only_objects(scene: Scene) -> Scene:
    """The scene without its terrain, road and water (the chunk's terrain comes from the world grid,
    and so its colours): what the objects' bake samples."""
    v, s = scene.voxels, scene.splats
    kv, ks = np.isin(v.kind, OBJECT_KINDS), np.isin(s.kind, OBJECT_KINDS)
    voxels = SparseVoxels(coords=v.coords[kv], size=v.size, origin=v.origin, colour=v.colour[kv],
                          class_id=v.class_id[kv], kind=v.kind[kv], normal=v.normal[kv])
    return dataclasses.replace(scene, voxels=voxels, splats=s.take(ks))


@dataclass
class _Grid:
    vertices: np.ndarray  # (V, 3) float64 chunk frame
    faces: np.ndarray     # (F, 3) int32, counter-clockwise from above


def terrain_grid(spec: WorldSpec, view: View, x: int, y: int) -> _Grid:
    """The full-resolution terrain height field of the chunk square (border included)."""
    step, size = terrain_step(spec), spec.chunk_size
    n = round(size / step)
    along = np.arange(n + 1) * step
    gx, gy = np.meshgrid(along, along)  # row j north of the south edge
    z = view.ground(x * size + gx, y * size + gy)
    vertices = np.stack([gx - size / 2, gy - size / 2, z], -1).reshape(-1, 3)
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    a, b, c, d = idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    return _Grid(vertices, faces.astype(np.int32))


def _simplified(grid: _Grid, target: int) -> _Grid:
    """pyfqmr with the open border locked: border vertices come out exactly as they went in."""
    if len(grid.faces) <= target:
        return grid
    simplifier = pyfqmr.Simplify()
    simplifier.setMesh(grid.vertices, grid.faces)
    simplifier.simplify_mesh(target_count=target, aggressiveness=7, preserve_border=True, verbose=False)
    vertices, faces, _ = simplifier.getMesh()
    return _Grid(np.asarray(vertices, np.float64), np.asarray(faces, np.int32))


def _world_normals(spec: WorldSpec, view: View, wx: np.ndarray, wy: np.ndarray) -> np.ndarray:
    """Unit normals of the world height field (central differences), the same on both sides of a border."""
    h = terrain_step(spec) / 2
    dzdx = (view.ground(wx + h, wy) - view.ground(wx - h, wy)) / (2 * h)
    dzdy = (view.ground(wx, wy + h) - view.ground(wx, wy - h)) / (2 * h)
    n = np.stack([-dzdx, -dzdy, np.ones_like(dzdx)], -1)
    return (n / np.linalg.norm(n, axis=-1, keepdims=True)).astype(np.float32)


def _terrain_texels(spec: WorldSpec, budget: int) -> int:
    """n: the terrain block has (n + 1)^2 texels, one every S / n metres; n a power of two."""
    n = 1
    while (2 * n + 1) ** 2 <= budget * TERRAIN_TEXEL_SHARE:
        n *= 2
    return n


def _ground_image(spec: WorldSpec, view: View, x: int, y: int, n: int) -> np.ndarray:
    """(n + 1, n + 1, 3) uint8 ground colour at texel centres, one every S / n metres from the
    chunk's corner, row 0 on the north border: neighbours sample the same world positions, so
    their border texels agree. Every k-th texel of it is the same for n / k."""
    size = spec.chunk_size
    along = np.arange(n + 1) * (size / n)
    gx, gy = np.meshgrid(x * size + along, (y + 1) * size - along)
    return to_u8(view.ground_colour(gx, gy))


def _terrain_mesh(spec: WorldSpec, view: View, x: int, y: int, grid: _Grid, n: int) -> TexturedMesh:
    """The simplified terrain with world normals and UVs in the terrain block (texels, not yet 0..1)."""
    cx, cy = spec.centre(x, y)
    wx, wy = grid.vertices[:, 0] + cx, grid.vertices[:, 1] + cy
    half, texel = spec.chunk_size / 2, spec.chunk_size / n
    uv = np.stack([(grid.vertices[:, 0] + half) / texel + 0.5, (half - grid.vertices[:, 1]) / texel + 0.5], -1)
    return TexturedMesh(kind=SurfaceKind.TERRAIN, vertices=grid.vertices.astype(np.float32), faces=grid.faces,
                        uvs=uv.astype(np.float32), normals=_world_normals(spec, view, wx, wy),
                        class_id=view.ground_class(wx, wy))


def _compose(terrain: np.ndarray, objects: np.ndarray | None) -> np.ndarray:
    """One atlas: the terrain block at the top left, the object atlas right of it (gap edge-extended)."""
    if objects is None:
        return terrain
    height = max(terrain.shape[0], objects.shape[0])
    left = np.pad(terrain, ((0, height - terrain.shape[0]), (0, ATLAS_GAP), (0, 0)), mode="edge")
    right = np.pad(objects, ((0, height - objects.shape[0]), (0, 0), (0, 0)), mode="edge")
    return np.concatenate([left, right], 1)


@dataclass
class _Terrain:
    """One LOD's terrain: its mesh (UVs in texels of its block, not yet 0..1) and that block."""

    mesh: TexturedMesh
    image: np.ndarray  # (n + 1, n + 1, 3) uint8 ground colours (see ``_ground_image``)


def _terrain_lods(spec: WorldSpec, preset: Preset, view: View, x: int, y: int) -> list[_Terrain]:
    """Every LOD's terrain: the chunk's own ground, which needs none of its objects. The ground
    colour is sampled once, for the finest LOD; a coarser one takes every k-th texel of it."""
    area = spec.chunk_size ** 2
    sides = [_terrain_texels(spec, preset.texel_budget(area) >> lod) for lod in range(spec.lods)]
    grid, finest = terrain_grid(spec, view, x, y), _ground_image(spec, view, x, y, sides[0])
    lods = []
    for lod, n in enumerate(sides):
        simplified = _simplified(grid, int((preset.triangle_budget(area) >> lod) * TERRAIN_SHARE))
        step = sides[0] // n
        lods.append(_Terrain(_terrain_mesh(spec, view, x, y, simplified, n), finest[::step, ::step]))
    return lods


@dataclass
class _Sources:
    """What every LOD of one chunk is made from."""

    spec: WorldSpec
    preset: Preset
    x: int
    y: int
    terrain: Future[list[_Terrain]]
    scene: Scene | None       # the owned objects (and the ground under them, for trunks), or None
    field: Future[BakeField] | None  # the objects' colours, prepared once for every LOD's bake


def _lod(src: _Sources, lod: int, threads: int | None,
         objects: MeshSource | None) -> tuple[TexturedScene, MeshSource | None]:
    """One LOD, and what the next (coarser) LOD's objects start from. ``objects``: what this
    LOD's objects are meshed from (the finest LOD's cut locked at full resolution, the same as its
    neighbour's; a coarser one's not: its geometric error covers the difference)."""
    spec, preset, x, y, scene = src.spec, src.preset, src.x, src.y, src.scene
    area = spec.chunk_size ** 2
    triangles, texels = preset.triangle_budget(area) >> lod, preset.texel_budget(area) >> lod
    ground = src.terrain.result()[lod]
    terrain, n = ground.mesh, len(ground.image) - 1
    meshes, image = [terrain], None
    if scene is not None:
        # A LOD's budget is a target: the objects get what the terrain left, more when they cannot fit.
        # Each coarser LOD has half the texels: its density falls by sqrt(2) even where the finest
        # one is capped by the image's (so the bake's cost falls with the LOD too).
        budget = Budget(triangles=max(triangles - len(terrain.faces), 1), texels=texels - (n + 1) ** 2,
                        texels_per_metre=preset.texels_per_image_pixel / scene.image_gsd / 2 ** (lod / 2))
        object_meshes, simplified = meshes_within(objects, budget, threads=threads)
        objects = simplified.coarser()
        atlas, image = unwrap_bake(scene, object_meshes, budget, threads, field=src.field)
        meshes += atlas.meshes
    composed = _compose(ground.image, image)
    height, width = composed.shape[:2]
    terrain.uvs = terrain.uvs / np.array([width, height], np.float32)
    for mesh in meshes[1:]:
        mesh.uvs = ((mesh.uvs * image.shape[1::-1] + [n + 1 + ATLAS_GAP, 0]) / [width, height]).astype(np.float32)
    georef = spec.georef(x, y, spec.chunk_size, "satforge world chunk")
    return TexturedScene(meshes=meshes, atlas=composed, georef=georef,
                         scheme=spec.palette, class_names=get_scheme(spec.palette).names,
                         feature_ids=preset.feature_ids,
                         extras={"generator": spec.generator, "seed": spec.seed, "preset": preset.name,
                                 "chunk": [x, y], "lod": lod, "chunk_size_m": spec.chunk_size}), objects


class _InTurn:
    """An executor that runs each task when it is submitted, in the caller's thread."""

    def submit(self, fn: Callable, *args) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future


def make_chunk(spec: WorldSpec, preset: Preset, x: int, y: int, threads: int | None = None) -> ChunkResult:
    """Every LOD of chunk (x, y): a pure function of (spec, preset, x, y).

    ``threads`` bounds the cores used (default every core); the bytes do not depend on it.
    """
    generator = get_generator(spec.generator.split("/")[0])
    # CPU always: a chunk's bytes must not depend on which machine made it.
    settings = GenerateSettings(seed=spec.seed, device="cpu", chunk=ChunkPlace(x, y, spec.chunk_size, spec.band),
                                weights=spec.weights)
    view = open_view(spec, x, y, generator if hasattr(generator, "estimate") else None, settings)
    # The background thread makes the terrain while the objects are found and generated, prepares
    # the bake's sources while the first LOD's meshes are made, then encodes each LOD's file while
    # the next one is made (on one core: in turn).
    with ThreadPoolExecutor(1) if threads != 1 else nullcontext(_InTurn()) as background:
        terrain = background.submit(_terrain_lods, spec, preset, view, x, y)
        objects = view.object_tile(getattr(generator, "photo_context", True))
        scene = None if objects is None else generator.generate(objects.tile, settings, lambda *_: None)
        field = None if scene is None else background.submit(lambda: bake_field(_only_objects(scene)))
        meshed = None if objects is None else mesh_source(scene, objects.cut(), kinds=OBJECT_KINDS)
        src = _Sources(spec, preset, x, y, terrain, scene, field)
        files, triangles, lods = [], 0, []
        for lod in range(spec.lods):
            textured, meshed = _lod(src, lod, threads, meshed)
            files.append(background.submit(lambda t=textured: glb_bytes(t, encode_png(t.atlas))))
            triangles += textured.triangle_count
            lods.append((textured.meshes, textured.atlas))
        glbs = [f.result() for f in files]
    # Every LOD's: a simplified vertex may move past the finest LOD's extent.
    points = np.concatenate([m.vertices for meshes, _ in lods for m in meshes])
    bounds = [*points.min(0).tolist(), *points.max(0).tolist()]
    return ChunkResult(x, y, glbs, bounds, triangles, lod_errors(lods, spec.gsd))
