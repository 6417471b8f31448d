"""The command line: ``satforge generate ...`` (also ``python -m satforge``).

User mistakes print one line and exit 2; internal failures exit 1 and name the log holding the
traceback. Nothing is written before the inputs have been read and checked.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from . import __version__
from .core.contract import INPUT_ROLES, MAX_CHUNKS_PER_RUN
from .core.errors import USER_ERRNOS, InputError, os_error

EXIT_USER, EXIT_INTERNAL = 2, 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse prints usage over several lines; our contract is one line.
        raise InputError(self.prog, message, f"see '{self.prog} --help'")


def _parser() -> argparse.ArgumentParser:
    from .core.presets import available_presets
    from .core.schemes import SCHEMES

    parser = _Parser(prog="satforge", description="Satellite tiles to textured 3D meshes.")
    parser.add_argument("--version", action="version", version=f"satforge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    gen = sub.add_parser("generate", help="turn one tile into GLB / glTF / OBJ")
    gen.add_argument("--rgb", type=Path, help="orthophoto (PNG, JPEG, TIFF/GeoTIFF)")
    gen.add_argument("--height", type=Path, help="height raster: DSM or nDSM (GeoTIFF, 16-bit PNG)")
    gen.add_argument("--dtm", type=Path, help="terrain model; with it, --height is a DSM")
    gen.add_argument("--semantic", type=Path, help="land-cover map: class ids or palette colours")
    gen.add_argument("--palette", default="openearthmap", choices=sorted(SCHEMES))
    gen.add_argument("--gsd", type=float, help="metres per pixel, for files without georeference")
    gen.add_argument("--height-scale", type=float, default=1.0, help="metres per unit of an integer height PNG")
    gen.add_argument("--height-offset", type=float, default=0.0, help="metres added to integer heights")
    gen.add_argument("--preset", default="game", help=f"{' | '.join(available_presets())} or a .toml file")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--formats", default="glb", help="comma list of glb, gltf, obj")
    gen.add_argument("--generator", default="default", help=_generators_help())
    _weights_arguments(gen)
    gen.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    gen.add_argument("--progress", choices=["bar", "json", "none"], default=None,
                     help="default: bar on a terminal, else none")
    gen.add_argument("--save-scene", action="store_true", help="also write the scene model DIR/scene.npz")
    gen.add_argument("--out", type=Path, required=True, help="output folder")
    conv = sub.add_parser("convert", help="turn a saved scene.npz, or a 3DGS / 2DGS splat .ply, into GLB / glTF / OBJ")
    conv.add_argument("scene", type=Path, help="scene.npz (generate --save-scene) or a Gaussian-splat .ply")
    conv.add_argument("--up", help="a .ply's up axis: +z (default), -z, +y, -y, +x, -x")
    conv.add_argument("--scale", type=float, help="a .ply's metres per unit (default 1)")
    conv.add_argument("--georef", metavar="CRS:X,Y[,Z]", help="where a .ply's origin is (default: NAME.geo.json "
                      "beside it, else none)")
    conv.add_argument("--clip", action="store_true", help="drop a .ply's faint and isolated splats (floaters)")
    conv.add_argument("--preset", default="game")
    conv.add_argument("--formats", default="glb")
    conv.add_argument("--progress", choices=["bar", "json", "none"], default=None)
    conv.add_argument("--out", type=Path, required=True)
    _world_parser(sub)
    _estimate_parser(sub)
    _weights_parser(sub)
    return parser


def _generators_help() -> str:
    from .core.contract import GENERATORS

    return "; ".join(f"{name}: {description}" for name, (_, description) in GENERATORS.items())


def _weights_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--height-weights", metavar="SRC", help="weights for the nDSM: a file, a folder or "
                        "hf:OWNER/REPO[@REVISION]/FILE (default: the registered file in the hub cache)")
    parser.add_argument("--seg-weights", metavar="SRC", help="weights for the land cover (same forms); with only "
                        "one of the two, both rasters come from that file")
    parser.add_argument("--weights", metavar="SRC", help="Sat3DGen's folder (config.json + safetensors) or "
                        "hf:OWNER/REPO[@REVISION] (default: the registered files in the hub cache)")


def _weights_sources(args: argparse.Namespace) -> dict[str, str]:
    given = (("height", args.height_weights), ("classes", args.seg_weights), ("volume", args.weights))
    return {role: src for role, src in given if src}


def _estimate_parser(sub) -> None:
    est = sub.add_parser("estimate", help="nDSM and land-cover rasters from one orthophoto (learned model)")
    est.add_argument("--rgb", type=Path, required=True, help="orthophoto (GeoTIFF, PNG, JPEG)")
    est.add_argument("--generator", default="rs3dada", choices=["rs3dada", "sat3dgen"],
                     help="rs3dada: ndsm.tif + classes.tif; sat3dgen: density.npy + colour.npy")
    est.add_argument("--grid", type=int, default=320, help="sat3dgen: cells per side of the volume")
    _weights_arguments(est)
    est.add_argument("--patch", type=int, default=1022, help="patch side in pixels, a multiple of 14")
    est.add_argument("--stride", type=int, default=511, help="pixels between patches (smaller: more overlap)")
    est.add_argument("--tta", action="store_true", help="average four flips (4x slower)")
    est.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    est.add_argument("--progress", choices=["bar", "json", "none"], default=None)
    est.add_argument("--out", type=Path, required=True, help="output folder (files and report.json)")


def _weights_parser(sub) -> None:
    weights = sub.add_parser("weights", help="the learned generators' weights: list them, fetch them")
    action = weights.add_subparsers(dest="action", required=True, parser_class=_Parser)
    listing = action.add_parser("list", help="every known weights file and whether it is here")
    listing.add_argument("--json", action="store_true", help="one JSON object per file")
    fetch = action.add_parser("fetch", help="download a weights file (or group, e.g. rs3dada) into the hub cache")
    fetch.add_argument("name")
    for p in (listing, fetch):
        p.add_argument("--progress", choices=["bar", "json", "none"], default=None)


def _world_parser(sub) -> None:
    from .core.schemes import SCHEMES

    world = sub.add_parser("world", help="endless terrain: seamless chunks with LODs and a 3D Tiles tileset")
    world.add_argument("--out", type=Path, required=True,
                       help="world folder: created, or resumed/extended with the settings in its manifest")
    world.add_argument("--tiles", required=True, help="chunk ranges X0:X1,Y0:Y1, inclusive, negatives allowed")
    world.add_argument("--rgb", type=Path, help="orthophoto of any size, read window by window")
    world.add_argument("--height", type=Path, help="height raster: DSM or nDSM")
    world.add_argument("--dtm", type=Path, help="terrain model; with it, --height is a DSM")
    world.add_argument("--semantic", type=Path, help="land-cover map: class ids or palette colours")
    world.add_argument("--input-gsd", type=float, help="metres per pixel of inputs without georeference")
    # Settings default to None: "not given" means the manifest's value on an existing world.
    world.add_argument("--palette", choices=sorted(SCHEMES), help="class scheme (default openearthmap)")
    world.add_argument("--gsd", type=float, help="analysis grid of the generator, metres (default 0.5)")
    world.add_argument("--chunk-size", type=float, help="chunk side S, metres (default 128)")
    world.add_argument("--lods", type=int, help="levels per chunk, halving budgets (default 1)")
    world.add_argument("--seed", type=int, help="default 0")
    world.add_argument("--preset", help="game | twin | a .toml file (default game); an existing world keeps "
                       "the preset values it was made with")
    world.add_argument("--generator", help=f"a chunk-safe generator (default: default). {_generators_help()}")
    _weights_arguments(world)
    world.add_argument("--workers", type=int, default=None,
                       help="cores to use: chunks made at once, one core each (default: every core, as far as the "
                       "free memory allows; with --scheduler local: the LocalCluster's processes; a remote scheduler "
                       "has its own workers)")
    world.add_argument("--scheduler", metavar="ADDRESS", help="make the chunks on a Dask cluster: "
                       "tcp://HOST:8786, or local (default: $DASK_SCHEDULER_ADDRESS, else local processes; "
                       "needs satforge[dask])")
    world.add_argument("--wait", type=float, metavar="SECONDS", help="when another run is writing this world, "
                       "wait at most this long for it (default: until it is done; 0: refuse at once)")
    world.add_argument("--max-chunks", type=int, default=MAX_CHUNKS_PER_RUN, metavar="N",
                       help=f"refuse --tiles ranges of more chunks than this (default {MAX_CHUNKS_PER_RUN}, "
                       "64 x 64: hours of work)")
    world.add_argument("--progress", choices=["bar", "json", "none"], default=None)


def _run_world(args: argparse.Namespace, progress) -> dict:
    from .core.inputs import InputFiles, check_files
    from .core.output_dir import check_out_dir
    from .world.dask_run import connect, scheduler_address
    from .world.lock import world_lock
    from .world.run import default_workers, parse_tiles, run_world, world_settings

    workers = default_workers() if args.workers is None else args.workers
    if workers < 1:
        raise InputError("--workers", f"{workers} workers", "use 1 or more")
    if args.wait is not None and not args.wait >= 0:
        raise InputError("--wait", f"{args.wait} seconds", "use 0 or more seconds")
    tiles = parse_tiles(args.tiles, args.max_chunks)
    files = InputFiles(rgb=args.rgb, height=args.height, dtm=args.dtm, semantic=args.semantic,
                       palette=args.palette or "openearthmap", gsd=args.input_gsd, gsd_flag="--input-gsd")
    if any(getattr(files, role) is not None for role in INPUT_ROLES):
        check_files(files)
    check_out_dir(args.out)
    options = {"gsd": args.gsd, "chunk_size": args.chunk_size, "lods": args.lods, "seed": args.seed,
               "preset": args.preset, "palette": args.palette, "generator": args.generator,
               "weights": _weights_sources(args) or None}
    address = scheduler_address(args.scheduler)
    def waiting(holder: str) -> None:
        message = f"waiting for the other run writing this world ({holder})"
        if progress.mode == "json":
            progress.update(0.0, message)
        elif progress.mode == "bar":
            print(f"satforge: {message}", file=sys.stderr)

    # Settings are read under the lock: a run that waited sees the world the other run left.
    with world_lock(args.out, args.wait, waiting):
        spec, preset = world_settings(args.out, files, options)
        if address is None:
            return run_world(args.out, spec, preset, tiles, workers, progress)
        # Connected before run_world writes anything: an unreachable cluster leaves no trace.
        with connect(address, workers) as client:
            return run_world(args.out, spec, preset, tiles, workers, progress, client)


def _formats(text: str) -> list[str]:
    from .core.contract import EXPORT_FORMATS

    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in EXPORT_FORMATS]
    if bad or not formats:
        raise InputError("--formats", f"unknown format {', '.join(bad) or '(none)'}",
                         f"use a comma list of {', '.join(EXPORT_FORMATS)}")
    return formats


def _run(args: argparse.Namespace, progress) -> dict:
    from .core.presets import load_preset
    from .pipeline import GenerateJob, run_convert, run_generate

    if args.command == "world":
        return _run_world(args, progress)
    if args.command == "weights":
        return _run_weights(args, progress)
    if args.command == "estimate":
        from .estimate import EstimateJob, run_estimate

        job = EstimateJob(rgb=args.rgb, out_dir=args.out, generator=args.generator, patch=args.patch,
                          stride=args.stride, tta=args.tta, grid=args.grid, device=args.device,
                          weights=_weights_sources(args))
        return run_estimate(job, progress)
    preset = load_preset(args.preset)
    formats = _formats(args.formats)
    if args.command == "convert":
        return run_convert(args.scene, args.out, preset, formats, progress, _placement(args)).to_dict()
    from .core.inputs import InputFiles

    files = InputFiles(rgb=args.rgb, height=args.height, dtm=args.dtm, semantic=args.semantic,
                       palette=args.palette, gsd=args.gsd, height_scale=args.height_scale,
                       height_offset=args.height_offset)
    job = GenerateJob(files=files, out_dir=args.out, preset=preset, seed=args.seed, formats=formats,
                      generator=args.generator, device=args.device, save_scene=args.save_scene,
                      weights=_weights_sources(args))
    return run_generate(job, progress).to_dict()


def _placement(args: argparse.Namespace):
    """Where a splat .ply goes (options that only a .ply takes are refused for a scene.npz)."""
    from .core.splat_import import Placement, check_placement, parse_georef, placement_beside

    given = {"--up": args.up, "--scale": args.scale, "--georef": args.georef, "--clip": args.clip or None}
    if args.scene.suffix.lower() != ".ply":
        wrong = [option for option, value in given.items() if value is not None]
        if wrong:
            raise InputError(wrong[0], f"applies to splat .ply files, not {args.scene.name}", "leave it out")
        return None
    georef = parse_georef(args.georef) if args.georef else placement_beside(args.scene)
    placement = Placement(up=args.up or "+z", metres_per_unit=1.0 if args.scale is None else args.scale,
                          georef=georef, clip=args.clip)
    check_placement(placement)
    return placement


def _run_weights(args: argparse.Namespace, progress) -> dict:
    from .core.weights import fetch_weights, list_weights

    start = time.perf_counter()
    if args.action == "list":
        rows = list_weights()
        for row in rows:
            if args.json:
                print(json.dumps(row))
            else:
                state = f"present  sha256 {row['sha256']}" if row["present"] else "missing"
                revision = row["revision"] if row["pinned"] else f"{row['revision']} (unpinned)"
                print(f"{row['name']:<16} {row['source']}  revision {revision}  "
                      f"{(row['size'] or 0) / 1e9:.2f} GB  {state}")
        return {"outputs": [], "weights": rows, "total_seconds": round(time.perf_counter() - start, 3)}
    progress.begin("fetch")
    paths = fetch_weights(args.name, progress.update if progress.mode == "json" else None)
    progress.end("fetch")
    return {"outputs": [str(p) for p in paths], "total_seconds": round(time.perf_counter() - start, 3)}


def _summary(args: argparse.Namespace, report: dict) -> str | None:
    """The closing line on a terminal."""
    seconds = f"in {report['total_seconds']:.1f} s"
    if args.command == "weights":
        return None if args.action == "list" else f"satforge: {args.name} is in the hub cache: " + \
            ", ".join(report["outputs"])
    if args.command == "estimate":
        return f"satforge: wrote {', '.join(report['outputs'])} to {args.out} {seconds}"
    return (f"satforge: wrote {', '.join(report['outputs'])} to {args.out} {seconds} "
            f"({report['triangles']['total']} triangles)")


def _joined_ranges(argv: list[str]) -> list[str]:
    """``--tiles -2:3,-1:0`` -> ``--tiles=-2:3,-1:0``: argparse takes a value starting with '-' for
    an option, but negative chunk ranges are the normal case."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--tiles" and arg.startswith("-") and arg[1:2].isdigit():
            out[-1] = f"--tiles={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from .core.progress import Progress

    progress = None
    try:
        args = _parser().parse_args(_joined_ranges(sys.argv[1:] if argv is None else list(argv)))
        mode = args.progress or ("bar" if sys.stderr.isatty() else "none")
        progress = Progress(mode)
        progress.started(args.command)
        try:
            report = _run(args, progress)
        except OSError as err:
            if err.errno not in USER_ERRNOS:
                raise
            raise os_error(err, getattr(args, "out", None)) from None
    except InputError as err:
        if progress is not None:
            progress.finish("error", message=str(err))
        print(f"satforge: error: {err}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt:
        print("satforge: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # an internal failure: keep the traceback for the bug report
        log = Path(tempfile.gettempdir()) / f"satforge-error-{time.strftime('%Y%m%d-%H%M%S')}.log"
        log.write_text(traceback.format_exc())
        if progress is not None:
            progress.finish("error", message=f"internal error: {err}", log=str(log))
        print(f"satforge: internal error: {type(err).__name__}: {err} (traceback in {log})", file=sys.stderr)
        return EXIT_INTERNAL
    progress.finish("done", outputs=report["outputs"], report=json.loads(json.dumps(report)))
    summary = _summary(args, report)
    if progress.mode != "json" and summary:
        print(summary)
    return 0
