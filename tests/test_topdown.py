"""Tests of the top-down measuring instrument (tests/topdown.py) on tiny hand-built GLBs."""
from __future__ import annotations

import io
import os
import sys
import time

import numpy as np
import pygltflib
import pytest
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import topdown
from topdown import (
    coverage,
    load_glb_meshes,
    psnr,
    render_top_view,
    rmse,
    sample_bilinear,
    texel_density,
)

# 2x2 image: top-left red, top-right green, bottom-left blue, bottom-right white
IMG2 = np.array([[[255, 0, 0], [0, 255, 0]],
                 [[0, 0, 255], [255, 255, 255]]], np.uint8)


def write_glb(path, prims, translation=None, wrap=topdown.CLAMP_TO_EDGE, node_per_prim=False, scale=None):
    """Minimal GLB: prims = [dict(vertices (V,3) y-up, faces (F,3), uvs (V,2) or None, image uint8 or None,
    name)], one material (+ PNG texture in a bufferView) per primitive."""
    blob = bytearray()
    gltf = pygltflib.GLTF2()
    gltf.asset = pygltflib.Asset(version="2.0")

    def add_view(data: bytes, target=None):
        while len(blob) % 4:
            blob.append(0)
        off = len(blob)
        blob.extend(data)
        gltf.bufferViews.append(pygltflib.BufferView(buffer=0, byteOffset=off, byteLength=len(data),
                                                     target=target))
        return len(gltf.bufferViews) - 1

    def add_accessor(arr, ctype, typ, target, minmax=False):
        view = add_view(arr.tobytes(), target)
        kw = {}
        if minmax:
            kw = dict(min=arr.min(0).tolist(), max=arr.max(0).tolist())
        gltf.accessors.append(pygltflib.Accessor(bufferView=view, componentType=ctype, count=len(arr),
                                                 type=typ, **kw))
        return len(gltf.accessors) - 1

    gltf.samplers.append(pygltflib.Sampler(magFilter=9729, minFilter=9729, wrapS=wrap, wrapT=wrap))
    primitives = []
    for p in prims:
        v = np.asarray(p["vertices"], np.float32)
        f = np.asarray(p["faces"], np.uint32).reshape(-1)
        attrs = pygltflib.Attributes(POSITION=add_accessor(v, pygltflib.FLOAT, "VEC3", pygltflib.ARRAY_BUFFER,
                                                           True))
        pbr = pygltflib.PbrMetallicRoughness(metallicFactor=0.0, roughnessFactor=1.0)
        if p.get("uvs") is not None:
            attrs.TEXCOORD_0 = add_accessor(np.asarray(p["uvs"], np.float32), pygltflib.FLOAT, "VEC2",
                                            pygltflib.ARRAY_BUFFER)
        if p.get("image") is not None:
            bio = io.BytesIO()
            Image.fromarray(np.asarray(p["image"], np.uint8)).save(bio, format="PNG")
            gltf.images.append(pygltflib.Image(bufferView=add_view(bio.getvalue()), mimeType="image/png"))
            gltf.textures.append(pygltflib.Texture(sampler=0, source=len(gltf.images) - 1))
            pbr.baseColorTexture = pygltflib.TextureInfo(index=len(gltf.textures) - 1)
        if p.get("base_color") is not None:
            pbr.baseColorFactor = list(p["base_color"])
        gltf.materials.append(pygltflib.Material(name=p.get("name"), pbrMetallicRoughness=pbr))
        idx = add_accessor(f, pygltflib.UNSIGNED_INT, "SCALAR", pygltflib.ELEMENT_ARRAY_BUFFER)
        primitives.append(pygltflib.Primitive(attributes=attrs, indices=idx, material=len(gltf.materials) - 1))
    if node_per_prim:
        for p, prim in zip(prims, primitives):
            gltf.meshes.append(pygltflib.Mesh(name=p.get("name"), primitives=[prim]))
            gltf.nodes.append(pygltflib.Node(mesh=len(gltf.meshes) - 1, translation=translation, scale=scale))
    else:
        gltf.meshes.append(pygltflib.Mesh(name="tile", primitives=primitives))
        gltf.nodes.append(pygltflib.Node(mesh=0, translation=translation, scale=scale))
    gltf.scenes.append(pygltflib.Scene(nodes=list(range(len(gltf.nodes)))))
    gltf.scene = 0
    gltf.buffers.append(pygltflib.Buffer(byteLength=len(blob)))
    gltf.set_binary_blob(bytes(blob))
    gltf.save_binary(str(path))
    return path


