"""The main job: input files -> scene -> meshes -> atlas -> baked texture -> files, with a report.

Each stage is timed and its peak memory recorded; data flows forward only.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .core.contract import OUTPUT_STEM, REPORT, RESULT_FILES
from .core.inputs import InputFiles, check_files, load_tile
from .core.output_dir import check_out_dir, staged_folder
from .core.presets import Preset
from .core.progress import Progress, peak_rss_mb
from .core.scene import Scene
from .core.schemes import get_scheme
from .exporters import write_scene_files

if TYPE_CHECKING:
    from .core.splat_import import Placement


@dataclass
class GenerateJob:
    files: InputFiles
    out_dir: Path
    preset: Preset
    seed: int = 0
    formats: Sequence[str] = ("glb",)
    generator: str = "default"
    device: str = "auto"
    save_scene: bool = False
    weights: dict[str, str] = field(default_factory=dict)  # learned generators: role -> weights source


@dataclass
class Report:
    stages: dict[str, dict] = field(default_factory=dict)
    data: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        total = round(sum(s["seconds"] for s in self.stages.values()), 3)
        peak = max((s["peak_rss_mb"] for s in self.stages.values()), default=0)
        return {"satforge": __version__, "total_seconds": total, "peak_rss_mb": peak,
                "stages": self.stages, **self.data}


def _stage(report: Report, progress: Progress, name: str, work: Callable[[], object]):
    progress.begin(name)
    start = time.perf_counter()
    result = work()
    report.stages[name] = {"seconds": round(time.perf_counter() - start, 3), "peak_rss_mb": peak_rss_mb()}
    progress.end(name)
    return result


def run_generate(job: GenerateJob, progress: Progress) -> Report:
    """Run every stage; raises core.errors.InputError for user mistakes before writing anything.
    The files, scene.npz and report.json included, are committed all at once (``staged_folder``)."""
    from .core.generators import GenerateSettings, available_generators, get_generator

    report = Report()
    if job.generator not in available_generators():
        get_generator(job.generator)  # raises the one-line error naming the choices
    check_files(job.files)
    check_out_dir(job.out_dir)
    tile = _stage(report, progress, "read", lambda: load_tile(job.files))
    generator = get_generator(job.generator)  # imports torch: only once the inputs are known good
    settings = GenerateSettings(seed=job.seed, device=job.device, weights=job.weights)
    scene: Scene = _stage(report, progress, "generate",
                          lambda: generator.generate(tile, settings, progress.update))
    report.data["inputs"] = tile.sources
    _convert_and_export(scene, job.preset, job.out_dir, job.formats, report, progress, job.save_scene)
    return report


def run_convert(scene_path: Path, out_dir: Path, preset: Preset, formats: Sequence[str],
                progress: Progress, placement: Placement | None = None) -> Report:
    """The second half on its own: a saved scene.npz, or a Gaussian-splat .ply placed by
    ``placement`` (core.splat_import), -> files."""
    check_out_dir(out_dir)
    report = Report()
    if Path(scene_path).suffix.lower() == ".ply":
        scene, imported = _stage(report, progress, "read", lambda: _splat_scene(scene_path, placement))
        report.data["splats"] = imported
    else:
        scene = _stage(report, progress, "read", lambda: Scene.load(scene_path))
    report.data["inputs"] = {"scene": str(scene_path)}
    _convert_and_export(scene, preset, out_dir, formats, report, progress)
    return report


def _splat_scene(path: Path, placement: Placement | None) -> tuple[Scene, dict]:
    from .core.inputs.splat_ply import read_splat_ply
    from .core.splat_import import Placement, splat_scene  # scipy.spatial: only for splat files

    return splat_scene(read_splat_ply(path), placement or Placement(), str(path))


def _convert_and_export(scene: Scene, preset: Preset, out_dir: Path, formats: Sequence[str],
                        report: Report, progress: Progress, save_scene: bool = False) -> None:
    """Mesh, unwrap, bake; then the files, the scene.npz when asked and the report, all at once."""
    textured = convert_scene(scene, preset, report, progress)
    with staged_folder(out_dir, replaces=RESULT_FILES) as stage:
        extra = [f"{OUTPUT_STEM}.npz"] if save_scene else []
        if save_scene:
            scene.save(stage / extra[0])
        paths = _stage(report, progress, "export", lambda: write_scene_files(textured, stage, OUTPUT_STEM, formats))
        _write_report(stage / REPORT, scene, textured, preset, paths, [*extra, REPORT], report)


def _write_report(path: Path, scene: Scene, textured, preset: Preset, paths: dict[str, list[Path]],
                  extra: Sequence[str], report: Report) -> None:
    report.data.update({
        "estimated": scene.provenance, "generator": scene.generator, "seed": scene.seed,
        "preset": preset.name,
        "tile": {"width_m": scene.georef.width_m, "height_m": scene.georef.height_m,
                 "gsd": scene.georef.gsd, "crs": scene.georef.crs},
        "triangles": {**{m.kind.label: len(m.faces) for m in textured.meshes},
                      "total": textured.triangle_count},
        "texture": {"width": int(textured.atlas.shape[1]), "height": int(textured.atlas.shape[0]),
                    "texels_per_metre": textured.extras["texels_per_metre"]},
        "outputs": sorted({p.name for ps in paths.values() for p in ps}) + list(extra),
    })
    path.write_bytes(json.dumps(report.to_dict(), indent=2).encode())


def convert_scene(scene: Scene, preset: Preset, report: Report, progress: Progress):
    """Scene -> TexturedScene: mesh per kind, one atlas, baked albedo (stages mesh, unwrap, bake)."""
    from .core.meshes import TexturedScene
    from .core.texturing import Budget, mesh_unwrap_bake

    area = scene.georef.width_m * scene.georef.height_m
    budget = Budget(triangles=preset.triangle_budget(area), texels=preset.texel_budget(area),
                    texels_per_metre=preset.texels_per_image_pixel / scene.image_gsd)
    atlas, image = mesh_unwrap_bake(scene, budget, stage=lambda name, work: _stage(report, progress, name, work),
                                    progress=progress.update)
    scheme = get_scheme(scene.scheme)
    return TexturedScene(meshes=atlas.meshes, atlas=image, georef=scene.georef, scheme=scheme.name,
                         class_names=scheme.names, feature_ids=preset.feature_ids,
                         extras={"generator": scene.generator, "seed": scene.seed, "preset": preset.name,
                                 "provenance": scene.provenance,
                                 "texels_per_metre": round(atlas.texels_per_metre, 4)})
