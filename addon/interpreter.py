"""Which Python runs the worker, and whether it can: the preferences' Check button.

No ``bpy``. Blender's own Python (``sys.executable``) is the default; it usually lacks torch, so the
user points the preferences at a Python where ``pip install -r requirements.txt`` was run.
"""
from __future__ import annotations

import json
import subprocess
import sys

from .commands import worker_env

# Import names of satforge's runtime dependencies (pyproject.toml [project].dependencies; a test
# keeps the two lists in step). torch is the one Blender never ships.
REQUIREMENTS = ("numpy", "torch", "scipy", "PIL", "rasterio", "trimesh", "pygltflib", "xatlas",
                "fast_simplification", "pyfqmr", "huggingface_hub", "safetensors", "skimage")

# Run by the candidate interpreter: report what it can import, as one JSON line. find_spec only
# locates a module; torch is imported for real because a broken install fails only then.
_CHECK_SCRIPT = """
import importlib, importlib.util, json, sys
out = {"python": sys.version.split()[0], "missing": [], "satforge": None, "torch": None}
try:
    import satforge
    out["satforge"] = satforge.__version__
    out["satforge_path"] = satforge.__path__[0]
except Exception as exc:
    out["missing"].append("satforge")
for name in %r:
    try:
        if name == "torch":
            out["torch"] = importlib.import_module("torch").__version__
        elif importlib.util.find_spec(name) is None:
            out["missing"].append(name)
    except Exception:
        out["missing"].append(name)
print(json.dumps(out))
"""


def choose(preference: str) -> str:
    """The interpreter to run: the preference when set, else Blender's own."""
    return preference.strip() or sys.executable


def check(python: str, timeout: float = 60.0) -> dict:
    """Run ``python`` on the check script; returns {"ok", "missing", "satforge", "torch", "python",
    "error"}. Blocks up to ``timeout`` (a button press, not a generator run)."""
    try:
        proc = subprocess.run([python, "-c", _CHECK_SCRIPT % (REQUIREMENTS,)], capture_output=True, check=False,
                              text=True, timeout=timeout, env=worker_env(), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"ok": False, "missing": [], "error": f"cannot run {python}: {exc}"}
    result = _last_json(proc.stdout)
    if result is None:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ok": False, "missing": [], "error": f"{python} failed: {tail}"}
    result["ok"] = not result["missing"]
    result["error"] = ""
    return result


def _last_json(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def summary(python: str, result: dict, addon_version: str) -> tuple[bool, str]:
    """(ok, one line for the UI) from :func:`check`'s result."""
    if result.get("error"):
        return False, result["error"]
    if result["missing"]:
        return False, (f"{python} (Python {result.get('python')}) is missing: {', '.join(result['missing'])}; "
                       f"install them there: \"{python}\" -m pip install -r requirements.txt")
    text = f"OK: satforge {result['satforge']}, torch {result['torch']}, Python {result['python']}"
    if result["satforge"] != addon_version:
        text += f" (warning: the add-on is satforge {addon_version})"
    return True, text