def quad(width_m, height_m, y=0.0):
    """Ground quad covering the tile, CCW from above, UV (0,0) at the north-west corner."""
    w, h = width_m / 2, height_m / 2
    v = np.array([[-w, y, -h], [w, y, -h], [-w, y, h], [w, y, h]])  # NW, NE, SW, SE
    uv = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], float)
    f = np.array([[0, 2, 3], [0, 3, 1]])
    return v, f, uv


def box(x0, x1, z0, z1, y0, y1):
    """Closed axis-aligned box, outward CCW faces (6 faces, 24 vertices so each face has its own UVs)."""
    faces_v = [
        [(x0, y1, z0), (x0, y1, z1), (x1, y1, z1), (x1, y1, z0)],  # top (+y)
        [(x0, y0, z0), (x1, y0, z0), (x1, y0, z1), (x0, y0, z1)],  # bottom (-y)
        [(x0, y1, z1), (x0, y0, z1), (x1, y0, z1), (x1, y1, z1)],  # south (+z)
        [(x1, y1, z0), (x1, y0, z0), (x0, y0, z0), (x0, y1, z0)],  # north (-z)
        [(x1, y1, z1), (x1, y0, z1), (x1, y0, z0), (x1, y1, z0)],  # east (+x)
        [(x0, y1, z0), (x0, y0, z0), (x0, y0, z1), (x0, y1, z1)],  # west (-x)
    ]
    v = np.array([p for fv in faces_v for p in fv], float)
    f = np.array([[4 * i, 4 * i + 1, 4 * i + 2] for i in range(6)] + [[4 * i, 4 * i + 2, 4 * i + 3]
                                                                       for i in range(6)])
    return v, f


def _normals(v, f):
    tv = v[f]
    n = np.cross(tv[:, 1] - tv[:, 0], tv[:, 2] - tv[:, 0])
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def test_box_is_outward():
    v, f = box(0, 1, 0, 1, 0, 1)
    n = _normals(v, f)
    centres = v[f].mean(1) - 0.5
    assert np.all(np.einsum("ij,ij->i", n, centres) > 0)


# --------------------------------------------------------------------------------------------------------

def test_quad_orientation_not_mirrored(tmp_path):
    W_m, H_m, gsd = 8.0, 6.0, 0.5  # 16 x 12 px, non-square to catch transposes
    v, f, uv = quad(W_m, H_m)
    path = write_glb(tmp_path / "quad.glb", [dict(vertices=v, faces=f, uvs=uv, image=IMG2, name="ground")])
    view = render_top_view(path, W_m, H_m, gsd)
    assert view.height.shape == (12, 16) and view.colour.shape == (12, 16, 3) and view.kind.shape == (12, 16)
    assert coverage(view) == 1.0
    assert np.all(view.height == 0.0)
    assert np.all(view.kind == 0) and view.names == ["tile"]
    # u <= 0.25 and v <= 0.25 (the outer quarter of each quadrant) sample exactly one texel (clamp-to-edge)
    c = view.colour
    np.testing.assert_allclose(c[:3, :4], np.broadcast_to([1, 0, 0], (3, 4, 3)), atol=1e-6)   # NW: red
    np.testing.assert_allclose(c[:3, -4:], np.broadcast_to([0, 1, 0], (3, 4, 3)), atol=1e-6)  # NE: green
    np.testing.assert_allclose(c[-3:, :4], np.broadcast_to([0, 0, 1], (3, 4, 3)), atol=1e-6)  # SW: blue
    np.testing.assert_allclose(c[-3:, -4:], 1.0, atol=1e-6)                                   # SE: white
    # bilinear in between: the exact tile centre is the mean of the 4 texels
    assert np.all((c >= 0) & (c <= 1))
    mid = c[5:7, 7:9].reshape(-1, 3).mean(0)  # the 4 pixels around the centre weigh each texel 1/4
    np.testing.assert_allclose(mid, IMG2.reshape(-1, 3).mean(0) / 255, atol=1e-6)


