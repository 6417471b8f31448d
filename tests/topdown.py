"""Top-down measuring instrument for SatForge GLBs.

What a user checks when looking at a tile straight from above: for every pixel of the input raster grid,
the highest surface of the GLB (its height and its texture colour) and which mesh it belongs to.

Frames (see docs/conventions.md): glTF +Y up, +X east, -Z north, tile centred at the origin.
The view uses exactly the input-raster pixel grid: row 0 = north edge (z = -height_m/2), column 0 = west
edge (x = -width_m/2), pixel (r, c) samples the point x = (c + 0.5) * gsd - width_m / 2,
z = (r + 0.5) * gsd - height_m / 2.

Pure numpy (+ pygltflib to parse, Pillow to decode textures); no renderer, no GPU.

    meshes = load_glb_meshes("tile.glb")          # [(name, vertices_yup, faces, uvs, image), ...]
    view = render_top_view("tile.glb", width_m, height_m, gsd)
    view.height, view.colour, view.kind           # (H, W) / (H, W, 3) / (H, W); NaN / -1 where nothing
    psnr(view.colour, ortho, mask), rmse(view.height, ndsm, mask), coverage(view), texel_density("tile.glb")
"""
from __future__ import annotations

import base64
import io
import math
import os
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "GlbMesh",
    "TopView",
    "coverage",
    "load_glb_meshes",
    "psnr",
    "render_top_view",
    "rmse",
    "sample_bilinear",
    "texel_density",
]

# glTF sampler wrap modes
REPEAT, CLAMP_TO_EDGE, MIRRORED_REPEAT = 10497, 33071, 33648

_COMPONENT_DTYPE = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16,
                    5125: np.uint32, 5126: np.float32}
_TYPE_NCOMP = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}


# ----------------------------------------------------------------------------------------------------------
# Data types
# ----------------------------------------------------------------------------------------------------------

