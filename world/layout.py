"""A world folder: chunk indexing, file paths, the manifest (the commit point of every chunk).

Chunk (X, Y) covers [X*S, (X+1)*S) east and [Y*S, (Y+1)*S) north of the world origin; its GLBs are
``tiles/{lod}/tile_x{X}_y{Y}.glb`` with vertices relative to the chunk centre ((X + 1/2) S,
(Y + 1/2) S), a multiple of S/2, so adding the centre to a float32 vertex is exact.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import __version__
from ..core.atomic import remove_dead_temps, write_bytes_atomic
from ..core.contract import MANIFEST, read_world_manifest
from ..core.errors import InputError
from ..core.georef import Georeference
from ..core.inputs.grid import M_PER_DEG_LAT, M_PER_DEG_LON_EQUATOR
from ..core.presets import Preset, load_preset, preset_from_values
from .inputs import WorldInputs
from .source import Style

FORMAT = "satforge.world/1"
# What chunks show, as the code that makes them draws it: bump with every change to a chunk's bytes
# (the generator, the view of the world, meshing, baking). A world holds chunks of one content, so
# its neighbours meet at every border; manifests written before it was recorded hold content 0.
CONTENT = 4  # 4: the continuation's ground and crowns textured from the photo. 3: coarser LODs
# simplify the finer LOD's tops. 2: water and roads go on past the input; mottled ground


@dataclass(frozen=True)
class WorldSpec:
    """Everything a chunk's bytes depend on besides (X, Y)."""

    chunk_size: float        # S, metres
    gsd: float               # analysis grid of the generator, metres
    band: float              # overlap band around each chunk's window, metres
    seed: int
    preset: dict             # the preset's values (core.presets.preset_values): a world keeps them
    lods: int
    generator: str           # "default/1.0"
    weights: dict = field(default_factory=dict)  # learned generators: role -> weights source as given
    order: str = "independent"  # chunks made in any order (see Generator.neighbours)
    crs: str | None = None
    easting: float = 0.0     # world origin (south-west corner) in the CRS
    northing: float = 0.0
    elevation: float = 0.0
    crs_units: str = "metre"
    inputs: WorldInputs | None = None          # None: the procedural world alone
    style: Style = field(default_factory=Style)  # the procedural world's knobs (from the inputs' statistics)
    content: int = CONTENT   # the code's version of what chunks show (CONTENT)

    @property
    def palette(self) -> str:
        """The class scheme of every chunk's class ids."""
        return self.inputs.palette if self.inputs is not None else "openearthmap"

    @classmethod
    def from_header(cls, header: dict) -> WorldSpec:
        """The spec a manifest was written with."""
        fields = {k: header[k] for k in cls.__dataclass_fields__ if k in header}
        fields["inputs"] = WorldInputs.from_dict(header["inputs"]) if header.get("inputs") else None
        fields["style"] = Style(**header["style"]) if header.get("style") else Style()
        fields["content"] = header.get("content", 0)
        return cls(**fields)

    def stored_preset(self) -> Preset:
        """The preset the world was made with (manifests before 0.1 stored only its name)."""
        if isinstance(self.preset, str):
            return load_preset(self.preset)
        return preset_from_values(self.preset, f"{MANIFEST} (preset)")

    def centre(self, x: int, y: int) -> tuple[float, float]:
        """Chunk centre in world metres (east, north of the origin)."""
        return (x + 0.5) * self.chunk_size, (y + 0.5) * self.chunk_size

    def georef(self, x: int, y: int, size_m: float, source: str) -> Georeference:
        """The georeference of a square of ``size_m`` metres centred on chunk (x, y). In a geographic
        CRS the centre's offset from the origin is turned into degrees at the centre's latitude, as
        core/inputs does for pixel sizes."""
        cx, cy = self.centre(x, y)
        if self.crs_units == "degree":
            cy = cy / M_PER_DEG_LAT
            cx = cx / (M_PER_DEG_LON_EQUATOR * math.cos(math.radians(self.northing + cy)))
        return Georeference(crs=self.crs, easting=self.easting + cx, northing=self.northing + cy,
                            elevation=self.elevation, width_m=size_m, height_m=size_m, gsd=self.gsd,
                            crs_units=self.crs_units, source=source)

    def header(self) -> dict:
        """The manifest's settings, as JSON gives them back (lists, not tuples)."""
        return json.loads(json.dumps({"format": FORMAT, "satforge": __version__, **asdict(self)}))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def existing_header(out: Path) -> dict | None:
    """The settings of the world already in ``out``, or None when there is none."""
    try:
        return read_world_manifest(out)
    except ValueError as exc:
        raise InputError(out / MANIFEST, str(exc), "remove it or use another --out") from None


def read_manifest(out: Path, spec: WorldSpec) -> dict:
    """The folder's manifest, or a fresh one; a manifest of other settings is a user error."""
    manifest = existing_header(out)
    if manifest is None:
        return {**spec.header(), "chunks": {}}
    made = manifest.get("content", 0)
    if made != spec.content:
        older = "an older" if made < spec.content else "a newer"
        raise InputError("--out", f"{out} holds chunks that {older} SatForge made (world content {made}, this one "
                         f"makes {spec.content}): they would not meet new chunks at their borders",
                         "finish that world with the SatForge that began it, or make it again in another --out")
    # A setting added after the manifest was written had its default then.
    old = {k: manifest.get(k, v) for k, v in spec.header().items() if k != "satforge"}
    new = {k: v for k, v in spec.header().items() if k != "satforge"}
    if old != new:
        diff = ", ".join(k if isinstance(new[k], dict) else f"{k}={old[k]!r}" for k in new if old[k] != new[k])
        raise InputError("--out", f"{out} holds a world made with other settings ({diff})",
                         "use the same settings or another --out")
    return manifest


def write_if_changed(path: Path, data: bytes) -> bool:
    """Atomically write ``data`` unless the file already holds exactly it; returns whether written."""
    if path.is_file() and path.read_bytes() == data:
        return False
    write_bytes_atomic(path, data)
    return True


def manifest_bytes(manifest: dict) -> bytes:
    # Sorted chunks: the manifest's bytes do not depend on the order chunks finished in.
    ordered = {**manifest, "chunks": dict(sorted(manifest["chunks"].items(),
                                                 key=lambda kv: tuple(map(int, kv[0].split(",")))))}
    return (json.dumps(ordered, indent=1) + "\n").encode()


def remove_dead_runs_temps(out: Path) -> None:
    """Temporary files that killed runs left in the world's folders (core.atomic names them)."""
    for folder in [out, *out.glob("tiles/*/"), *out.glob("tiles/hlod/*/")]:
        remove_dead_temps(folder)
