"""A checker for the rules OGC 3D Tiles 1.1 states, since no 3D Tiles validator installs here, and a
simulation of what a viewer loads to show a whole world.

``check_tileset(path)`` returns a list of problems (empty: none):
- ``asset.version`` is "1.1"; ``geometricError`` present and >= 0 on the tileset and every tile;
- a tile's geometric error never increases from parent to child (the spec: a child's error is lower
  or equal), and the tileset's is at least the root's;
- a tile without content refines: it has children and its error is larger than each child's (else a
  viewer may stop there and draw nothing) and not 0;
- ``refine`` is REPLACE or ADD (the root must say it; children inherit);
- every bounding volume is a box (what SatForge writes) and contains its content's vertices (read
  from the GLB, in the tile's frame) and its children's boxes (through their transforms);
- content URIs resolve to files beside the tileset;
- at most ``max_children`` children per tile.

``whole_world_view(tileset)`` runs the refinement a viewer runs (screen-space error against a target,
3d-tiles-renderer's and CesiumJS's rule) for a camera that frames the root's bounding sphere from
above and returns the content tiles drawn.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from satforge.world.hlod import read_glb

TOLERANCE = 1e-6  # metres: float32 content against float64 boxes


def _matrix(tile: dict) -> np.ndarray:
    return np.array(tile.get("transform", np.eye(4).reshape(-1).tolist()), np.float64).reshape(4, 4).T


def _box_corners(box: list[float], frame: np.ndarray) -> np.ndarray:
    """(8, 3) corners of a 3D Tiles box in the frame ``frame`` maps from."""
    c, axes = np.array(box[:3]), np.array(box[3:]).reshape(3, 3)
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float64)
    local = c + signs @ axes
    return (frame @ np.c_[local, np.ones(8)].T).T[:, :3]


def _inside(points: np.ndarray, box: list[float], frame: np.ndarray) -> bool:
    """Whether ``points`` (world frame) lie in ``box`` of a tile whose world matrix is ``frame``."""
    local = (np.linalg.inv(frame) @ np.c_[points, np.ones(len(points))].T).T[:, :3]
    c, axes = np.array(box[:3]), np.array(box[3:]).reshape(3, 3)
    # Box coordinates: local = c + axes^T @ t with |t| <= 1 on each half axis.
    t = np.linalg.solve(axes.T, (local - c).T).T
    lengths = np.linalg.norm(axes, axis=1)
    return bool(np.all(np.abs(t) <= 1 + TOLERANCE / np.maximum(lengths, 1e-12)))


def _content_points(path: Path) -> np.ndarray:
    """Every vertex of a SatForge GLB, in the tile's z-up frame (3D Tiles turns glTF y-up to z-up)."""
    meshes, _ = read_glb(path.read_bytes())
    return np.concatenate([m.vertices for m in meshes]).astype(np.float64)


