"""Baking the albedo atlas from 2D Gaussian splats (core/bake).

Splats are laid on grids over the shapes of test_unwrap with known colours; baked texels are
read back at their own 3D positions (found independently, from the atlas UVs).
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from test_unwrap import box, heightfield, texel_hits

from satforge.core import bake
from satforge.core.bake import bake_albedo
from satforge.core.georef import Georeference
from satforge.core.scene import Scene, SparseVoxels, Splats, quaternions_from_frames
from satforge.core.unwrap import Atlas, unwrap

SPACING = 0.5  # splat grid, metres
SIGMA = 0.5 * SPACING


def splats_on(points, normals, colours, sigma: float = SIGMA) -> Splats:
    """Isotropic opaque surfels at ``points`` facing ``normals``."""
    n = np.asarray(normals, np.float64)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    ref = np.where(np.abs(n[:, 2:]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    u = np.cross(ref, n)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    m = len(n)
    return Splats(position=np.asarray(points, np.float32),
                  rotation=quaternions_from_frames(u, np.cross(n, u), n),
                  scale=np.full((m, 2), sigma, np.float32), opacity=np.ones(m, np.float32),
                  colour=np.asarray(colours, np.float32), class_id=np.zeros(m, np.uint8),
                  kind=np.ones(m, np.uint8))


def make_scene(splats: Splats, centres=np.zeros((0, 3)), colours=np.zeros((0, 3)), size: float = 1.0,
               origin=(0.0, 0.0, 0.0)) -> Scene:
    """A scene of these splats plus voxels of edge ``size`` centred at ``centres``."""
    origin = np.asarray(origin, np.float64)
    coords = np.floor((np.asarray(centres) - origin) / size).astype(np.int32)
    n = len(coords)
    voxels = SparseVoxels(coords=coords, size=size, origin=origin, colour=np.asarray(colours, np.uint8),
                          class_id=np.zeros(n, np.uint8), kind=np.ones(n, np.uint8),
                          normal=np.tile(np.float32([0, 0, 1]), (n, 1)))
    georef = Georeference(crs=None, easting=0.0, northing=0.0, elevation=0.0, width_m=64.0,
                          height_m=64.0, gsd=SPACING)
    return Scene(voxels=voxels, splats=splats, georef=georef, scheme="openearthmap", generator="test",
                 seed=0, image_gsd=SPACING)


def grid(lo: float, hi: float, step: float = SPACING) -> np.ndarray:
    return np.arange(lo + step / 2, hi, step)


def interior_texels(atlas: Atlas, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(position, face normal, baked colour in [0, 1]) of texels whose centre is inside a triangle."""
    flat, mesh, face, bary = texel_hits(atlas)
    position, normal = np.zeros((len(flat), 3)), np.zeros((len(flat), 3))
    for i, m in enumerate(atlas.meshes):
        sel = mesh == i
        corners = m.vertices[m.faces[face[sel]]].astype(np.float64)
        position[sel] = np.einsum("ni,nij->nj", bary[sel], corners)
        n = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        normal[sel] = n / np.linalg.norm(n, axis=1, keepdims=True)
    return position, normal, image.reshape(-1, 3)[flat] / 255.0