def test_image_as_raster_roundtrip_is_exact(tmp_path):
    # A texture with one texel per pixel reproduces the raster exactly: psnr = inf, rmse = 0.
    rng = np.random.default_rng(0)
    H, W, gsd = 24, 40, 0.25
    img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    v, f, uv = quad(W * gsd, H * gsd, y=2.5)
    path = write_glb(tmp_path / "ortho.glb", [dict(vertices=v, faces=f, uvs=uv, image=img)])
    view = render_top_view(path, W * gsd, H * gsd, gsd)
    ref = img.astype(np.float32) / 255
    np.testing.assert_allclose(view.colour, ref, atol=1e-6)
    assert psnr(view.colour, ref, view.mask) == np.inf
    assert psnr(view.colour, ref, None) == np.inf
    assert rmse(view.height, np.full((H, W), 2.5), view.mask) == pytest.approx(0.0, abs=1e-6)
    # a flipped / transposed reading would not match
    assert psnr(view.colour, ref[::-1], view.mask) < 20
    assert psnr(view.colour, ref[:, ::-1], view.mask) < 20


def test_box_on_ground_height_and_kind(tmp_path):
    W_m, H_m, gsd = 8.0, 6.0, 0.5
    gv, gf, guv = quad(W_m, H_m)
    bv, bf = box(-2.0, 1.0, -1.0, 2.0, 0.0, 10.0)
    path = write_glb(tmp_path / "box.glb", [
        dict(vertices=gv, faces=gf, uvs=guv, image=IMG2, name="ground"),
        dict(vertices=bv, faces=bf, uvs=np.zeros((len(bv), 2)), image=np.full((1, 1, 3), 128, np.uint8),
             name="building"),
    ], node_per_prim=True)
    meshes = load_glb_meshes(path)
    assert [m.name for m in meshes] == ["ground", "building"]
    view = render_top_view(path, W_m, H_m, gsd)
    xs = (np.arange(16) + 0.5) * gsd - W_m / 2
    zs = (np.arange(12) + 0.5) * gsd - H_m / 2
    inside = ((xs[None, :] > -2) & (xs[None, :] < 1)) & ((zs[:, None] > -1) & (zs[:, None] < 2))
    assert inside.sum() == 6 * 6
    np.testing.assert_array_equal(view.height, np.where(inside, 10.0, 0.0).astype(np.float32))
    np.testing.assert_array_equal(view.kind, np.where(inside, 1, 0))
    np.testing.assert_allclose(view.colour[inside], 128 / 255, atol=1e-6)
    assert coverage(view) == 1.0
    # rmse against a height raster
    ndsm = np.where(inside, 10.0, 0.0)
    assert rmse(view.height, ndsm) == 0.0
    assert rmse(view.height, ndsm + 1.0) == pytest.approx(1.0)


def test_partial_coverage_translation_and_nothing(tmp_path):
    # A 2 m x 2 m quad translated by the node to the north-east corner of an 8 x 6 m tile.
    v, f, uv = quad(2.0, 2.0, y=0.0)
    path = write_glb(tmp_path / "small.glb", [dict(vertices=v, faces=f, uvs=uv, image=IMG2)],
                     translation=[3.0, 1.5, -2.0])
    (m,) = load_glb_meshes(path)
    np.testing.assert_allclose(m.vertices[:, 1], 1.5)
    view = render_top_view(path, 8.0, 6.0, 0.5)
    assert coverage(view) == pytest.approx(16 / (16 * 12))
    assert np.all(np.isfinite(view.height[:4, -4:])) and np.all(view.height[:4, -4:] == 1.5)
    assert np.all(view.kind[:4, -4:] == 0)
    rest = np.ones((12, 16), bool)
    rest[:4, -4:] = False
    assert np.all(np.isnan(view.height[rest])) and np.all(np.isnan(view.colour[rest]))
    assert np.all(view.kind[rest] == -1)
    np.testing.assert_allclose(view.colour[0, -4], [1, 0, 0], atol=1e-6)  # its NW corner is red
    # metrics ignore pixels with nothing
    assert psnr(view.colour, view.colour) == np.inf