def check_tileset(path: Path, max_children: int = 4, files: bool = True) -> list[str]:
    """Problems of the tileset at ``path`` (see the module's rules); [] when it follows them.
    ``files=False``: the content files are not there (a tileset built for its structure alone)."""
    path = Path(path)
    doc = json.loads(path.read_text())
    problems = []
    if doc.get("asset", {}).get("version") != "1.1":
        problems.append(f"asset.version is {doc.get('asset', {}).get('version')!r}, not '1.1'")
    root = doc["root"]
    if root.get("refine") not in ("REPLACE", "ADD"):
        problems.append("the root has no refine REPLACE or ADD")
    if doc.get("geometricError", -1) < root.get("geometricError", 0):
        problems.append("the tileset's geometricError is below the root's")

    def visit(tile: dict, parent: np.ndarray, where: str) -> None:
        frame = parent @ _matrix(tile)
        error = tile.get("geometricError")
        if error is None or error < 0:
            problems.append(f"{where}: geometricError missing or negative")
            return
        if tile.get("refine", "REPLACE") not in ("REPLACE", "ADD"):
            problems.append(f"{where}: refine {tile['refine']!r}")
        box = tile.get("boundingVolume", {}).get("box")
        if box is None:
            problems.append(f"{where}: no box bounding volume")
            return
        kids = tile.get("children", [])
        if len(kids) > max_children:
            problems.append(f"{where}: {len(kids)} children (at most {max_children})")
        if "content" not in tile and (not kids or error == 0):
            problems.append(f"{where}: no content, yet it does not refine (error {error}, {len(kids)} children)")
        if "content" in tile and files:
            file = path.parent / tile["content"]["uri"]
            if not file.is_file():
                problems.append(f"{where}: content {tile['content']['uri']} does not resolve")
            elif not _inside(_world(frame, _content_points(file)), box, frame):
                problems.append(f"{where}: box does not contain its content {tile['content']['uri']}")
        for i, kid in enumerate(kids):
            name = f"{where}/{i}"
            kid_error = kid.get("geometricError", math.inf)
            if kid_error > error:
                problems.append(f"{name}: geometricError {kid_error} above its parent's {error}")
            if "content" not in tile and kid_error >= error:
                problems.append(f"{where}: no content, yet it does not refine (child {i}'s error {kid_error} "
                                f"is not below its {error})")
            kid_box = kid.get("boundingVolume", {}).get("box")
            if kid_box is not None and not _inside(_box_corners(kid_box, frame @ _matrix(kid)), box, frame):
                problems.append(f"{name}: box not inside its parent's")
            visit(kid, frame, name)

    visit(root, np.eye(4), "root")
    return problems


def _world(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    return (frame @ np.c_[points, np.ones(len(points))].T).T[:, :3]


@dataclass
class View:
    drawn: list[str]   # content URIs drawn
    loaded: list[str]  # content URIs on the way there too (drawn, and refined tiles with content)


def whole_world_view(doc: dict, screen_height: int = 1080, fov_deg: float = 60.0,
                     error_target: float = 16.0) -> View:
    """What a viewer draws for a camera looking straight down on the root's bounding sphere from
    where the sphere just fits the vertical field of view: a tile refines while its screen-space
    error, geometricError / (distance · 2·tan(fov/2) / screen_height), exceeds ``error_target``
    (3d-tiles-renderer's errorTarget, CesiumJS's maximumScreenSpaceError: 16 by default)."""
    root = doc["root"]
    corners = _box_corners(root["boundingVolume"]["box"], _matrix(root))
    centre = (corners.min(0) + corners.max(0)) / 2
    radius = float(np.linalg.norm(corners.max(0) - corners.min(0))) / 2
    half_fov = math.radians(fov_deg) / 2
    camera = centre + [0, 0, radius / math.sin(half_fov)]
    denominator = 2 * math.tan(half_fov) / screen_height
    view = View([], [])

    def visit(tile: dict, parent: np.ndarray) -> None:
        frame = parent @ _matrix(tile)
        distance = max(_distance(camera, tile["boundingVolume"]["box"], frame), 1e-9)
        refine = tile.get("children") and tile["geometricError"] / (distance * denominator) > error_target
        if "content" in tile:
            view.loaded.append(tile["content"]["uri"])
            if not refine:
                view.drawn.append(tile["content"]["uri"])
        if refine:
            for kid in tile["children"]:
                visit(kid, frame)

    visit(root, np.eye(4))
    return view


def _distance(point: np.ndarray, box: list[float], frame: np.ndarray) -> float:
    """Distance from ``point`` (world frame) to a box of a tile whose world matrix is ``frame``."""
    local = (np.linalg.inv(frame) @ np.r_[point, 1.0])[:3]
    c, axes = np.array(box[:3]), np.array(box[3:]).reshape(3, 3)
    t = np.clip(np.linalg.solve(axes.T, local - c), -1, 1)
    nearest = frame @ np.r_[c + axes.T @ t, 1.0]
    return float(np.linalg.norm(nearest[:3] - point))
