"""Shared fixtures: synthetic tiles written as GeoTIFFs, and the real rasters when present."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

REAL_DATA = TESTS.parents[1] / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def city_tile():
    from tiles import make_city_tile

    return make_city_tile(256, 0.5, seed=11)


@pytest.fixture(scope="session")
def city_files(tmp_path_factory, city_tile):
    from tiles import write_tile

    return write_tile(tmp_path_factory.mktemp("city"), city_tile, gsd=0.5)


def real_file(name: str) -> Path:
    path = REAL_DATA / name
    if not path.exists():
        pytest.skip(f"real data not available ({REAL_DATA} is absent in a plain clone)")
    return path
