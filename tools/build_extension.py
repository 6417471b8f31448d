"""Build the installable Blender extension zip: ``python tools/build_extension.py [--output-dir dist]``.

With a ``blender`` binary on PATH (or given with ``--blender``) this runs Blender's own builder,
``blender --command extension build``, which also validates the manifest. Without one it writes the
same kind of zip itself: the repository root's files at the zip's root (``blender_manifest.toml``
first), minus what the manifest's ``[build] paths_exclude_pattern`` excludes (gitignore-style:
``name/`` matches a folder anywhere, ``/name/`` only at the root, ``*`` within one path part).
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = "blender_manifest.toml"


class Pattern:
    """One gitignore-style exclude pattern (no ``!`` negation, which our manifest does not use)."""

    def __init__(self, text: str):
        if text.startswith("!"):
            raise ValueError(f"paths_exclude_pattern {text!r}: negation is not supported by this builder")
        self.directory_only = text.endswith("/")
        body = text.strip("/")
        # A slash at the start or in the middle anchors the pattern at the root (as in gitignore).
        self.anchored = text.startswith("/") or "/" in body
        self.parts = body.split("/")

    def matches(self, rel: str, is_dir: bool) -> bool:
        """``rel``: a path relative to the root with forward slashes."""
        if self.directory_only and not is_dir:
            return False
        parts = rel.split("/")
        if self.anchored:
            return len(parts) == len(self.parts) and all(map(fnmatch.fnmatchcase, parts, self.parts))
        return len(self.parts) == 1 and fnmatch.fnmatchcase(parts[-1], self.parts[0])


def read_manifest(root: Path = ROOT) -> dict:
    return tomllib.loads((root / MANIFEST).read_text(encoding="utf-8"))


def included_files(root: Path, patterns: list[str]) -> list[str]:
    """Files to package, relative to ``root``, sorted; an excluded folder is not descended into."""
    rules = [Pattern(p) for p in patterns]
    excluded = lambda rel, is_dir: any(rule.matches(rel, is_dir) for rule in rules)
    files = []
    for folder, dirs, names in os.walk(root):
        base = Path(folder).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        dirs[:] = sorted(d for d in dirs if not excluded(prefix + d, True))
        files += [prefix + n for n in sorted(names) if not excluded(prefix + n, False)]
    return sorted(files, key=lambda rel: (rel != MANIFEST, rel))


def build_zip(root: Path, output: Path) -> Path:
    """Our own builder: ``output`` zip with the package files at its root."""
    manifest = read_manifest(root)
    files = included_files(root, manifest.get("build", {}).get("paths_exclude_pattern", []))
    if MANIFEST not in files or "__init__.py" not in files:
        raise SystemExit(f"{root} is not an extension: {MANIFEST} and __init__.py must be at its root")
    output.parent.mkdir(parents=True, exist_ok=True)
    part = output.with_name(f".{output.name}.part")
    with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel in files:
            archive.write(root / rel, rel)
    os.replace(part, output)
    return output


def build_with_blender(blender: str, root: Path, output: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([blender, "--factory-startup", "--command", "extension", "build", "--source-dir", str(root),
                    "--output-filepath", str(output)], check=True)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=ROOT / "dist")
    parser.add_argument("--blender", default=shutil.which("blender"),
                        help="Blender binary (default: `blender` on PATH); without one, build the zip here")
    parser.add_argument("--no-blender", action="store_true", help="always use the built-in zip builder")
    args = parser.parse_args(argv)
    manifest = read_manifest(ROOT)
    output = args.output_dir.resolve() / f"{manifest['id']}-{manifest['version']}.zip"
    if args.blender and not args.no_blender:
        build_with_blender(args.blender, ROOT, output)
        how = f"built by {args.blender}"
    else:
        build_zip(ROOT, output)
        how = "built without Blender (no blender binary found)"
    print(f"{output} ({how})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
