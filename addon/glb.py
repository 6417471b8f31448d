"""Just enough GLB/glTF reading and JSON patching for the add-on: stdlib and numpy only.

Blender's Python has no pygltflib. We read the georeference (``asset.extras.georeference``) and,
when an older Blender importer drops it, the ``_FEATURE_ID_0`` accessor; we add a georeference to
files Blender's exporter wrote. Binary data is never re-encoded, only the JSON chunk is replaced.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

_MAGIC, _JSON, _BIN = b"glTF", 0x4E4F534A, 0x004E4942
_COMPONENTS = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


def read_glb(path: Path) -> tuple[dict, bytes]:
    """(JSON document, BIN chunk) of a GLB file."""
    data = Path(path).read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    if magic != _MAGIC or version != 2:
        raise ValueError(f"{path} is not a glTF 2.0 binary file")
    offset, doc, blob = 12, None, b""
    while offset < min(length, len(data)):
        size, kind = struct.unpack_from("<II", data, offset)
        body = data[offset + 8:offset + 8 + size]
        if kind == _JSON:
            doc = json.loads(body)
        elif kind == _BIN:
            blob = body
        offset += 8 + size
    if doc is None:
        raise ValueError(f"{path} has no JSON chunk")
    return doc, blob


def read_document(path: Path) -> dict:
    """The JSON document of a .glb or .gltf."""
    path = Path(path)
    if path.suffix.lower() == ".glb":
        return read_glb(path)[0]
    return json.loads(path.read_text(encoding="utf-8"))


def georeference(path: Path) -> dict | None:
    """``asset.extras.georeference`` of a glTF file, or None."""
    extras = read_document(path).get("asset", {}).get("extras") or {}
    return extras.get("georeference")


def accessor(doc: dict, blob: bytes, index: int) -> np.ndarray:
    """An accessor of an embedded-buffer GLB as a (count, width) array (byteStride honoured)."""
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = np.dtype(_COMPONENTS[acc["componentType"]])
    width = _WIDTH[acc["type"]]
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    stride = view.get("byteStride") or dtype.itemsize * width
    raw = np.frombuffer(blob, np.uint8, count=stride * (acc["count"] - 1) + dtype.itemsize * width, offset=start)
    rows = np.lib.stride_tricks.as_strided(raw, (acc["count"], dtype.itemsize * width), (stride, 1))
    return np.ascontiguousarray(rows).view(dtype).reshape(acc["count"], width)


def _glb_bytes(doc: dict, blob: bytes) -> bytes:
    text = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 4)  # JSON chunk padded with spaces, BIN with zeros
    blob = blob + b"\0" * (-len(blob) % 4)
    chunks = struct.pack("<II", len(text), _JSON) + text
    if blob:
        chunks += struct.pack("<II", len(blob), _BIN) + blob
    return struct.pack("<4sII", _MAGIC, 2, 12 + len(chunks)) + chunks


def patch_document(path: Path, change) -> None:
    """Apply ``change(doc)`` to the JSON of a .glb or .gltf in place (binary data untouched)."""
    path = Path(path)
    if path.suffix.lower() == ".glb":
        doc, blob = read_glb(path)
        change(doc)
        path.write_bytes(_glb_bytes(doc, blob))
    else:
        doc = json.loads(path.read_text(encoding="utf-8"))
        change(doc)
        path.write_text(json.dumps(doc, indent=1), encoding="utf-8")


def set_georeference(path: Path, georef: dict) -> None:
    """Put ``georef`` in ``asset.extras.georeference``, where our own exporters put it."""
    def change(doc: dict) -> None:
        extras = doc.setdefault("asset", {}).setdefault("extras", {})
        extras["georeference"] = georef

    patch_document(path, change)
