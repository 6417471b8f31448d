"""Reading world chunks back: terrain borders in world coordinates, and a top view of many chunks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pygltflib
from topdown import TopView, load_glb_meshes, render_top_view

# The small procedural world the world tests share: 64 m chunks, 2 LODs.
S, LODS = 64, 2
ARGS = ["--chunk-size", str(S), "--lods", str(LODS), "--seed", "19", "--progress", "none"]


def make_world(out: Path, tiles: str) -> Path:
    """``satforge world`` with ARGS over ``tiles`` (X0:X1,Y0:Y1) into ``out``."""
    from satforge.cli import main

    assert main(["world", "--out", str(out), "--tiles", tiles, *ARGS]) == 0
    return out


def tiles(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("tiles/*/*.glb"))}


def _to_core(v: np.ndarray) -> np.ndarray:
    """glTF (x east, y up, z south) -> core (x east, y north, z up), exactly (a sign flip)."""
    return np.stack([v[:, 0], 0 - v[:, 2], v[:, 1]], 1)


def terrain(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Terrain POSITION and NORMAL in the chunk's core frame (x east, y north, z up), float32."""
    gltf = pygltflib.GLTF2.load(str(path))
    blob = gltf.binary_blob()
    mesh = next(m for m in gltf.meshes if m.name == "terrain")

    def read(index: int) -> np.ndarray:
        acc = gltf.accessors[index]
        view = gltf.bufferViews[acc.bufferView]
        return np.frombuffer(blob, np.float32, acc.count * 3, view.byteOffset).reshape(-1, 3)

    attrs = mesh.primitives[0].attributes
    return _to_core(read(attrs.POSITION)), _to_core(read(attrs.NORMAL))


def border(path: Path, x: int, y: int, size: float, axis: int, local: float) -> dict[tuple, tuple]:
    """World position -> normal of the terrain vertices on one chunk edge (offset added in float32)."""
    pos, nrm = terrain(path)
    on = pos[:, axis] == np.float32(local)
    world = pos[on] + np.array([(x + 0.5) * size, (y + 0.5) * size, 0], np.float32)
    return {tuple(p.tolist()): tuple(n.tolist()) for p, n in zip(world, nrm[on])}


def neighbour_pairs(chunks: list[tuple[int, int]]) -> list[tuple[tuple[int, int], tuple[int, int], int]]:
    """(west/south chunk, east/north chunk, axis) of every pair of neighbours in ``chunks``."""
    have = set(chunks)
    return [((x, y), (x + dx, y + dy), axis) for x, y in sorted(have)
            for dx, dy, axis in ((1, 0, 0), (0, 1, 1)) if (x + dx, y + dy) in have]


def assert_borders_identical(world: Path, lod: int) -> int:
    """Every pair of neighbouring chunks shares bit-identical border vertices and normals; returns
    the number of pairs checked."""
    manifest = json.loads((world / "manifest.json").read_text())
    size = manifest["chunk_size"]
    chunks = [(c["x"], c["y"]) for c in manifest["chunks"].values()]
    pairs = neighbour_pairs(chunks)
    for (xa, ya), (xb, yb), axis in pairs:
        a = border(world / f"tiles/{lod}/tile_x{xa}_y{ya}.glb", xa, ya, size, axis, size / 2)
        b = border(world / f"tiles/{lod}/tile_x{xb}_y{yb}.glb", xb, yb, size, axis, -size / 2)
        assert len(a) == round(size / (2 * manifest["gsd"])) + 1, "the full-resolution border is kept"
        assert a == b, f"border between {xa, ya} and {xb, yb} differs at LOD {lod}"
    return len(pairs)