def test_tilted_plane_heights_are_interpolated_exactly(tmp_path):
    # A triangulated grid whose vertices lie off the pixel centres, on the plane y = 0.3x - 0.2z + 1.
    n = 7
    g = np.linspace(-4.0, 4.0, n)
    X, Z = np.meshgrid(g, np.linspace(-3.0, 3.0, n))
    Y = 0.3 * X - 0.2 * Z + 1
    v = np.stack([X.ravel(), Y.ravel(), Z.ravel()], 1)
    i = np.arange(n * n).reshape(n, n)
    a, b, c, d = i[:-1, :-1].ravel(), i[:-1, 1:].ravel(), i[1:, :-1].ravel(), i[1:, 1:].ravel()
    f = np.concatenate([np.stack([a, c, d], 1), np.stack([a, d, b], 1)])
    assert np.all(_normals(v, f)[:, 1] > 0)
    path = write_glb(tmp_path / "plane.glb", [dict(vertices=v, faces=f, uvs=None, image=None)])
    view = render_top_view(path, 8.0, 6.0, 0.25)
    xs = (np.arange(32) + 0.5) * 0.25 - 4
    zs = (np.arange(24) + 0.5) * 0.25 - 3
    expect = 0.3 * xs[None, :] - 0.2 * zs[:, None] + 1
    assert coverage(view) == 1.0
    np.testing.assert_allclose(view.height, expect, atol=1e-5)
    np.testing.assert_allclose(view.colour, 1.0)  # untextured default material is white


def test_grid_vertices_on_pixel_centres_leave_no_cracks(tmp_path):
    # Vertices at float32 pixel centres, tile offset from zero: edges pass exactly through pixel centres.
    H, W, gsd = 20, 30, 0.3
    xs = (np.arange(W) + 0.5) * gsd - W * gsd / 2
    zs = (np.arange(H) + 0.5) * gsd - H * gsd / 2
    X, Z = np.meshgrid(xs, zs)
    v = np.stack([X.ravel(), np.zeros(X.size), Z.ravel()], 1)
    i = np.arange(H * W).reshape(H, W)
    a, b, c, d = i[:-1, :-1].ravel(), i[:-1, 1:].ravel(), i[1:, :-1].ravel(), i[1:, 1:].ravel()
    f = np.concatenate([np.stack([a, c, d], 1), np.stack([a, d, b], 1)])
    path = write_glb(tmp_path / "grid.glb", [dict(vertices=v, faces=f)])
    view = render_top_view(path, W * gsd, H * gsd, gsd)
    assert coverage(view) == 1.0


def test_highest_surface_wins_regardless_of_order(tmp_path):
    W_m, gsd = 4.0, 0.5
    low_v, low_f, uv = quad(W_m, W_m, y=1.0)
    high_v, high_f, _ = quad(W_m, W_m, y=3.0)
    red = np.full((1, 1, 3), [255, 0, 0], np.uint8)
    blue = np.full((1, 1, 3), [0, 0, 255], np.uint8)
    for order in ([0, 1], [1, 0]):
        prims = [dict(vertices=low_v, faces=low_f, uvs=uv, image=red, name="low"),
                 dict(vertices=high_v, faces=high_f, uvs=uv, image=blue, name="high")]
        prims = [prims[k] for k in order]
        path = write_glb(tmp_path / f"stack{order[0]}.glb", prims, node_per_prim=True)
        view = render_top_view(path, W_m, W_m, gsd)
        assert np.all(view.height == 3.0)
        np.testing.assert_allclose(view.colour, np.broadcast_to([0, 0, 1], view.colour.shape), atol=1e-6)
        assert {view.names[k] for k in np.unique(view.kind)} == {"high"}


def test_metrics():
    a = np.zeros((4, 5, 3), np.float32)
    b = a + 0.1
    assert psnr(a, a) == np.inf
    assert psnr(a, b) == pytest.approx(20.0)
    assert rmse(a, b) == pytest.approx(0.1)
    mask = np.zeros((4, 5), bool)
    mask[0, 0] = True
    c = a.copy()
    c[1:] = 1.0
    assert psnr(a, c, mask) == np.inf
    assert np.isnan(psnr(a, b, np.zeros((4, 5), bool)))
    d = b.copy()
    d[0, 0] = np.nan  # NaN pixels are left out
    assert rmse(a, d) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        psnr(a, b[:3])
    view = topdown.TopView(np.zeros((2, 2), np.float32), np.zeros((2, 2, 3), np.float32),
                           np.array([[0, -1], [0, 0]]))
    assert coverage(view) == 0.75


