"""A generated scene.glb in a real viewer: three.js' GLTFLoader in Chromium, framed whole."""
from __future__ import annotations

from pathlib import Path

from helpers_viewer import assert_drawn, require_tools, served, view

from satforge.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "city_block"


def test_generated_glb_loads_and_draws_in_three_js(tmp_path):
    require_tools()
    assert main(["generate", "--rgb", str(EXAMPLE / "rgb.tif"), "--height", str(EXAMPLE / "ndsm.tif"),
                 "--semantic", str(EXAMPLE / "semantic.tif"), "--progress", "none", "--out", str(tmp_path)]) == 0
    with served(tmp_path) as base:
        (report,) = view([(f"{base}/viewer/view.html?glb=/data/scene.glb", "scene_glb")])
    assert_drawn(report)
    assert report["result"]["meshes"] == 5, report["result"]  # one per surface kind