@dataclass
class TopView:
    """Orthographic view from above on the input-raster pixel grid (row 0 north, column 0 west)."""

    height: np.ndarray   # (H, W) float32 metres (glTF y of the highest surface), NaN where nothing
    colour: np.ndarray   # (H, W, 3) float32 sRGB in [0, 1], NaN where nothing
    kind: np.ndarray     # (H, W) int32 index into `names` (the load_glb_meshes list), -1 where nothing
    names: list = field(default_factory=list)  # name of each mesh entry, so names[kind] is readable
    face: np.ndarray | None = None  # (H, W) int64 face index within its mesh, -1 where nothing
    gsd: float = 0.0

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: pixels where some surface is seen."""
        return self.kind >= 0


class GlbMesh(tuple):
    """One (node, primitive) of a GLB: a 5-tuple (name, vertices_yup, faces, uvs, image) that also carries

    the material details needed to reproduce what a viewer shows: `base_color` (RGBA linear factor),
    `wrap` (sampler wrapS, wrapT), `material` (name), `node` (index), `mesh` (index), `primitive` (index).
    """

    def __new__(cls, name, vertices, faces, uvs, image, *, base_color=(1.0, 1.0, 1.0, 1.0),
                wrap=(REPEAT, REPEAT), material=None, node=None, mesh=None, primitive=None):
        self = super().__new__(cls, (name, vertices, faces, uvs, image))
        self.base_color = tuple(float(c) for c in base_color)
        self.wrap = tuple(int(w) for w in wrap)
        self.material = material
        self.node = node
        self.mesh = mesh
        self.primitive = primitive
        return self

    name = property(lambda self: self[0])
    vertices = property(lambda self: self[1])
    faces = property(lambda self: self[2])
    uvs = property(lambda self: self[3])
    image = property(lambda self: self[4])


# ----------------------------------------------------------------------------------------------------------
# GLB / glTF loading
# ----------------------------------------------------------------------------------------------------------

def _load_gltf(path):
    import pygltflib

    path = os.fspath(path)
    gltf = pygltflib.GLTF2().load(path)
    if gltf is None:
        raise ValueError(f"{path}: not a readable glTF/GLB file")
    base_dir = os.path.dirname(os.path.abspath(path))
    blob = gltf.binary_blob()
    buffers = []
    for i, buf in enumerate(gltf.buffers):
        uri = buf.uri
        if uri is None or uri == "":
            if blob is None:
                raise ValueError(f"{path}: buffer {i} has no uri and the file has no binary chunk")
            buffers.append(bytes(blob))
        elif uri.startswith("data:"):
            buffers.append(base64.b64decode(uri.split(",", 1)[1]))
        else:
            from urllib.parse import unquote
            with open(os.path.join(base_dir, unquote(uri)), "rb") as fh:
                buffers.append(fh.read())
    return gltf, buffers, base_dir


def _buffer_view_bytes(gltf, buffers, view_index) -> memoryview:
    bv = gltf.bufferViews[view_index]
    start = bv.byteOffset or 0
    return memoryview(buffers[bv.buffer])[start:start + bv.byteLength]


def _read_raw(gltf, buffers, view_index, byte_offset, component_type, ncomp, count):
    dtype = np.dtype(_COMPONENT_DTYPE[component_type]).newbyteorder("<")
    elem = dtype.itemsize * ncomp
    bv = gltf.bufferViews[view_index]
    data = _buffer_view_bytes(gltf, buffers, view_index)
    stride = bv.byteStride or elem
    if count == 0:
        return np.zeros((0, ncomp), dtype)
    need = byte_offset + stride * (count - 1) + elem
    if need > len(data):
        raise ValueError(f"accessor reads past the end of bufferView {view_index}")
    if stride == elem:
        arr = np.frombuffer(data, dtype=dtype, count=count * ncomp, offset=byte_offset).reshape(count, ncomp)
    else:
        arr = np.ndarray(shape=(count, ncomp), dtype=dtype, buffer=data, offset=byte_offset,
                         strides=(stride, dtype.itemsize))
    return np.array(arr)  # own, aligned copy


def _read_accessor(gltf, buffers, index, as_float=True) -> np.ndarray:
    """(count, ncomp) array of accessor `index` (float64 when as_float, dequantising normalized ints)."""
    acc = gltf.accessors[index]
    ncomp = _TYPE_NCOMP[acc.type]
    dtype = _COMPONENT_DTYPE[acc.componentType]
    if acc.bufferView is None:
        arr = np.zeros((acc.count, ncomp), dtype)
    else:
        arr = _read_raw(gltf, buffers, acc.bufferView, acc.byteOffset or 0, acc.componentType, ncomp, acc.count)
    if acc.sparse is not None and acc.sparse.count:
        sp = acc.sparse
        idx = _read_raw(gltf, buffers, sp.indices.bufferView, sp.indices.byteOffset or 0,
                        sp.indices.componentType, 1, sp.count)[:, 0].astype(np.int64)
        vals = _read_raw(gltf, buffers, sp.values.bufferView, sp.values.byteOffset or 0,
                         acc.componentType, ncomp, sp.count)
        arr = arr.copy()
        arr[idx] = vals
    if not as_float:
        return arr
    out = arr.astype(np.float64)
    if acc.normalized and np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        out = out / info.max
        if info.min < 0:
            out = np.maximum(out, -1.0)
    return out


def _decode_image(data: bytes) -> np.ndarray:
    """PNG/JPEG bytes -> (h, w, 3) float32 sRGB in [0, 1] (alpha dropped)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im.load()
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            a = np.asarray(im, dtype=np.float64)
            a = a / (65535.0 if a.max(initial=0) > 255 or im.mode.startswith("I;16") else 255.0)
            a = np.repeat(a[:, :, None], 3, axis=2)
        elif im.mode == "F":
            a = np.repeat(np.asarray(im, dtype=np.float64)[:, :, None], 3, axis=2)
        else:
            a = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
    return np.clip(a, 0.0, 1.0).astype(np.float32)


def _image_of_texture(gltf, buffers, base_dir, texture_index, cache):
    if texture_index in cache:
        return cache[texture_index]
    tex = gltf.textures[texture_index]
    wrap = (REPEAT, REPEAT)
    if tex.sampler is not None:
        s = gltf.samplers[tex.sampler]
        wrap = (s.wrapS or REPEAT, s.wrapT or REPEAT)
    image = None
    if tex.source is not None:
        img = gltf.images[tex.source]
        if img.bufferView is not None:
            data = bytes(_buffer_view_bytes(gltf, buffers, img.bufferView))
        elif img.uri and img.uri.startswith("data:"):
            data = base64.b64decode(img.uri.split(",", 1)[1])
        elif img.uri:
            from urllib.parse import unquote
            with open(os.path.join(base_dir, unquote(img.uri)), "rb") as fh:
                data = fh.read()
        else:
            data = None
        if data is not None:
            image = _decode_image(data)
    cache[texture_index] = (image, wrap)
    return cache[texture_index]