def test_sample_bilinear_convention():
    img = IMG2.astype(np.float32) / 255
    # texel centres
    uv = np.array([[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75], [0.5, 0.5]])
    out = sample_bilinear(img, uv, (topdown.CLAMP_TO_EDGE,) * 2)
    np.testing.assert_allclose(out[:4], img.reshape(-1, 3), atol=1e-6)
    np.testing.assert_allclose(out[4], img.reshape(-1, 3).mean(0), atol=1e-6)
    # repeat wraps: u = 0 is halfway between the last and first column
    out = sample_bilinear(img, np.array([[0.0, 0.25]]), (topdown.REPEAT,) * 2)
    np.testing.assert_allclose(out[0], (img[0, 0] + img[0, 1]) / 2, atol=1e-6)


def test_texel_density_box(tmp_path):
    # 2 x 2 x 2 m box, 64 x 64 image. Top UV square 0.25 x 0.25 -> 256 texels / 4 m² = 64 /m².
    # Each wall UV rect 0.25 x 0.125 -> 128 texels / 4 m² = 32 /m². Bottom collapsed to a point -> 0.
    v, f = box(-1, 1, -1, 1, 0, 2)
    uv = np.zeros((24, 2))
    uv[0:4] = [[0, 0], [0, 0.25], [0.25, 0.25], [0.25, 0]]
    uv[4:8] = 0.9
    for k in range(4):
        u0 = 0.25 * k
        uv[8 + 4 * k: 12 + 4 * k] = [[u0, 0.5], [u0, 0.625], [u0 + 0.25, 0.625], [u0 + 0.25, 0.5]]
    img = np.zeros((64, 64, 3), np.uint8)
    path = write_glb(tmp_path / "box.glb", [dict(vertices=v, faces=f, uvs=uv, image=img, name="roof")])
    d = texel_density(path)
    assert d["top"] == pytest.approx(64.0)
    assert d["wall"] == pytest.approx(32.0)
    assert d["bottom"] == 0.0
    assert d["all"] == pytest.approx((256 + 4 * 128) / 24.0)
    assert d["tile/top"] == pytest.approx(64.0)
    # non-square image: W x H texels
    img2 = np.zeros((32, 128, 3), np.uint8)
    path2 = write_glb(tmp_path / "box2.glb", [dict(vertices=v, faces=f, uvs=uv, image=img2)])
    assert texel_density(path2)["top"] == pytest.approx(64.0)
    # a flat tile has no walls
    qv, qf, quv = quad(4, 4)
    d = texel_density(write_glb(tmp_path / "flat.glb", [dict(vertices=qv, faces=qf, uvs=quv, image=img)]))
    assert d["top"] == pytest.approx(64 * 64 / 16) and np.isnan(d["wall"])


def test_loader_matches_trimesh(tmp_path):
    import trimesh

    v, f = box(-1, 2, -3, 1, 0.5, 4)
    path = write_glb(tmp_path / "b.glb", [dict(vertices=v, faces=f)], translation=[10.0, -2.0, 5.0])
    (m,) = load_glb_meshes(path)
    tm = trimesh.load(str(path), force="mesh", process=False)
    np.testing.assert_allclose(m.vertices, tm.vertices, atol=1e-5)
    np.testing.assert_array_equal(m.faces, tm.faces)


def _random_terrain(n_side, size_m):
    """Heightfield grid over a square tile: 2 * (n_side - 1)^2 triangles with a random texture."""
    rng = np.random.default_rng(1)
    g = np.linspace(-size_m / 2, size_m / 2, n_side)
    X, Z = np.meshgrid(g, g)
    Y = 5 * np.sin(X / 7) * np.cos(Z / 5) + rng.random(X.shape)
    v = np.stack([X.ravel(), Y.ravel(), Z.ravel()], 1)
    uv = np.stack([(X.ravel() + size_m / 2) / size_m, (Z.ravel() + size_m / 2) / size_m], 1)
    i = np.arange(n_side * n_side).reshape(n_side, n_side)
    a, b, c, d = i[:-1, :-1].ravel(), i[:-1, 1:].ravel(), i[1:, :-1].ravel(), i[1:, 1:].ravel()
    f = np.concatenate([np.stack([a, c, d], 1), np.stack([a, d, b], 1)])
    img = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    return v, f, uv, img