def top_view(world: Path, lod: int, gsd: float, chunks: list[tuple[int, int]] | None = None,
             only: str | None = None) -> tuple[TopView, tuple]:
    """The chunks (default: all) seen from above together, each moved by its chunk offset; with
    ``only``, just the meshes of that kind. Returns the view and its (west, south) chunk index."""
    manifest = json.loads((world / "manifest.json").read_text())
    size = manifest["chunk_size"]
    chunks = chunks or [(c["x"], c["y"]) for c in manifest["chunks"].values()]
    xs, ys = [c[0] for c in chunks], [c[1] for c in chunks]
    x0, x1, y0, y1 = min(xs), max(xs) + 1, min(ys), max(ys) + 1
    mid_x, mid_y = (x0 + x1) * size / 2, (y0 + y1) * size / 2
    meshes = []
    for x, y in chunks:
        dx, dy = (x + 0.5) * size - mid_x, (y + 0.5) * size - mid_y
        for name, v, f, uv, image in load_glb_meshes(world / f"tiles/{lod}/tile_x{x}_y{y}.glb"):
            if only is None or name.split("/")[0] == only:
                meshes.append((name, v + [dx, 0, -dy], f, uv, image))
    return render_top_view(meshes, (x1 - x0) * size, (y1 - y0) * size, gsd), (x0, y0)


def seam_contrast(view: TopView, size: float, gsd: float) -> tuple[float, float]:
    """(mean colour difference between the ground pixels on either side of chunk borders, the same
    between every other pair of adjacent ground pixels), sRGB in [0, 1]. Ground: pixels whose top
    surface is the terrain mesh; objects are left out, as their edges say nothing about seams."""
    ground = np.isin(view.kind, [i for i, name in enumerate(view.names) if name.split("/")[0] == "terrain"])
    per_chunk = round(size / gsd)
    across, inside = [], []
    for axis in (0, 1):
        diff = np.moveaxis(np.abs(np.diff(view.colour, axis=axis)).mean(axis=-1), axis, 0)
        both = np.moveaxis(ground[1:] & ground[:-1] if axis == 0 else ground[:, 1:] & ground[:, :-1], axis, 0)
        at_border = ((np.arange(diff.shape[0]) + 1) % per_chunk == 0)[:, None]
        across.append(diff[both & at_border])
        inside.append(diff[both & ~at_border])
    return float(np.concatenate(across).mean()), float(np.concatenate(inside).mean())


def crowns_on_trunks(path: Path, size: float) -> tuple[int, int, int]:
    """(floating crowns wholly inside a chunk's square, how many of them stand on a trunk, trunks
    under no crown) at one of its LODs: the vegetation mesh welded into connected parts; a trunk is
    a part whose foot is on the ground, a crown one whose underside is 0.5 m or more above it, held
    when a trunk's centre lies within its extent."""
    from scipy.interpolate import griddata
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from satforge.core.schemes import SurfaceKind
    from satforge.world.hlod import read_glb

    meshes, _ = read_glb(path.read_bytes())
    ground = next(m for m in meshes if m.kind == SurfaceKind.TERRAIN)
    trees = next(m for m in meshes if m.kind == SurfaceKind.VEGETATION)
    points, weld = np.unique(trees.vertices, axis=0, return_inverse=True)
    faces = weld.ravel()[trees.faces]
    n = len(points)
    edges = coo_matrix((np.ones(faces.size), (faces.ravel(), np.roll(faces, 1, 1).ravel())), shape=(n, n))
    parts, label = connected_components(edges, directed=False)
    clearance = points[:, 2] - griddata(ground.vertices[:, :2], ground.vertices[:, 2], points[:, :2])
    low, lo, hi = np.full(parts, np.inf), np.full((parts, 2), np.inf), np.full((parts, 2), -np.inf)
    np.minimum.at(low, label, np.nan_to_num(clearance, nan=np.inf))
    np.minimum.at(lo, label, points[:, :2])
    np.maximum.at(hi, label, points[:, :2])
    foot = np.abs(clearance) < 0.2  # a trunk's base corners: their mean is its centre (box or spike)
    trunks = np.stack([np.bincount(label[foot], points[foot, k], parts) for k in (0, 1)], 1)[low < 0.2]
    trunks /= np.bincount(label[foot], minlength=parts)[low < 0.2, None]
    under = [((trunks >= lo[c]) & (trunks <= hi[c])).all(1) for c in np.flatnonzero(low > 0.5)]
    inside = (lo > -size / 2 + 0.5).all(1) & (hi < size / 2 - 0.5).all(1)
    crowns = np.flatnonzero((low > 0.5) & inside)
    held = sum(bool(((trunks >= lo[c]) & (trunks <= hi[c])).all(1).any()) for c in crowns)
    return len(crowns), held, int((~np.any(under, axis=0)).sum()) if under else len(trunks)