def _quat_to_matrix(q):
    x, y, z, w = q
    n = math.sqrt(x * x + y * y + z * z + w * w) or 1.0
    x, y, z, w = x / n, y / n, z / n, w / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def _node_matrix(node) -> np.ndarray:
    if node.matrix is not None and len(node.matrix) == 16:
        return np.asarray(node.matrix, dtype=np.float64).reshape(4, 4).T  # column-major
    m = np.eye(4)
    s = np.asarray(node.scale if node.scale is not None else (1, 1, 1), dtype=np.float64)
    r = _quat_to_matrix(node.rotation if node.rotation is not None else (0, 0, 0, 1))
    m[:3, :3] = r * s[None, :]
    if node.translation is not None:
        m[:3, 3] = node.translation
    return m


def _triangles(indices: np.ndarray, mode: int) -> np.ndarray | None:
    if mode == 4:
        n = len(indices) // 3 * 3
        return indices[:n].reshape(-1, 3)
    if mode == 5:  # strip
        if len(indices) < 3:
            return np.zeros((0, 3), np.int64)
        i = np.arange(len(indices) - 2)
        even = (i % 2) == 0
        a = indices[i]
        b = np.where(even, indices[i + 1], indices[i + 2])
        c = np.where(even, indices[i + 2], indices[i + 1])
        return np.stack([a, b, c], axis=1)
    if mode == 6:  # fan
        if len(indices) < 3:
            return np.zeros((0, 3), np.int64)
        i = np.arange(1, len(indices) - 1)
        return np.stack([np.full_like(i, indices[0]), indices[i], indices[i + 1]], axis=1)
    return None  # points / lines: nothing seen from above


def load_glb_meshes(path) -> list[GlbMesh]:
    """Every triangle primitive of the default scene, in world (tile) coordinates.

    Returns one GlbMesh per (node instance, primitive), in scene traversal order, each a 5-tuple
    (name, vertices_yup (V, 3) float64, faces (F, 3) int64, uvs (V, 2) float64 glTF convention or None,
    image (h, w, 3) float32 sRGB [0, 1] or None). Node transforms (translation/rotation/scale/matrix,
    through the hierarchy) are applied; a mirroring transform flips the winding back to counter-clockwise.
    The image is the material's baseColorTexture and uvs are the TEXCOORD_n it names. Name: the mesh's name
    (else the node's, else "mesh{i}"), suffixed "/{material name or prim j}" when the mesh has several
    primitives.
    """
    gltf, buffers, base_dir = _load_gltf(path)
    unsupported = {"KHR_draco_mesh_compression", "EXT_meshopt_compression", "KHR_meshopt_compression"}
    used = unsupported & set((gltf.extensionsUsed or []) + (gltf.extensionsRequired or []))
    if used:
        raise NotImplementedError(f"{os.fspath(path)}: compressed geometry ({', '.join(sorted(used))}) is not "
                                  "supported by this instrument; measure the uncompressed export")
    out: list[GlbMesh] = []
    tex_cache: dict = {}
    acc_cache: dict = {}

    def acc(i, as_float=True):
        key = (i, as_float)
        if key not in acc_cache:
            acc_cache[key] = _read_accessor(gltf, buffers, i, as_float)
        return acc_cache[key]

    if gltf.scenes:
        roots = list(gltf.scenes[gltf.scene if gltf.scene is not None else 0].nodes or [])
    else:
        children = {c for n in gltf.nodes for c in (n.children or [])}
        roots = [i for i in range(len(gltf.nodes)) if i not in children]

    stack = [(r, np.eye(4)) for r in reversed(roots)]
    while stack:
        ni, parent = stack.pop()
        node = gltf.nodes[ni]
        world = parent @ _node_matrix(node)
        for c in reversed(node.children or []):
            stack.append((c, world))
        if node.mesh is None:
            continue
        mesh = gltf.meshes[node.mesh]
        prims = mesh.primitives or []
        base_name = mesh.name or node.name or f"mesh{node.mesh}"
        for pj, prim in enumerate(prims):
            attrs = prim.attributes
            if attrs.POSITION is None:
                continue
            pos = acc(attrs.POSITION)[:, :3]
            if prim.indices is not None:
                idx = acc(prim.indices, as_float=False)[:, 0].astype(np.int64)
            else:
                idx = np.arange(len(pos), dtype=np.int64)
            faces = _triangles(idx, prim.mode if prim.mode is not None else 4)
            if faces is None:
                continue
            verts = pos @ world[:3, :3].T + world[:3, 3]
            if np.linalg.det(world[:3, :3]) < 0:
                faces = faces[:, [0, 2, 1]]
            material_name = None
            image, uvs, wrap = None, None, (REPEAT, REPEAT)
            base_color = (1.0, 1.0, 1.0, 1.0)
            if prim.material is not None:
                mat = gltf.materials[prim.material]
                material_name = mat.name
                pbr = mat.pbrMetallicRoughness
                if pbr is not None:
                    if pbr.baseColorFactor is not None:
                        base_color = tuple(pbr.baseColorFactor)
                    bct = pbr.baseColorTexture
                    if bct is not None and bct.index is not None:
                        image, wrap = _image_of_texture(gltf, buffers, base_dir, bct.index, tex_cache)
                        tc = getattr(attrs, f"TEXCOORD_{bct.texCoord or 0}", None)
                        if tc is not None:
                            uvs = acc(tc)[:, :2].copy()
                        else:
                            image = None
            name = base_name
            if len(prims) > 1:
                name = f"{base_name}/{material_name or f'prim{pj}'}"
            out.append(GlbMesh(name, verts, faces, uvs, image, base_color=base_color, wrap=wrap,
                               material=material_name, node=ni, mesh=node.mesh, primitive=pj))
    return out