def test_speed_40k_triangles_256px(tmp_path):
    v, f, uv, img = _random_terrain(143, 64.0)  # 40,328 triangles
    assert len(f) >= 40_000
    path = write_glb(tmp_path / "t.glb", [dict(vertices=v, faces=f, uvs=uv, image=img)])
    t = time.perf_counter()
    view = render_top_view(path, 64.0, 64.0, 0.25)
    dt = time.perf_counter() - t
    assert coverage(view) == 1.0
    assert dt < 2.0, f"{dt:.2f} s"


def test_mirrored_node_keeps_faces_outward(tmp_path):
    # scale x by -1: the loader flips the winding back, so tops stay tops for texel_density
    v, f = box(-1, 1, -1, 1, 0, 2)
    uv = np.zeros((24, 2))
    uv[0:4] = [[0, 0], [0, 0.25], [0.25, 0.25], [0.25, 0]]
    img = np.zeros((64, 64, 3), np.uint8)
    path = write_glb(tmp_path / "m.glb", [dict(vertices=v, faces=f, uvs=uv, image=img)], scale=[-1.0, 1.0, 1.0])
    (m,) = load_glb_meshes(path)
    n = _normals(m.vertices, m.faces)
    assert np.all(np.einsum("ij,ij->i", n, m.vertices[m.faces].mean(1) - [0, 1, 0]) > 0)
    assert texel_density(path)["top"] == pytest.approx(64.0)


def test_bad_grid_is_refused(tmp_path):
    v, f, _ = quad(1, 1)
    with pytest.raises(ValueError, match="whole number"):
        render_top_view([("q", v, f, None, None)], 100.0, 100.0, 0.3)


def _reference_heights(tris, W, H, gsd, tol_px=1e-3):
    """Brute force: every triangle against every pixel centre (the definition, for small cases)."""
    xs = (np.arange(W) + 0.5) * gsd - W * gsd / 2
    zs = (np.arange(H) + 0.5) * gsd - H * gsd / 2
    X, Z = np.meshgrid(xs, zs)
    best = np.full((H, W), -np.inf)
    for t in tris:
        (xa, ya, za), (xb, yb, zb), (xc, yc, zc) = t
        area2 = (xb - xa) * (zc - za) - (xc - xa) * (zb - za)
        if abs(area2) / gsd**2 <= 1e-9:
            continue
        ls = []
        for (x1, z1), (x2, z2) in (((xb, zb), (xc, zc)), ((xc, zc), (xa, za)), ((xa, za), (xb, zb))):
            lam = ((x2 - x1) * (Z - z1) - (z2 - z1) * (X - x1)) / area2  # barycentric of the opposite vertex
            grad_px = np.hypot(x2 - x1, z2 - z1) / abs(area2) * gsd
            ls.append((lam, min(tol_px * grad_px, 0.05)))
        inside = np.all([lam >= -tol for lam, tol in ls], axis=0)
        d = ls[0][0] * ya + ls[1][0] * yb + ls[2][0] * yc
        d = np.clip(d, min(ya, yb, yc), max(ya, yb, yc))
        best = np.where(inside & (d > best), d, best)
    return np.where(np.isfinite(best), best, np.nan)


@pytest.mark.parametrize("batch", [1 << 21, 7])
def test_matches_brute_force_on_random_triangles(batch):
    rng = np.random.default_rng(42)
    W, H, gsd = 37, 23, 0.5
    tris = rng.uniform([-11, -5, -7], [11, 15, 7], (60, 3, 3))
    tris[:10, :, 0] *= 0.2  # some small ones
    tris[50:, 1, [0, 2]] = tris[50:, 0, [0, 2]]  # and vertical ones (walls): no projected area
    v = tris.reshape(-1, 3)
    f = np.arange(len(v)).reshape(-1, 3)
    view = render_top_view([("r", v, f, None, None)], W * gsd, H * gsd, gsd, batch_candidates=batch)
    ref = _reference_heights(tris, W, H, gsd)
    np.testing.assert_array_equal(np.isnan(view.height), np.isnan(ref))
    np.testing.assert_allclose(view.height, ref, atol=1e-4, equal_nan=True)
    assert 0.3 < coverage(view) < 1.0