def smooth_image(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A known colour field in [0.1, 0.9], smooth at the splat spacing."""
    return np.column_stack([0.5 + 0.4 * np.sin(2 * np.pi * x / 8), 0.5 + 0.4 * np.cos(2 * np.pi * y / 10),
                            0.5 + 0.4 * (x + y) / 24])


@pytest.fixture(scope="module")
def flat_bake():
    """A flat 24 m square (heightfield of zero relief) under a grid of splats of a known image."""
    mesh = heightfield(13, 24.0, amplitude=0.0)
    x, y = np.meshgrid(grid(-12, 12), grid(-12, 12))
    x, y = x.ravel(), y.ravel()
    splats = splats_on(np.column_stack([x, y, np.zeros_like(x)]), np.tile([0, 0, 1.0], (len(x), 1)),
                       smooth_image(x, y))
    atlas = unwrap([mesh], texels_per_metre=8.0, max_texels=1 << 20)
    return atlas, bake_albedo(atlas, make_scene(splats))


def test_baked_texels_match_the_splatted_image(flat_bake):
    atlas, image = flat_bake
    assert image.shape == (atlas.height, atlas.width, 3) and image.dtype == np.uint8
    position, _, colour = interior_texels(atlas, image)
    inner = np.abs(position[:, :2]).max(1) < 11.0  # away from the square's rim, where splats stop
    expected = smooth_image(position[inner, 0], position[inner, 1])
    psnr = 10 * np.log10(1 / np.mean((colour[inner] - expected) ** 2))
    assert psnr >= 30.0


def test_rasterisation_is_conservative(flat_bake):
    atlas, _ = flat_bake
    covered = bake._owners(bake._triangles(atlas), atlas.width, atlas.height) >= 0
    m = atlas.meshes[0]
    # Texels under every corner and edge midpoint of every triangle are covered.
    uv = m.uvs[m.faces].astype(np.float64) * [atlas.width, atlas.height]
    points = np.concatenate([uv, (uv + np.roll(uv, 1, axis=1)) / 2], axis=1).reshape(-1, 2)
    col = np.clip(np.floor(points[:, 0]).astype(int), 0, atlas.width - 1)
    row = np.clip(np.floor(points[:, 1]).astype(int), 0, atlas.height - 1)
    assert covered[row * atlas.width + col].all()


RED, BLUE = [0.9, 0.05, 0.05], [0.05, 0.05, 0.9]


@pytest.fixture(scope="module")
def box_bake():
    """A 10 x 10 x 6 m box: red splats on its top, blue splats on its walls."""
    mesh = box((0, 0, 0), (10, 10, 6))
    step = SPACING / 2
    top_x, top_y = (a.ravel() for a in np.meshgrid(grid(0, 10, step), grid(0, 10, step)))
    along, up = (a.ravel() for a in np.meshgrid(grid(0, 10, step), grid(0, 6, step)))
    zero, ten = np.zeros_like(along), np.full_like(along, 10.0)
    walls = [  # (points, outward normal) of the four walls
        (np.column_stack([along, zero, up]), [0, -1, 0]), (np.column_stack([along, ten, up]), [0, 1, 0]),
        (np.column_stack([zero, along, up]), [-1, 0, 0]), (np.column_stack([ten, along, up]), [1, 0, 0])]
    top = np.column_stack([top_x, top_y, np.full_like(top_x, 6.0)])
    points = np.concatenate([top] + [p for p, _ in walls])
    normals = np.concatenate([np.tile([0, 0, 1.0], (len(top), 1))]
                             + [np.tile(n, (len(p), 1)) for p, n in walls])
    colours = np.concatenate([np.tile(RED, (len(top_x), 1)), np.tile(BLUE, (len(points) - len(top_x), 1))])
    atlas = unwrap([mesh], texels_per_metre=8.0, max_texels=1 << 20)
    return atlas, bake_albedo(atlas, make_scene(splats_on(points, normals, colours, sigma=step / 2)))


def test_roof_colour_does_not_leak_onto_walls(box_bake):
    atlas, image = box_bake
    _, normal, colour = interior_texels(atlas, image)
    top, wall = normal[:, 2] > 0.99, np.abs(normal[:, 2]) < 0.01
    assert top.sum() > 5000 and wall.sum() > 10000
    np.testing.assert_allclose(colour[top], np.tile(RED, (top.sum(), 1)), atol=2 / 255)
    np.testing.assert_allclose(colour[wall], np.tile(BLUE, (wall.sum(), 1)), atol=2 / 255)


def test_dilation_leaves_no_black_next_to_charts(box_bake):
    atlas, image = box_bake
    assert image.max(2).min() > 0
    covered = bake._owners(bake._triangles(atlas), atlas.width, atlas.height).reshape(image.shape[:2]) >= 0
    dist = ndimage.distance_transform_cdt(~covered, metric="chessboard")
    ring = (dist > 0) & (dist <= 8)
    assert ring.any() and (dist > 8).any()
    # Charts are plain red or plain blue, so the ring around them must be exactly those colours.
    chart_colours = {tuple(c) for c in image[covered]}
    assert {tuple(c) for c in image[ring]} <= chart_colours
    assert len({tuple(c) for c in image[dist > 8]}) == 1


def test_texels_without_splats_take_the_nearest_voxel_colour():
    mesh = heightfield(13, 24.0, amplitude=0.0)
    x, y = (a.ravel() for a in np.meshgrid(grid(-12, 0), grid(-12, 12)))
    splats = splats_on(np.column_stack([x, y, np.zeros_like(x)]), np.tile([0, 0, 1.0], (len(x), 1)),
                       np.tile([0.2, 0.8, 0.2], (len(x), 1)))
    # Voxels of 1 m, their borders 0.3 m off the texel grid so no texel is equidistant to two.
    vx, vy = (a.ravel() for a in np.meshgrid(np.arange(-12, 12) + 0.8, np.arange(-12, 12) + 0.8))
    centres = np.column_stack([vx, vy, np.full_like(vx, -0.2)])
    vcolours = np.column_stack([np.full_like(vx, 200), (vx + 12) * 10, (vy + 12) * 10]).astype(np.uint8)
    atlas = unwrap([mesh], texels_per_metre=4.0, max_texels=1 << 20)
    image = bake_albedo(atlas, make_scene(splats, centres, vcolours, origin=(0.3, 0.3, -0.7)))
    position, _, colour = interior_texels(atlas, image)
    bare = position[:, 0] > 1.0  # farther than 3 sigma from every splat
    nearest = np.argmin(((position[bare, None, :] - centres[None]) ** 2).sum(2), axis=1)
    np.testing.assert_array_equal(np.round(colour[bare] * 255), vcolours[nearest])
    green = colour[position[:, 0] < -1.0]
    np.testing.assert_allclose(green, np.tile([0.2, 0.8, 0.2], (len(green), 1)), atol=1 / 255)


def test_bake_is_deterministic(flat_bake):
    atlas, image = flat_bake
    x, y = (a.ravel() for a in np.meshgrid(grid(-12, 12), grid(-12, 12)))
    splats = splats_on(np.column_stack([x, y, np.zeros_like(x)]), np.tile([0, 0, 1.0], (len(x), 1)),
                       smooth_image(x, y))
    np.testing.assert_array_equal(bake_albedo(atlas, make_scene(splats)), image)


def test_dilation_copies_a_nearest_covered_texel_across_strips():
    """On an atlas taller than one dilation strip, every texel within 8 (chessboard) of a chart
    takes the colour of a chart texel at exactly its distance, and every texel further out the
    background: the strips see all they need of their neighbours."""
    rng = np.random.default_rng(4)
    covered = ndimage.binary_dilation(rng.random((700, 90)) < 0.003, iterations=2)  # charts
    covered[300:340] = False  # a gap wider than the reach, across a strip's end
    ids = np.arange(covered.size)
    image = np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).reshape(700, 90, 3).astype(np.uint8)
    image[~covered] = 0
    out = bake._dilate(image.copy(), covered, np.array([1, 2, 3], np.uint8), 8)
    dist = ndimage.distance_transform_cdt(~covered, metric="chessboard")
    near = (dist > 0) & (dist <= 8)
    source = out[near].astype(np.int64) @ [1, 256, 65536]
    r, c = np.nonzero(near)
    assert covered.ravel()[source].all()
    np.testing.assert_array_equal(np.maximum(np.abs(source // 90 - r), np.abs(source % 90 - c)), dist[near])
    assert (out[dist > 8] == [1, 2, 3]).all() and (dist > 8).any()
    np.testing.assert_array_equal(out[covered], image[covered])