# ----------------------------------------------------------------------------------------------------------
# Texture sampling
# ----------------------------------------------------------------------------------------------------------

def _wrap_index(i: np.ndarray, n: int, mode: int) -> np.ndarray:
    if mode == CLAMP_TO_EDGE:
        return np.clip(i, 0, n - 1)
    if mode == MIRRORED_REPEAT:
        m = np.mod(i, 2 * n)
        return np.where(m >= n, 2 * n - 1 - m, m)
    return np.mod(i, n)


def sample_bilinear(image: np.ndarray, uv: np.ndarray, wrap=(REPEAT, REPEAT)) -> np.ndarray:
    """Bilinear sample of image (h, w[, C]) at glTF uvs (N, 2): (0, 0) is the top-left corner of the image,

    texel (i, j) centre is at ((j + 0.5) / w, (i + 0.5) / h); wrap = (wrapS, wrapT) glTF sampler modes.
    Positions within 1e-3 texel of a texel centre take that texel exactly. Returns (N, C) float32.
    """
    uv = np.asarray(uv, dtype=np.float64)
    return _sample_bilinear(image, uv[:, 0], uv[:, 1], wrap)


def _sample_bilinear(image, u, v, wrap):
    image = np.asarray(image)
    h, w = image.shape[:2]
    img = image.reshape(h, w, -1)
    x = u * w - 0.5
    y = v * h - 0.5
    # snap to texel centres within 1e-3 texel (float32 UV rounding), so a texel-per-pixel texture is exact
    rx, ry = np.rint(x), np.rint(y)
    x = np.where(np.abs(x - rx) < 1e-3, rx, x)
    y = np.where(np.abs(y - ry) < 1e-3, ry, y)
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = (x - x0).astype(np.float32)
    fy = (y - y0).astype(np.float32)
    x0 = x0.astype(np.int64)
    y0 = y0.astype(np.int64)
    xa, xb = _wrap_index(x0, w, wrap[0]), _wrap_index(x0 + 1, w, wrap[0])
    ya, yb = _wrap_index(y0, h, wrap[1]) * w, _wrap_index(y0 + 1, h, wrap[1]) * w
    i00, i01, i10, i11 = ya + xa, ya + xb, yb + xa, yb + xb
    gx = 1.0 - fx
    gy = 1.0 - fy
    w00, w01, w10, w11 = gx * gy, fx * gy, gx * fy, fx * fy
    out = np.empty((img.shape[2], len(u)), np.float32)
    for ch in range(img.shape[2]):
        plane = np.ascontiguousarray(img[:, :, ch], dtype=np.float32).reshape(-1)
        o = out[ch]
        np.multiply(plane.take(i00), w00, out=o)
        o += plane.take(i01) * w01
        o += plane.take(i10) * w10
        o += plane.take(i11) * w11
    return out.T


