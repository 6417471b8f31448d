"""glTF 2.0 writers: GLB (one file, PNG embedded) and .gltf + .bin + .png.

Layout: one node, mesh, primitive and material per surface kind, all materials sampling one atlas
texture. Vertex data is non-interleaved, one bufferView per accessor, each 4-byte aligned.
Attributes: POSITION (with min/max), NORMAL, TEXCOORD_0 and ``_FEATURE_ID_0`` (class id, UNSIGNED_BYTE
in a 4-byte stride because glTF wants every vertex attribute element 4-byte aligned).
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

import numpy as np
import pygltflib as g

from .. import __version__
from ..core.meshes import TexturedMesh, TexturedScene
from .frame import clamped_uvs, exported_meshes, unit_normals, y_up

EXT_MESH_FEATURES = "EXT_mesh_features"
_MAX_SHORT_INDEX = 65534  # 65535 is the primitive-restart value, forbidden in glTF indices


class _Blob:
    """The binary buffer being built: aligned pieces, each described by a bufferView."""

    def __init__(self, gltf: g.GLTF2):
        self.gltf = gltf
        self.pieces: list[np.ndarray] = []
        self.length = 0

    def add(self, data: np.ndarray, target: int | None = None, stride: int | None = None) -> int:
        """Append ``data`` at the next 4-byte boundary; returns the new bufferView's index."""
        self._pad()
        raw = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        self.gltf.bufferViews.append(g.BufferView(buffer=0, byteOffset=self.length, byteLength=raw.nbytes,
                                                  byteStride=stride, target=target))
        self.pieces.append(raw)
        self.length += raw.nbytes
        return len(self.gltf.bufferViews) - 1

    def finish(self) -> None:
        """Pad to 4 bytes (GLB chunks must be) and declare the buffer."""
        self._pad()
        self.gltf.buffers.append(g.Buffer(byteLength=self.length))

    def _pad(self) -> None:
        if self.length % 4:
            self.pieces.append(np.zeros(-self.length % 4, np.uint8))
            self.length += len(self.pieces[-1])


def _accessor(blob: _Blob, data: np.ndarray, component: int, kind: str, target: int,
              stride: int | None = None, bounds: bool = False) -> int:
    view = blob.add(data, target, stride)
    acc = g.Accessor(bufferView=view, componentType=component, count=len(data), type=kind)
    if bounds:
        acc.min, acc.max = data.min(axis=0).tolist(), data.max(axis=0).tolist()
    blob.gltf.accessors.append(acc)
    return len(blob.gltf.accessors) - 1


def _feature_ids_padded(class_id: np.ndarray) -> np.ndarray:
    """(V,) uint8 -> (V, 4) uint8 with the id in byte 0: a 4-byte stride for a 1-byte attribute."""
    padded = np.zeros((len(class_id), 4), np.uint8)
    padded[:, 0] = class_id
    return padded


def _primitive(blob: _Blob, mesh: TexturedMesh, material: int, ext_features: bool) -> g.Primitive:
    small = len(mesh.vertices) <= _MAX_SHORT_INDEX + 1
    indices = mesh.faces.astype(np.uint16 if small else np.uint32)
    index_type = g.UNSIGNED_SHORT if small else g.UNSIGNED_INT
    attributes = g.Attributes(
        POSITION=_accessor(blob, y_up(mesh.vertices), g.FLOAT, g.VEC3, g.ARRAY_BUFFER, bounds=True),
        NORMAL=_accessor(blob, unit_normals(mesh.normals), g.FLOAT, g.VEC3, g.ARRAY_BUFFER),
        TEXCOORD_0=_accessor(blob, clamped_uvs(mesh.uvs), g.FLOAT, g.VEC2, g.ARRAY_BUFFER),
        _FEATURE_ID_0=_accessor(blob, _feature_ids_padded(mesh.class_id), g.UNSIGNED_BYTE, g.SCALAR,
                                g.ARRAY_BUFFER, stride=4),
    )
    prim = g.Primitive(attributes=attributes, material=material, mode=g.TRIANGLES,
                       indices=_accessor(blob, indices.reshape(-1), index_type, g.SCALAR,
                                         g.ELEMENT_ARRAY_BUFFER))
    if ext_features:
        count = int(np.count_nonzero(np.bincount(mesh.class_id, minlength=256)))
        prim.extensions = {EXT_MESH_FEATURES: {"featureIds": [
            {"featureCount": count, "attribute": 0, "label": "class"}]}}
    return prim


