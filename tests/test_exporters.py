"""Exporters: GLB / .gltf / OBJ / .geo.json from a small synthetic TexturedScene.

Scene (core frame x east, y north, z up): a ground quad, a building box whose top corner is the core
vertex (1, 2, 3), a vegetation box, and an empty water mesh (must be skipped). Each kind samples its
own colour quadrant of a 64 x 64 atlas.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pygltflib
import pytest
import trimesh
from helpers_blender import import_in_blender
from helpers_validate import assert_valid_gltf

from satforge import exporters
from satforge.core.georef import Georeference
from satforge.core.meshes import TexturedMesh, TexturedScene
from satforge.core.schemes import OPENEARTHMAP, SurfaceKind

GEOREF = Georeference(crs="EPSG:32633", easting=583960.123456789, northing=4507523.987654321,
                      elevation=123.456, width_m=10.0, height_m=12.0, gsd=0.5, source="test")
# UV rectangles (u0, v0, u1, v1), top-left origin, inside each kind's atlas quadrant.
REGIONS = {SurfaceKind.BUILDING: (0.05, 0.05, 0.45, 0.45), SurfaceKind.VEGETATION: (0.55, 0.05, 0.95, 0.45),
           SurfaceKind.TERRAIN: (0.05, 0.55, 0.45, 0.95)}
BUILDING_LO, BUILDING_HI = (0.5, 1.0, 0.0), (1.0, 2.0, 3.0)


def _quad_uvs(kind: SurfaceKind, quads: int) -> np.ndarray:
    u0, v0, u1, v1 = REGIONS[kind]
    return np.tile(np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]], np.float32), (quads, 1))


def _mesh(kind: SurfaceKind, quads: list[np.ndarray], normals: list[np.ndarray],
          class_id: int) -> TexturedMesh:
    """Quads (4 corners, counter-clockwise seen along their normal) -> a split-vertex TexturedMesh."""
    vertices = np.concatenate(quads).astype(np.float32)
    faces = np.concatenate([np.array([[0, 1, 2], [0, 2, 3]]) + 4 * i for i in range(len(quads))])
    return TexturedMesh(kind=kind, vertices=vertices, faces=faces.astype(np.int32),
                        uvs=_quad_uvs(kind, len(quads)),
                        normals=np.repeat(np.array(normals, np.float32), 4, axis=0),
                        class_id=np.full(len(vertices), class_id, np.uint8))


def _box(kind: SurfaceKind, lo: tuple, hi: tuple, class_id: int) -> TexturedMesh:
    quads, normals = [], []
    for axis in range(3):
        u, w = [a for a in range(3) if a != axis]
        for sign, value in ((-1.0, lo[axis]), (1.0, hi[axis])):
            quad = np.empty((4, 3))
            quad[:, axis] = value
            quad[:, u] = [lo[u], hi[u], hi[u], lo[u]]
            quad[:, w] = [lo[w], lo[w], hi[w], hi[w]]
            normal = np.zeros(3)
            normal[axis] = sign
            if np.cross(quad[1] - quad[0], quad[2] - quad[0]) @ normal < 0:
                quad = quad[::-1]  # reverse to counter-clockwise seen from outside
            quads.append(quad)
            normals.append(normal * 1.0001)  # slightly off unit: the exporter must renormalise
    return _mesh(kind, quads, normals, class_id)


def _scene(feature_ids: str = "attribute") -> TexturedScene:
    ground = _mesh(SurfaceKind.TERRAIN, [np.array([[-5, -6, 0], [5, -6, 0], [5, 6, 0], [-5, 6, 0]])],
                   [np.array([0, 0, 1])], class_id=1)
    ground.class_id[:] = [1, 2, 7, 7]
    empty = TexturedMesh(SurfaceKind.WATER, np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32),
                         np.zeros((0, 2), np.float32), np.zeros((0, 3), np.float32), np.zeros(0, np.uint8))
    atlas = np.zeros((64, 64, 3), np.uint8)
    atlas[:32, :32] = (200, 30, 30)
    atlas[:32, 32:] = (30, 160, 40)
    atlas[32:, :32] = (128, 128, 128)
    atlas[32:, 32:] = (20, 40, 200)
    return TexturedScene(
        meshes=[ground, _box(SurfaceKind.BUILDING, BUILDING_LO, BUILDING_HI, 8), empty,
                _box(SurfaceKind.VEGETATION, (-3.0, -3.0, 0.0), (-2.0, -2.0, 4.0), 5)],
        atlas=atlas, georef=GEOREF, scheme="openearthmap", class_names=OPENEARTHMAP.names,
        feature_ids=feature_ids, extras={"generator": "test", "seed": 7})


def _accessor_array(gltf: pygltflib.GLTF2, blob: bytes, index: int) -> np.ndarray:
    acc = gltf.accessors[index]
    view = gltf.bufferViews[acc.bufferView]
    dtype = {pygltflib.FLOAT: np.float32, pygltflib.UNSIGNED_INT: np.uint32,
             pygltflib.UNSIGNED_SHORT: np.uint16, pygltflib.UNSIGNED_BYTE: np.uint8}[acc.componentType]
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3}[acc.type]
    stride = view.byteStride or width * np.dtype(dtype).itemsize
    raw = np.frombuffer(blob, np.uint8, count=stride * acc.count, offset=view.byteOffset + acc.byteOffset)
    return raw.reshape(acc.count, stride)[:, :width * np.dtype(dtype).itemsize].copy().view(dtype)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, dict[str, list[Path]]]:
    """Every format, in both feature-id modes (exported once for the whole module)."""
    out = {}
    for mode in ("attribute", "ext_mesh_features"):
        folder = tmp_path_factory.mktemp(mode)
        out[mode] = exporters.export_scene(_scene(mode), folder, stem="tile", formats=("glb", "gltf", "obj"))
    return out


def test_written_files(exported):
    files = exported["attribute"]
    names = {fmt: [p.name for p in paths] for fmt, paths in files.items()}
    assert names == {"glb": ["tile.glb"], "gltf": ["tile.gltf", "tile.bin", "tile.png"],
                     "obj": ["tile.obj", "tile.mtl", "tile.png"], "geojson": ["tile.geo.json"]}
    folder = files["glb"][0].parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["tile.glb", "tile.gltf", "tile.bin", "tile.png", "tile.obj", "tile.mtl", "tile.geo.json"])


@pytest.mark.parametrize("mode", ["attribute", "ext_mesh_features"])
@pytest.mark.parametrize("fmt", ["glb", "gltf"])
def test_khronos_validator(exported, mode, fmt):
    report = assert_valid_gltf(exported[mode][fmt][0])
    infos = {m["code"] for m in report["issues"]["messages"]}
    # The validator cannot check EXT_mesh_features and says so; any other note is a regression.
    assert infos == ({"UNSUPPORTED_EXTENSION"} if mode == "ext_mesh_features" else set())
    assert report["info"]["drawCallCount"] == 3  # one per non-empty kind
    # A .gltf's .bin and .png were found and checked too.
    expected = [("/buffers/0", "glb"), ("/images/0", "buffer-view")] if fmt == "glb" else [
        ("/buffers/0", "external"), ("/images/0", "external")]
    assert [(r["pointer"], r["storage"]) for r in report["info"]["resources"]] == expected


@pytest.mark.parametrize("mode", ["attribute", "ext_mesh_features"])
def test_glb_structure(exported, mode):
    gltf = pygltflib.GLTF2().load(str(exported[mode]["glb"][0]))
    kinds = ["terrain", "building", "vegetation"]  # water is empty
    assert [n.name for n in gltf.nodes] == [m.name for m in gltf.meshes] == kinds
    assert [n.extras for n in gltf.nodes] == [{"surface_kind": k} for k in kinds]
    assert [m.name for m in gltf.materials] == kinds
    assert all(len(m.primitives) == 1 for m in gltf.meshes)
    assert len(gltf.images) == len(gltf.textures) == len(gltf.samplers) == 1
    assert all(m.pbrMetallicRoughness.baseColorTexture.index == 0 for m in gltf.materials)
    sampler = gltf.samplers[0]
    assert (sampler.wrapS, sampler.wrapT, sampler.minFilter) == (
        pygltflib.CLAMP_TO_EDGE, pygltflib.CLAMP_TO_EDGE, pygltflib.LINEAR_MIPMAP_LINEAR)
    assert gltf.asset.generator.startswith("SatForge ")
    extras = gltf.asset.extras
    assert extras["georeference"] == GEOREF.to_dict()
    assert Georeference.from_dict(extras["georeference"]) == GEOREF
    assert extras["satforge"] == {"generator": "test", "seed": 7}
    assert extras["classes"]["8"] == "building"
    assert gltf.extensionsRequired == []
    features = [p.extensions.get("EXT_mesh_features") for m in gltf.meshes for p in m.primitives]
    if mode == "ext_mesh_features":
        assert gltf.extensionsUsed == ["EXT_mesh_features"]
        assert [f["featureIds"][0]["featureCount"] for f in features] == [3, 1, 1]
        assert features[0]["featureIds"][0]["attribute"] == 0
    else:
        assert gltf.extensionsUsed == [] and features == [None, None, None]


def test_glb_geometry_y_up(exported):
    gltf = pygltflib.GLTF2().load(str(exported["attribute"]["glb"][0]))
    blob = gltf.binary_blob()
    ground, building, _ = (m.primitives[0] for m in gltf.meshes)
    position = _accessor_array(gltf, blob, building.attributes.POSITION)
    # core (x, y, z) -> glTF (x, z, -y): the building's top corner (1, 2, 3) is at (1, 3, -2).
    assert np.any(np.all(position == [1.0, 3.0, -2.0], axis=1))
    acc = gltf.accessors[building.attributes.POSITION]
    assert acc.min == [0.5, 0.0, -2.0] and acc.max == [1.0, 3.0, -1.0]
    normal = _accessor_array(gltf, blob, building.attributes.NORMAL)
    np.testing.assert_allclose(np.linalg.norm(normal, axis=1), 1.0, atol=1e-6)
    # Winding stays counter-clockwise: every face's geometric normal agrees with its vertex normals.
    faces = _accessor_array(gltf, blob, building.indices).reshape(-1, 3)
    tri = position[faces]
    geometric = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert np.all(np.einsum("ij,ij->i", geometric, normal[faces[:, 0]]) > 0)
    ids = _accessor_array(gltf, blob, ground.attributes._FEATURE_ID_0)
    assert ids.ravel().tolist() == [1, 2, 7, 7]
    assert gltf.accessors[ground.indices].componentType == pygltflib.UNSIGNED_SHORT


def test_large_mesh_uses_32_bit_indices(tmp_path):
    """Over 65535 vertices, indices must be UNSIGNED_INT (65535 is the forbidden restart value)."""
    n = 257  # 257 x 257 grid = 66049 vertices
    x, y = np.meshgrid(np.linspace(-5, 5, n), np.linspace(-6, 6, n))
    vertices = np.stack([x.ravel(), y.ravel(), np.zeros(n * n)], axis=1).astype(np.float32)
    cell = (np.arange(n - 1)[None, :] + n * np.arange(n - 1)[:, None]).ravel()
    faces = np.concatenate([np.stack([cell, cell + 1, cell + n + 1], 1),
                            np.stack([cell, cell + n + 1, cell + n], 1)])
    uvs = np.stack([(x.ravel() + 5) / 10, (6 - y.ravel()) / 12], axis=1).astype(np.float32)
    grid = TexturedMesh(SurfaceKind.TERRAIN, vertices, faces.astype(np.int32), uvs,
                        np.tile(np.float32([0, 0, 1]), (n * n, 1)), np.ones(n * n, np.uint8))
    scene = _scene()
    scene.meshes = [grid]
    path = exporters.export_scene(scene, tmp_path)["glb"][0]
    assert_valid_gltf(path)
    gltf = pygltflib.GLTF2().load(str(path))
    assert gltf.accessors[gltf.meshes[0].primitives[0].indices].componentType == pygltflib.UNSIGNED_INT


def test_file_names_need_no_care(tmp_path):
    """A stem with a dot and a space: no suffix is cut, and URIs inside the .gltf are escaped."""
    files = exporters.export_scene(_scene(), tmp_path, stem="tile x1.5", formats=("gltf",))
    assert [p.name for p in files["gltf"]] == ["tile x1.5.gltf", "tile x1.5.bin", "tile x1.5.png"]
    assert '"uri":"tile%20x1.5.bin"' in files["gltf"][0].read_text()
    assert_valid_gltf(files["gltf"][0])


def test_obj_number_text_matches_printf():
    rng = np.random.default_rng(3)
    values = np.concatenate([[[0.0, 0.5, 1.0], [9999.25, -123456.5, 0.000049], [-3.0, 7.0, 1e-9]],
                             (rng.random((500, 3)) - 0.5) * [1.0, 300.0, 2e5]])
    for decimals in (0, 4, 6):
        # printf's digits, but "0" where printf writes "-0" (round(x) + 0.0 turns -0.0 into 0.0)
        expected = "".join(("v" + f" %.{decimals}f" * 3 + "\n") % tuple(round(x, decimals) + 0.0 for x in row)
                           for row in values)
        assert exporters.obj.ascii_rows("v", values, decimals).decode() == expected
    faces = np.array([[1, 9, 10], [99, 100, 123456789]])
    assert exporters.obj.ascii_rows("f", faces, repeat=3) == (
        b"f 1/1/1 9/9/9 10/10/10\nf 99/99/99 100/100/100 123456789/123456789/123456789\n")
    # printf would write "-0.0000" for a negative value that rounds to zero
    negative_zero = exporters.obj.ascii_rows("vn", np.array([[-0.00001, 0.0, -1.0]]), 4)
    assert negative_zero == b"vn 0.0000 0.0000 -1.0000\n"


def test_geojson_sidecar(exported):
    feature = json.loads(exported["attribute"]["geojson"][0].read_text())
    assert feature["type"] == "Feature"
    georef = feature["properties"]["georeference"]
    assert georef == GEOREF.to_dict()  # float64 centre survives exactly
    assert georef["easting"] == 583960.123456789 and georef["northing"] == 4507523.987654321
    assert Georeference.from_dict(georef) == GEOREF
    ring = np.array(feature["geometry"]["coordinates"][0])
    assert feature["geometry"]["type"] == "Polygon" and ring.shape == (5, 2)
    assert ring[0].tolist() == ring[-1].tolist()
    np.testing.assert_allclose(ring.min(0), [GEOREF.easting - 5, GEOREF.northing - 6])
    np.testing.assert_allclose(ring.max(0), [GEOREF.easting + 5, GEOREF.northing + 6])
    area2 = np.sum(ring[:-1, 0] * ring[1:, 1] - ring[1:, 0] * ring[:-1, 1])
    assert area2 > 0  # counter-clockwise exterior ring (RFC 7946)
    assert feature["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32633"
    assert "tile.glb" in feature["properties"]["assets"]


def test_no_crs_survives(tmp_path):
    """crs None and source "" stay in the GLB (pygltflib's serialiser alone would drop them)."""
    scene = _scene()
    scene.georef = Georeference(crs=None, easting=0.0, northing=0.0, elevation=0.0, width_m=10.0,
                                height_m=12.0, gsd=0.5)
    files = exporters.export_scene(scene, tmp_path)
    extras = pygltflib.GLTF2().load(str(files["glb"][0])).asset.extras
    assert extras["georeference"]["crs"] is None and extras["georeference"]["source"] == ""
    feature = json.loads(files["geojson"][0].read_text())
    assert "crs" not in feature and Georeference.from_dict(feature["properties"]["georeference"]) == scene.georef


def test_geographic_footprint_in_degrees():
    georef = Georeference(crs="EPSG:4326", easting=13.4, northing=52.5, elevation=34.0, width_m=1000.0,
                          height_m=1000.0, gsd=1.0, crs_units="degree")
    ring = np.array(exporters.geojson.footprint(georef))
    width_deg, height_deg = ring.max(0) - ring.min(0)
    assert height_deg == pytest.approx(1000 / 111_195, rel=1e-3)  # ~111.2 km per degree of latitude
    assert width_deg == pytest.approx(height_deg / np.cos(np.radians(52.5)), rel=1e-6)


def test_obj_reads_in_trimesh(exported):
    files = exported["attribute"]["obj"]
    text = files[0].read_text()
    assert "mtllib tile.mtl" in text and "+Y up" in text
    assert [line for line in text.splitlines() if line.startswith("usemtl")] == [
        "usemtl terrain", "usemtl building", "usemtl vegetation"]
    assert "map_Kd tile.png" in files[1].read_text()
    loaded = trimesh.load(files[0], process=False, force="scene")
    meshes = list(loaded.geometry.values())
    assert sum(len(m.vertices) for m in meshes) == 4 + 24 + 24
    np.testing.assert_allclose(loaded.bounds, [[-5, 0, -6], [5, 4, 6]], atol=1e-4)
    building = next(m for m in meshes if np.allclose(m.bounds, [[0.5, 0, -2], [1, 3, -1]], atol=1e-4))
    # OBJ texture origin is bottom-left: v = 1 - v(glTF), so the building's v in [0.55, 0.95].
    uv = building.visual.uv
    np.testing.assert_allclose([uv.min(0), uv.max(0)], [[0.05, 0.55], [0.45, 0.95]], atol=1e-6)


@pytest.mark.parametrize("fmt", ["glb", "gltf", "obj"])
def test_blender_import(exported, fmt):
    summary = import_in_blender(exported["ext_mesh_features"][fmt][0])
    assert sorted(summary) == ["building", "terrain", "vegetation"]
    assert [summary[k]["vertices"] for k in ("terrain", "building", "vegetation")] == [4, 24, 24]
    for obj in summary.values():
        assert obj["uv_layers"] and obj["has_image_texture"]
    assert summary["building"]["materials"] == ["building"]
    # Blender is Z up like the core frame: the core vertex (1, 2, 3) is at Blender (1, 2, 3).
    np.testing.assert_allclose(summary["building"]["bbox"], [BUILDING_LO, BUILDING_HI], atol=1e-4)


def test_failed_export_leaves_nothing(tmp_path, monkeypatch):
    """A failure mid-export leaves no final and no temporary file, no folder it made, and keeps an
    earlier export."""
    empty, previous = tmp_path / "empty", tmp_path / "previous"
    before = exporters.export_scene(_scene(), previous, formats=("glb",))["glb"][0].read_bytes()

    def crash(scene, path, mtl_name):
        Path(path).write_text("v 0 0 0\n")  # half-written
        raise RuntimeError("disk full")

    monkeypatch.setattr(exporters.obj, "write_obj", crash)
    for folder in (empty, previous):
        with pytest.raises(RuntimeError, match="disk full"):
            exporters.export_scene(_scene(), folder, formats=("glb", "gltf", "obj"))
    assert not empty.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["previous"]
    assert sorted(p.name for p in previous.iterdir()) == ["scene.geo.json", "scene.glb"]
    assert (previous / "scene.glb").read_bytes() == before


def test_rejects_bad_requests(tmp_path):
    with pytest.raises(ValueError, match="unknown export format"):
        exporters.export_scene(_scene(), tmp_path, formats=("fbx",))
    scene = _scene()
    scene.meshes = [m for m in scene.meshes if not len(m.faces)]
    with pytest.raises(ValueError, match="no faces"):
        exporters.export_scene(scene, tmp_path)
    assert list(tmp_path.iterdir()) == []
