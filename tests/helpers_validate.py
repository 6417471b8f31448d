"""Run the Khronos glTF-Validator (npm ``gltf-validator``, driven by ``gltf_validator.mjs``) from tests."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent.parent
_SCRIPT = Path(__file__).resolve().parent / "gltf_validator.mjs"


def validate_gltf(path: str | Path) -> dict:
    """The validator's report for a .glb or .gltf (external files are read beside it).

    Skips the calling test when node or the npm package is missing: they are test-only tools.
    """
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the glTF validator needs Node.js")
    if not (_ROOT / "node_modules" / "gltf-validator").is_dir():
        pytest.skip(f"gltf-validator is not installed: run `npm install` in {_ROOT}")
    proc = subprocess.run([node, str(_SCRIPT), str(path)], capture_output=True, text=True,
                          cwd=_ROOT, check=False)
    if proc.returncode:
        raise RuntimeError(f"glTF validator could not run on {path}: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def format_messages(report: dict, max_severity: int = 3) -> str:
    """One line per message of severity <= ``max_severity`` (0 error, 1 warning, 2 info, 3 hint)."""
    names = {0: "ERROR", 1: "WARNING", 2: "INFO", 3: "HINT"}
    return "\n".join(f"{names[m['severity']]} {m['code']} {m.get('pointer', '')}: {m['message']}"
                     for m in report["issues"]["messages"] if m["severity"] <= max_severity)


def assert_valid_gltf(path: str | Path) -> dict:
    """Assert the validator finds 0 errors and 0 warnings in ``path``; returns the report."""
    report = validate_gltf(path)
    issues = report["issues"]
    if issues["numErrors"] or issues["numWarnings"]:
        text = format_messages(report, max_severity=1)
        print(text)
        raise AssertionError(f"{path}: {issues['numErrors']} error(s), {issues['numWarnings']} "
                             f"warning(s) from the glTF validator:\n{text}")
    return report