def _srgb_to_linear(c):
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(c):
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


# ----------------------------------------------------------------------------------------------------------
# Rasteriser
# ----------------------------------------------------------------------------------------------------------

def _grid_size(extent_m: float, gsd: float, what: str) -> int:
    n = extent_m / gsd
    r = int(round(n))
    if r <= 0 or abs(n - r) > 1e-6 * max(1.0, n):
        raise ValueError(f"{what}={extent_m} is not a whole number of pixels of gsd={gsd} ({n:.6f})")
    return r


def render_top_view(path_or_meshes, width_m: float, height_m: float, gsd: float, *,
                    edge_tolerance_px: float = 1e-3, batch_candidates: int = 1 << 21) -> TopView:
    """Orthographic view from +Y of a GLB (path) or of load_glb_meshes-style tuples, on the raster grid.

    For each pixel centre, the highest (max glTF y) of all triangles covering it wins: height = that y,
    colour = its texture bilinearly sampled at the interpolated UV (times the material's baseColorFactor;
    an untextured material shows its baseColorFactor), kind = index of its mesh entry. Vertical triangles
    (no projected area) are skipped. A pixel centre within `edge_tolerance_px` pixels of a triangle (float32
    rounding of vertices placed on pixel centres) counts as covered. Equal heights: the later triangle in
    mesh order wins. Works in float64; memory is bounded by `batch_candidates` (candidate pixel tests per
    batch, ~100 bytes each).
    """
    if isinstance(path_or_meshes, (str, os.PathLike)):
        meshes = load_glb_meshes(path_or_meshes)
    else:
        meshes = list(path_or_meshes)
    W = _grid_size(width_m, gsd, "width_m")
    H = _grid_size(height_m, gsd, "height_m")

    names = [m[0] for m in meshes]
    # --- gather all triangles, in pixel coordinates: pixel (r, c) centre is at (px, py) = (c, r) ---------
    pts, tri_mesh, tri_local, tri_uv = [], [], [], []
    for mi, m in enumerate(meshes):
        v = np.asarray(m[1], dtype=np.float64)
        f = np.asarray(m[2], dtype=np.int64).reshape(-1, 3)
        if len(f) == 0:
            continue
        tv = v[f]  # (F, 3, 3)
        p = np.empty_like(tv)
        p[..., 0] = (tv[..., 0] + width_m / 2) / gsd - 0.5
        p[..., 1] = (tv[..., 2] + height_m / 2) / gsd - 0.5
        p[..., 2] = tv[..., 1]
        pts.append(p)
        tri_mesh.append(np.full(len(f), mi, np.int32))
        tri_local.append(np.arange(len(f), dtype=np.int64))
        if m[3] is not None and m[4] is not None:
            tri_uv.append(np.asarray(m[3], dtype=np.float64)[f])
        else:
            tri_uv.append(np.full((len(f), 3, 2), np.nan))
    height = np.full((H, W), np.nan, np.float32)
    colour = np.full((H, W, 3), np.nan, np.float32)
    kind = np.full((H, W), -1, np.int32)
    face_img = np.full((H, W), -1, np.int64)
    if not pts:
        return TopView(height, colour, kind, names, face_img, float(gsd))
    P = np.concatenate(pts)
    tri_mesh = np.concatenate(tri_mesh)
    tri_local = np.concatenate(tri_local)
    tri_uv = np.concatenate(tri_uv)

    x0, y0 = P[:, 0, 0], P[:, 0, 1]
    e1x, e1y = P[:, 1, 0] - x0, P[:, 1, 1] - y0
    e2x, e2y = P[:, 2, 0] - x0, P[:, 2, 1] - y0
    area2 = e1x * e2y - e2x * e1y  # twice the signed projected area, px^2
    cmin = np.ceil(P[:, :, 0].min(1) - edge_tolerance_px)
    cmax = np.floor(P[:, :, 0].max(1) + edge_tolerance_px)
    rmin = np.ceil(P[:, :, 1].min(1) - edge_tolerance_px)
    rmax = np.floor(P[:, :, 1].max(1) + edge_tolerance_px)
    cmin = np.clip(cmin, 0, W).astype(np.int64)
    rmin = np.clip(rmin, 0, H).astype(np.int64)
    cmax = np.clip(cmax, -1, W - 1).astype(np.int64)
    rmax = np.clip(rmax, -1, H - 1).astype(np.int64)
    bw = np.maximum(cmax - cmin + 1, 0)
    bh = np.maximum(rmax - rmin + 1, 0)
    keep = (np.abs(area2) > 1e-9) & (bw > 0) & (bh > 0) & np.isfinite(area2)
    ids = np.nonzero(keep)[0]
    if len(ids) == 0:
        return TopView(height, colour, kind, names, face_img, float(gsd))

    # Per kept triangle: barycentrics l1 = a1*px + b1*py + c1, l2 likewise, l0 = 1 - l1 - l2,
    # and a per-edge tolerance (tol_px over the triangle's altitude, capped) so shared/border edges through
    # pixel centres never leave cracks.
    inv = 1.0 / area2[ids]
    X0, Y0 = x0[ids], y0[ids]
    a1, b1 = e2y[ids] * inv, -e2x[ids] * inv
    a2, b2 = -e1y[ids] * inv, e1x[ids] * inv
    c1 = -(a1 * X0 + b1 * Y0)
    c2 = -(a2 * X0 + b2 * Y0)
    a0, b0 = -(a1 + a2), -(b1 + b2)
    cap = 0.05  # barycentric units: a sliver gets at most 5% of its own altitude
    tol0 = np.minimum(edge_tolerance_px * np.hypot(a0, b0), cap)
    tol1 = np.minimum(edge_tolerance_px * np.hypot(a1, b1), cap)
    tol2 = np.minimum(edge_tolerance_px * np.hypot(a2, b2), cap)
    # depth plane y = dz_a*px + dz_b*py + dz_c
    Z = P[ids, :, 2]
    da = Z[:, 1] - Z[:, 0]
    db = Z[:, 2] - Z[:, 0]
    za, zb = a1 * da + a2 * db, b1 * da + b2 * db
    zc = Z[:, 0] + c1 * da + c2 * db
    zlo, zhi = Z.min(1), Z.max(1)
    # texture coordinate planes u = ua*px + ub*py + uc (likewise v), NaN for untextured meshes
    UVk = tri_uv[ids]
    duv1 = UVk[:, 1] - UVk[:, 0]
    duv2 = UVk[:, 2] - UVk[:, 0]
    uv_planes = []  # (ua, ub, uc), (va, vb, vc)
    for k in range(2):
        uv_planes.append((a1 * duv1[:, k] + a2 * duv2[:, k], b1 * duv1[:, k] + b2 * duv2[:, k],
                          UVk[:, 0, k] + c1 * duv1[:, k] + c2 * duv2[:, k]))
    del UVk, duv1, duv2, tri_uv
    c0 = 1.0 - c1 - c2
    edges = ((a0, b0, c0, tol0), (a1, b1, c1, tol1), (a2, b2, c2, tol2))
    kc, kcx, kr, kh = cmin[ids], cmax[ids], rmin[ids], bh[ids]
    row_ends = np.cumsum(kh)
    n_tri = len(ids)

    zbuf = np.full(H * W, -np.inf)
    tbuf = np.full(H * W, -1, np.int64)  # index into ids
    step = max(int(batch_candidates), 1)
    g0 = 0
    while g0 < n_tri:
        # a group of triangles with at most ~step/4 scanlines
        row_base = int(row_ends[g0] - kh[g0])
        g1 = max(int(np.searchsorted(row_ends, row_base + max(step // 4, 1), side="right")), g0 + 1)
        cnt_rows = kh[g0:g1]
        tr = np.repeat(np.arange(g0, g1), cnt_rows)
        py = kr[tr] + (np.arange(row_base, int(row_ends[g1 - 1])) - (row_ends[tr] - kh[tr]))
        pyf = py.astype(np.float64)
        # scanline span of each (triangle, row): columns px with l_i(px, py) >= -tol_i for i = 0, 1, 2
        lo = kc[tr].astype(np.float64)
        hi = kcx[tr].astype(np.float64)
        for a_, b_, c_, tol_ in edges:
            a = a_[tr]
            r = -tol_[tr] - b_[tr] * pyf - c_[tr]  # need a * px >= r
            q = r / np.where(a == 0, 1.0, a)
            lo = np.where(a > 0, np.maximum(lo, np.ceil(q)), lo)
            hi = np.where(a < 0, np.minimum(hi, np.floor(q)), hi)
            hi = np.where((a == 0) & (r > 0), -1.0, hi)
        lo = np.clip(lo, -1, W)
        hi = np.clip(hi, -1, W)
        cnt = np.maximum(hi - lo + 1, 0).astype(np.int64)
        nz = cnt > 0
        tr, py, pyf, lo, cnt = tr[nz], py[nz], pyf[nz], lo[nz], cnt[nz]
        g0 = g1
        if len(tr) == 0:
            continue
        rowpix = py * W + lo.astype(np.int64)
        zrow = za[tr] * lo + zb[tr] * pyf + zc[tr]  # depth at the span start
        zstep = za[tr]
        rlo, rhi = zlo[tr], zhi[tr]
        pends = np.cumsum(cnt)
        pstarts = pends - cnt
        total = int(pends[-1])
        for s in range(0, total, step):
            e = min(s + step, total)
            r0 = int(np.searchsorted(pends, s, side="right"))
            r1 = int(np.searchsorted(pstarts, e, side="left"))
            c = np.minimum(pends[r0:r1], e) - np.maximum(pstarts[r0:r1], s)
            local = np.arange(s, e, dtype=np.int64) - np.repeat(pstarts[r0:r1], c)
            pix = np.repeat(rowpix[r0:r1], c) + local
            d = np.repeat(zrow[r0:r1], c) + np.repeat(zstep[r0:r1], c) * local
            d = np.minimum(np.maximum(d, np.repeat(rlo[r0:r1], c)), np.repeat(rhi[r0:r1], c))
            t = np.repeat(tr[r0:r1], c)
            # z-buffer: max depth per pixel; among equal depths the latest triangle (largest t) wins
            before = zbuf[pix]
            np.maximum.at(zbuf, pix, d)
            after = zbuf[pix]
            win = d >= after
            pw, tw = pix[win], t[win]
            tbuf[pw[after[win] > before[win]]] = -1  # a previous batch's winner was beaten
            np.maximum.at(tbuf, pw, tw)

    hit = np.nonzero(tbuf >= 0)[0]
    if len(hit) == 0:
        return TopView(height, colour, kind, names, face_img, float(gsd))
    th = tbuf[hit]
    gtri = ids[th]  # global triangle index
    height.reshape(-1)[hit] = zbuf[hit].astype(np.float32)
    kind.reshape(-1)[hit] = tri_mesh[gtri]
    face_img.reshape(-1)[hit] = tri_local[gtri]

    # --- colour: texture at the interpolated UV, in chunks -------------------------------------------------
    col_flat = colour.reshape(-1, 3)
    mesh_k = tri_mesh[ids]
    chunk = max(int(batch_candidates) // 2, 1)
    for s in range(0, len(hit), chunk):
        _shade(meshes, hit[s:s + chunk], th[s:s + chunk], W, uv_planes, mesh_k, col_flat)
    return TopView(height, colour, kind, names, face_img, float(gsd))


def _shade(meshes, hit, th, W, uv_planes, mesh_k, col_flat):
    pyi, pxi = np.divmod(hit, W)
    pxf = pxi.astype(np.float64)
    pyf = pyi.astype(np.float64)
    (ua, ub, uc), (va, vb, vc) = uv_planes
    u = ua[th] * pxf + ub[th] * pyf + uc[th]
    v = va[th] * pxf + vb[th] * pyf + vc[th]
    mesh_of_hit = mesh_k[th]
    lo, hi = int(mesh_of_hit.min()), int(mesh_of_hit.max())
    for mi in range(lo, hi + 1):
        if lo == hi:
            sel, u_sel, v_sel = slice(None), u, v
        else:
            sel = np.nonzero(mesh_of_hit == mi)[0]
            if len(sel) == 0:
                continue
            u_sel, v_sel = u[sel], v[sel]
        m = meshes[mi]
        base = np.asarray(getattr(m, "base_color", (1.0, 1.0, 1.0, 1.0))[:3], dtype=np.float64)
        image = m[4]
        if m[3] is not None and image is not None:
            img = np.asarray(image)
            if img.ndim == 2:
                img = img[:, :, None]
            if img.shape[2] == 1:
                img = np.repeat(img, 3, axis=2)
            c = _sample_bilinear(img[:, :, :3], u_sel, v_sel, getattr(m, "wrap", (REPEAT, REPEAT)))
            np.clip(c, 0.0, 1.0, out=c)  # float32 weights may sum to 1 + 1 ulp
            if not np.allclose(base, 1.0):
                c = _linear_to_srgb(_srgb_to_linear(c) * base).astype(np.float32)
            col_flat[hit[sel]] = c
        else:
            col_flat[hit[sel]] = _linear_to_srgb(base).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------------------

def _masked_diff(a, b, mask):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    hw = a.shape[:2]
    m = np.ones(hw, bool) if mask is None else np.asarray(mask, bool)
    if m.shape != hw:
        raise ValueError(f"mask shape {m.shape} does not match {hw}")
    fa = np.isfinite(a) if a.ndim == 2 else np.isfinite(a).all(axis=-1)
    fb = np.isfinite(b) if b.ndim == 2 else np.isfinite(b).all(axis=-1)
    m = m & fa & fb
    return (a[m] - b[m]), int(m.sum())


def rmse(a, b, mask=None) -> float:
    """Root-mean-square difference over mask (default all) and pixels finite in both; NaN if none.

    Pixels where either side is NaN (nothing seen) are left out, so check coverage() alongside.
    """
    d, n = _masked_diff(a, b, mask)
    if n == 0:
        return float("nan")
    return float(np.sqrt(np.mean(d * d)))


def psnr(a, b, mask=None) -> float:
    """PSNR in dB of [0, 1] images (H, W[, C]) over mask and pixels finite in both; inf if identical.

    10 log10(1 / MSE) with the MSE over all channels; NaN pixels are left out (check coverage() alongside).
    """
    d, n = _masked_diff(a, b, mask)
    if n == 0:
        return float("nan")
    mse = float(np.mean(d * d))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(1.0 / mse))


def coverage(view: TopView) -> float:
    """Fraction of pixels where some surface is seen."""
    return float(np.mean(view.kind >= 0)) if view.kind.size else 0.0


def texel_density(path_or_meshes) -> dict:
    """Texels per m² of 3D surface, Σ(UV area × image w × h) / Σ(3D area), by face orientation.

    Keys: 'top' (unit normal n_y > 0.9: roofs and ground), 'wall' (|n_y| < 0.1), 'bottom' (n_y < -0.9),
    'all', each NaN when there is no such face; and '{mesh name}/{top|wall|bottom|all}' per mesh entry where
    it has such faces. Normals follow the counter-clockwise winding. Faces of untextured meshes count with
    zero texels (they show no texture).
    """
    meshes = load_glb_meshes(path_or_meshes) if isinstance(path_or_meshes, (str, os.PathLike)) \
        else list(path_or_meshes)
    groups = ("top", "wall", "bottom", "all")
    tot_tex = dict.fromkeys(groups, 0.0)
    tot_area = dict.fromkeys(groups, 0.0)
    out = {}
    for m in meshes:
        name, v, f, uvs, image = m[0], np.asarray(m[1], np.float64), np.asarray(m[2], np.int64), m[3], m[4]
        f = f.reshape(-1, 3)
        if len(f) == 0:
            continue
        tv = v[f]
        cr = np.cross(tv[:, 1] - tv[:, 0], tv[:, 2] - tv[:, 0])
        dbl = np.linalg.norm(cr, axis=1)
        area = 0.5 * dbl
        ny = np.divide(cr[:, 1], dbl, out=np.zeros_like(dbl), where=dbl > 0)
        if uvs is not None and image is not None:
            h, w = np.asarray(image).shape[:2]
            tu = np.asarray(uvs, np.float64)[f]
            e1 = tu[:, 1] - tu[:, 0]
            e2 = tu[:, 2] - tu[:, 0]
            texels = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) * (w * h)
        else:
            texels = np.zeros(len(f))
        valid = dbl > 0
        sel = {"top": valid & (ny > 0.9), "wall": valid & (np.abs(ny) < 0.1),
               "bottom": valid & (ny < -0.9), "all": valid}
        for g in groups:
            a = float(area[sel[g]].sum())
            t = float(texels[sel[g]].sum())
            tot_area[g] += a
            tot_tex[g] += t
            if a > 0:
                out[f"{name}/{g}"] = t / a
    for g in groups:
        out[g] = tot_tex[g] / tot_area[g] if tot_area[g] > 0 else float("nan")
    return out