def _material(name: str) -> g.Material:
    pbr = g.PbrMetallicRoughness(baseColorTexture=g.TextureInfo(index=0), metallicFactor=0.0,
                                 roughnessFactor=0.9)
    return g.Material(name=name, pbrMetallicRoughness=pbr, doubleSided=False, alphaMode=g.OPAQUE)


def _build(scene: TexturedScene) -> tuple[g.GLTF2, _Blob]:
    """The document and geometry buffer for ``scene`` (without the image source, which differs)."""
    if scene.feature_ids not in ("attribute", "ext_mesh_features"):
        raise ValueError(f"unknown feature_ids mode {scene.feature_ids!r}")
    ext_features = scene.feature_ids == "ext_mesh_features"
    gltf = g.GLTF2(asset=g.Asset(version="2.0", generator=f"SatForge {__version__}"), scene=0)
    blob = _Blob(gltf)
    for mesh in exported_meshes(scene):
        label = mesh.kind.label
        gltf.materials.append(_material(label))
        prim = _primitive(blob, mesh, len(gltf.materials) - 1, ext_features)
        gltf.meshes.append(g.Mesh(name=label, primitives=[prim]))
        gltf.nodes.append(g.Node(name=label, mesh=len(gltf.meshes) - 1))
    gltf.scenes.append(g.Scene(nodes=list(range(len(gltf.nodes)))))
    gltf.samplers.append(g.Sampler(magFilter=g.LINEAR, minFilter=g.LINEAR_MIPMAP_LINEAR,
                                   wrapS=g.CLAMP_TO_EDGE, wrapT=g.CLAMP_TO_EDGE))
    gltf.textures.append(g.Texture(sampler=0, source=0))
    if ext_features:
        # Used, not required: viewers without the extension still draw the mesh.
        gltf.extensionsUsed.append(EXT_MESH_FEATURES)
    return gltf, blob


def _json_bytes(gltf: g.GLTF2, scene: TexturedScene) -> bytes:
    """Serialise, then attach extras: pygltflib's serialiser drops every None and empty value
    recursively, which would lose e.g. ``georeference.crs = None`` or ``source = ""``."""
    doc = json.loads(gltf.gltf_to_json(separators=(",", ":"), indent=None))
    doc["asset"]["extras"] = {
        "georeference": scene.georef.to_dict(),
        "satforge": scene.extras,
        "scheme": scene.scheme,
        "classes": {str(k): v for k, v in sorted(scene.class_names.items())},
    }
    for node in doc["nodes"]:
        node["extras"] = {"surface_kind": node["name"]}
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _write_pieces(out: BinaryIO, pieces: list[np.ndarray]) -> None:
    for piece in pieces:
        out.write(piece.data)


def glb_bytes(scene: TexturedScene, png: bytes) -> bytes:
    """A self-contained GLB (image in the BIN chunk) as bytes, for callers that hash before writing."""
    gltf, blob = _build(scene)
    gltf.images.append(g.Image(name="atlas", bufferView=blob.add(np.frombuffer(png, np.uint8)),
                               mimeType="image/png"))
    blob.finish()
    text = _json_bytes(gltf, scene)
    text += b" " * (-len(text) % 4)  # the JSON chunk is padded with spaces
    total = 12 + 8 + len(text) + 8 + blob.length
    head = struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<I4s", len(text), b"JSON") + text
    return b"".join([head, struct.pack("<I4s", blob.length, b"BIN\0"), *(p.tobytes() for p in blob.pieces)])


def write_glb(scene: TexturedScene, png: bytes, path: Path) -> None:
    """Write a self-contained GLB (image in the BIN chunk) to ``path``."""
    Path(path).write_bytes(glb_bytes(scene, png))


def write_gltf(scene: TexturedScene, gltf_path: Path, bin_path: Path, bin_name: str, png_name: str) -> None:
    """Write the JSON to ``gltf_path`` and the buffer to ``bin_path``; the document refers to them
    by ``bin_name`` and ``png_name`` (the final sibling file names, not the temporary paths)."""
    gltf, blob = _build(scene)
    gltf.images.append(g.Image(name="atlas", uri=quote(png_name)))
    blob.finish()
    gltf.buffers[0].uri = quote(bin_name)
    with open(bin_path, "wb") as out:
        _write_pieces(out, blob.pieces)
    Path(gltf_path).write_bytes(_json_bytes(gltf, scene))
