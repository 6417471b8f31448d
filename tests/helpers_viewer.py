"""Real viewers in the tests: Debian's Chromium, driven by puppeteer-core (``viewer.mjs``), opens the
small pages of ``viewer/`` (three.js GLTFLoader, 3d-tiles-renderer) served from 127.0.0.1 beside
the files under test, and reports page errors, console errors, failed requests and what was drawn.

Skips the calling test when Chromium, node or the npm packages are missing: they are test-only
tools (``.ci/run`` installs them).
"""
from __future__ import annotations

import functools
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

_TESTS = Path(__file__).resolve().parent
_ROOT = _TESTS.parent
ARTEFACTS = _ROOT / "out" / "test-artifacts" / "viewer"
_PACKAGES = ("three", "3d-tiles-renderer", "puppeteer-core")


def require_tools() -> tuple[str, str]:
    """(node, chromium) paths, or skip the calling test."""
    node, chromium = shutil.which("node"), shutil.which("chromium")
    if node is None:
        pytest.skip("node is not installed: the viewer tests drive Chromium from Node.js")
    if chromium is None:
        pytest.skip("chromium is not installed (`apt-get install chromium`, as .ci/run does)")
    missing = [p for p in _PACKAGES if not (_ROOT / "node_modules" / p).is_dir()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: run `npm install` in {_ROOT}")
    return node, chromium


class _Handler(SimpleHTTPRequestHandler):
    """/node_modules/... from the repository, /viewer/... the pages, /data/... the files under test."""

    def __init__(self, *args, data: Path, **kwargs):
        self.roots = {"node_modules": _ROOT / "node_modules", "viewer": _TESTS / "viewer", "data": data}
        super().__init__(*args, **kwargs)

    def translate_path(self, path: str) -> str:
        first, _, rest = path.split("?", 1)[0].lstrip("/").partition("/")
        root = self.roots.get(first)
        if root is None:
            return str(_TESTS / "viewer" / "missing")  # a 404, seen as a failed request
        target = (root / rest).resolve()
        return str(target) if target.is_relative_to(root.resolve()) else str(root / "missing")

    def log_message(self, *args) -> None:  # the tests report failed requests themselves
        pass


@contextmanager
def served(data: Path) -> Iterator[str]:
    """A base URL on 127.0.0.1 (a free port, never Dask's 8787) serving ``data`` under /data/."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, data=data))
    assert server.server_address[1] != 8787
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def view(pages: list[tuple[str, str]], timeout_s: float = 60) -> list[dict]:
    """Open each (url, screenshot name) in Chromium; the reports of viewer.mjs, each with its
    ``screenshot`` path under ARTEFACTS."""
    node, chromium = require_tools()
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    jobs = [{"url": url, "screenshot": str(ARTEFACTS / f"{name}.png")} for url, name in pages]
    proc = subprocess.run([node, str(_TESTS / "viewer.mjs"),
                           json.dumps({"chromium": chromium, "jobs": jobs, "timeout": timeout_s * 1000})],
                          capture_output=True, text=True, cwd=_ROOT, timeout=timeout_s * len(jobs) + 30, check=False)
    if proc.returncode:
        raise RuntimeError(f"viewer.mjs failed: {proc.stderr.strip()}")
    reports = json.loads(proc.stdout)
    for report, job in zip(reports, jobs):
        report["screenshot"] = job["screenshot"]
        print(f"screenshot: {job['screenshot']}")
    return reports


def assert_drawn(report: dict) -> None:
    """No page or console error, no failed request, something drawn, and a screenshot that is
    neither blank nor one colour."""
    problems = report["pageErrors"] + report["consoleErrors"] + report["failedRequests"]
    assert not problems, f"{report['url']}: {problems}"
    assert report.get("result", {}).get("triangles", 0) > 0, f"{report['url']} drew nothing: {report.get('result')}"
    image = np.asarray(Image.open(report["screenshot"]).convert("RGB"))
    colours = len(np.unique(image.reshape(-1, 3), axis=0))
    assert colours > 100 and image.std() > 5, f"{report['screenshot']}: {colours} colours, std {image.std():.1f}"
