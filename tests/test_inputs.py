"""Read-inputs stage: files -> Tile. Synthetic rasters written per test, plus the real GeoTIFFs."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning
from rasterio.features import rasterize
from rasterio.warp import transform_geom
from tiles import make_city_tile, write_tile  # tests/ is on sys.path under pytest

from satforge.core.errors import InputError
from satforge.core.inputs import InputFiles, load_tile

REAL = Path(__file__).resolve().parents[1].parent / "shared/data/real"
WEST, NORTH = 500_000.0, 4_000_000.0


def real(name: str) -> Path:
    path = REAL / name
    if not path.exists():
        pytest.skip(f"real test data {path} is not available in this checkout")
    return path


def tif(path: Path, data: np.ndarray, gsd: float | None = 1.0, crs: str | None = "EPSG:32633",
        west: float = WEST, north: float = NORTH, south_up: bool = False, **profile) -> Path:
    """Write a (bands, rows, cols) or (rows, cols) GeoTIFF; gsd=None writes no georeference."""
    bands = data[None] if data.ndim == 2 else data
    if gsd is None:
        transform, crs = None, None
    elif south_up:  # stored bottom row first, positive pixel height
        transform = Affine(gsd, 0, west, 0, gsd, north - gsd * bands.shape[1])
        bands = bands[:, ::-1]
    else:
        transform = Affine(gsd, 0, west, 0, -gsd, north)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", width=bands.shape[2], height=bands.shape[1],
                           count=bands.shape[0], dtype=bands.dtype, crs=crs, transform=transform,
                           **profile) as ds:
            ds.write(bands)
    return path


def png(path: Path, data: np.ndarray) -> Path:
    """(rows, cols[, bands]) 8-bit or 16-bit single-band image through Pillow (no georeference)."""
    Image.fromarray(data).save(path)
    return path


def refused(files: InputFiles, subject: object, *words: str, folder: Path | None = None) -> str:
    """load_tile must raise one InputError line naming the subject and a fix, and write nothing."""
    before = sorted(folder.rglob("*")) if folder else []
    with pytest.raises(InputError) as info:
        load_tile(files)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{subject}: ")
    assert info.value.fix and msg.endswith(f"({info.value.fix})")
    for word in words:
        assert word in msg, msg
    if folder:
        assert sorted(folder.rglob("*")) == before
    return msg


def photo(rows: int = 40, cols: int = 50, seed: int = 0) -> np.ndarray:
    """A (3, rows, cols) uint8 image with no pure black pixel."""
    return np.random.default_rng(seed).integers(20, 235, (3, rows, cols), dtype=np.uint8)


# --- real files -----------------------------------------------------------------------------------

def test_real_dutch_aerial_photo():
    tile = load_tile(InputFiles(rgb=real("nl_aerial_rgb_0p25m.tif")))
    assert tile.georef.crs == "EPSG:28992" and tile.georef.crs_units == "metre"
    # The analysis grid stops at 0.5 m (MIN_ANALYSIS_GSD); the photo keeps its 0.25 m.
    assert tile.gsd == pytest.approx(0.5) and tile.image_gsd == pytest.approx(0.25)
    assert tile.shape == (500, 500) and tile.rgb.shape == (1000, 1000, 3)
    assert tile.rgb.dtype == np.float32 and 0 <= tile.rgb.min() and tile.rgb.max() <= 1
    assert (tile.georef.easting, tile.georef.northing) == (127500.0, 428125.0)
    assert tile.image_valid.all() and tile.valid.all() and tile.nir is None and tile.height is None
    assert tile.name == "nl_aerial_rgb_0p25m"


def test_real_manila_black_border_is_masked():
    path = real("manila_ortho_rgb_0p1m.tif")
    tile = load_tile(InputFiles(rgb=path))
    assert tile.georef.crs == "EPSG:3395" and tile.image_gsd == pytest.approx(0.1, abs=1e-3)
    assert tile.gsd == pytest.approx(0.5, abs=1e-3)
    with rasterio.open(path) as ds:
        raw = ds.read()
    assert not tile.image_valid[0, 0] and tile.image_valid[1024, 1024]  # frame in the north-west
    assert 0.17 < 1 - tile.image_valid.mean() < 0.20                    # ~18 % of the image is frame
    black = (raw == 0).all(axis=0)
    assert black[~tile.image_valid].mean() > 0.97          # what is masked is the black frame ...
    dark = tile.rgb.max(axis=-1) <= 4 / 255
    assert dark[tile.image_valid].mean() < 1e-3            # ... and almost nothing black is textured
    # Analysis cells (0.5 m, 410 x 410) are valid where the photo has data near the cell centre.
    assert tile.valid.shape == (410, 410)
    assert (tile.valid == tile.image_valid[2::5, 2::5][:410, :410]).mean() > 0.99


def test_real_naip_fourth_band_is_near_infrared():
    path = real("naip_milwaukee_rgbn_0p6m.tif")
    tile = load_tile(InputFiles(rgb=path))
    with rasterio.open(path) as ds:
        raw = ds.read()
    assert tile.georef.crs == "EPSG:26916" and tile.gsd == pytest.approx(0.6, abs=0.01)
    assert tile.rgb.shape == (143, 175, 3) and tile.nir.shape == (143, 175)
    np.testing.assert_allclose(tile.nir, raw[3] / 255, atol=1e-6)      # not used as alpha ...
    assert tile.image_valid.all()                                      # ... so nothing is masked
    np.testing.assert_allclose(tile.rgb[0, 0], raw[:3, 0, 0] / 255, atol=1e-6)  # row 0 = north


def test_real_alexandria_dsm_minus_dtm():
    dsm_path, dtm_path = real("alexandria_dsm_2m.tif"), real("alexandria_dtm_2m.tif")
    tile = load_tile(InputFiles(height=dsm_path, dtm=dtm_path))
    assert tile.georef.crs == "EPSG:26918" and tile.gsd == 2.0 and tile.shape == (259, 283)
    with rasterio.open(dsm_path) as a, rasterio.open(dtm_path) as b:
        dsm, dtm = a.read(1, masked=True), b.read(1, masked=True)
    assert tile.georef.elevation == pytest.approx(np.ma.median(dtm), abs=0.05)
    known = ~np.ma.getmaskarray(dtm)
    np.testing.assert_allclose(tile.height[known], np.clip(dsm - dtm, 0, None)[known], atol=1e-4)
    np.testing.assert_allclose((tile.ground + tile.georef.elevation)[known], dtm[known], atol=1e-3)
    assert tile.valid.all() and np.isfinite(tile.height).all()  # DTM holes filled, DSM is complete
    assert tile.sources == {"height": str(dsm_path), "dtm": str(dtm_path)}


def test_real_alexandria_buildings_stand_out():
    """What a user checks: the published footprints are tall, the rest is low. (The published
    hag.tif is not DSM - DTM: it differs by a median 4.4 m, 7.5 m even outside buildings, so this
    is compared with the footprints, and with hag.tif only by correlation.)"""
    tile = load_tile(InputFiles(height=real("alexandria_dsm_2m.tif"), dtm=real("alexandria_dtm_2m.tif")))
    footprints = json.loads(real("alexandria_buildings.geojson").read_text())["features"]
    with rasterio.open(real("alexandria_ndsm_2m.tif")) as ds:
        hag, transform = ds.read(1), ds.transform
    shapes = [transform_geom("OGC:CRS84", "EPSG:26918", f["geometry"]) for f in footprints]
    inside = rasterize(shapes, out_shape=tile.shape, transform=transform) > 0
    assert 0.05 < inside.mean() < 0.15
    assert np.median(tile.height[inside]) > 5 and np.median(tile.height[~inside]) < 2
    assert np.corrcoef(tile.height.ravel(), hag.ravel())[0, 1] > 0.6


def test_real_ndsm_alone_is_height_above_ground():
    path = real("alexandria_ndsm_2m.tif")
    tile = load_tile(InputFiles(height=path))
    with rasterio.open(path) as ds:
        np.testing.assert_array_equal(tile.height, ds.read(1))
    assert tile.ground is None and tile.georef.elevation == 0.0


def test_real_dsm_alone_is_terrain():
    path = real("alexandria_dsm_2m.tif")
    tile = load_tile(InputFiles(height=path))
    with rasterio.open(path) as ds:
        dsm = ds.read(1)
    assert tile.georef.elevation == pytest.approx(np.median(dsm))
    np.testing.assert_allclose(tile.ground + tile.georef.elevation, dsm, atol=1e-4)
    assert (tile.height == 0).all()


def test_real_texas_dem_in_degrees():
    path = real("texas_dem_90m.tif")
    tile = load_tile(InputFiles(height=path))
    g = tile.georef
    assert g.crs == "EPSG:4326" and g.crs_units == "degree"
    assert (g.easting, g.northing) == pytest.approx((-97.332, 32.672), abs=1e-3)
    assert 80 < g.gsd < 92                                    # 3 arc-seconds, ~78 m east x 92 m north
    assert g.width_m == pytest.approx(367 * 0.00083333 * 111320 * np.cos(np.radians(32.672)), rel=1e-3)
    assert g.height_m == pytest.approx(359 * 0.00083333 * 110540, rel=1e-3)
    with rasterio.open(path) as ds:
        dem = ds.read(1)
    assert 150 < g.elevation < 260
    np.testing.assert_allclose(tile.ground + g.elevation, dem)
    assert tile.ground[0].mean() == pytest.approx(dem[0].mean() - g.elevation)  # row 0 = north


def test_real_rasters_in_different_crs_are_refused():
    photo_path, dsm = real("nl_aerial_rgb_0p25m.tif"), real("alexandria_dsm_2m.tif")
    refused(InputFiles(rgb=photo_path, height=dsm), dsm, "EPSG:26918", "EPSG:28992", "reproject")


def test_real_truncated_geotiff_is_refused(tmp_path):
    data = real("alexandria_dsm_2m.tif").read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 2])
    refused(InputFiles(height=cut), cut, "corrupt or truncated", "re-download", folder=tmp_path)


# --- orientation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("south_up", [False, True])
def test_row_zero_is_north(tmp_path, south_up):
    """A north-high gradient (9 m north, 0 m south) must come out with row 0 = 9 m."""
    ramp = np.repeat(np.linspace(9, 0, 10, dtype=np.float32)[:, None], 8, axis=1)
    path = tif(tmp_path / "ndsm.tif", ramp, south_up=south_up)
    tile = load_tile(InputFiles(height=path))
    assert tile.height[0] == pytest.approx(9) and tile.height[-1] == pytest.approx(0)
    assert tile.georef.northing == NORTH - 5 and tile.georef.easting == WEST + 4


def test_photo_row_zero_is_north_and_values_kept(tmp_path):
    img = photo()
    img[:, 0] = [[200], [30], [30]]  # a red north edge
    tile = load_tile(InputFiles(rgb=tif(tmp_path / "p.tif", img, compress="lzw")))
    np.testing.assert_allclose(tile.rgb, np.moveaxis(img, 0, -1) / 255, atol=1e-6)
    assert tile.rgb[0, :, 0].min() > 0.75


# --- orthophoto formats ---------------------------------------------------------------------------

@pytest.mark.parametrize("compress,tol", [("deflate", 1e-6), ("lzw", 1e-6), ("jpeg", 0.08)])
def test_compressed_geotiffs(tmp_path, compress, tol):
    img = np.repeat(np.repeat(photo(8, 10), 8, axis=1), 8, axis=2)  # blocky: JPEG keeps it well
    path = tif(tmp_path / "p.tif", img, gsd=0.3, compress=compress, photometric="RGB")
    tile = load_tile(InputFiles(rgb=path))
    assert tile.image_gsd == pytest.approx(0.3) and tile.rgb.shape == (64, 80, 3)
    assert np.median(np.abs(tile.rgb - np.moveaxis(img, 0, -1) / 255)) <= tol


def test_sixteen_bit_full_range_is_divided_by_65535(tmp_path):
    img = photo().astype(np.uint16) * 257
    tile = load_tile(InputFiles(rgb=tif(tmp_path / "p.tif", img)))
    np.testing.assert_allclose(tile.rgb, np.moveaxis(img, 0, -1) / 65535, atol=1e-6)


def test_sixteen_bit_sensor_counts_are_stretched(tmp_path):
    img = np.random.default_rng(1).integers(100, 3000, (3, 40, 50)).astype(np.uint16)  # 12-bit data
    tile = load_tile(InputFiles(rgb=tif(tmp_path / "p.tif", img)))
    lo, hi = np.percentile(img, [2, 98])
    np.testing.assert_allclose(tile.rgb, np.clip((np.moveaxis(img, 0, -1) - lo) / (hi - lo), 0, 1),
                               atol=1e-5)
    assert tile.rgb.mean() == pytest.approx(0.5, abs=0.05)  # not black


def test_png_alpha_zero_is_no_data(tmp_path):
    rgba = np.dstack([np.moveaxis(photo(), 0, -1), np.full((40, 50), 255, np.uint8)])
    rgba[:10, :, 3] = 0
    tile = load_tile(InputFiles(rgb=png(tmp_path / "p.png", rgba), gsd=0.5))
    assert not tile.image_valid[:10].any() and tile.image_valid[10:].all() and tile.nir is None
    assert np.array_equal(tile.valid, tile.image_valid) and tile.georef.crs is None


def test_geotiff_fourth_band(tmp_path):
    """Labelled alpha with 0/255 values: alpha. Unlabelled (GDAL 'undefined'): near-infrared."""
    img = np.concatenate([photo(), np.full((1, 40, 50), 255, np.uint8)])
    img[3, :5] = 0
    alpha = load_tile(InputFiles(rgb=tif(tmp_path / "a.tif", img, photometric="RGB", alpha="YES")))
    assert not alpha.image_valid[:5].any() and alpha.image_valid[5:].all() and alpha.nir is None
    img[3] = np.linspace(0, 250, 50, dtype=np.uint8)
    nir = load_tile(InputFiles(rgb=tif(tmp_path / "n.tif", img, photometric="RGB")))
    assert nir.image_valid.all()
    np.testing.assert_allclose(nir.nir[0], img[3, 0] / 255, atol=1e-6)


def test_nodata_value_and_black_frame_are_masked(tmp_path):
    img = photo(60, 60)
    img[:, :, :6] = 0              # undeclared black frame on the west edge
    img[:, 30:34, 30:34] = 0       # a black object inside the image: kept
    img[:, -3:, :] = 7             # declared nodata on the south edge
    tile = load_tile(InputFiles(rgb=tif(tmp_path / "p.tif", img, nodata=7)))
    v = tile.image_valid
    assert not v[:, :6].any() and not v[-3:].any()
    assert v[30:34, 30:34].all() and v[:-3, 6:].all()


def test_internal_mask_band_is_no_data(tmp_path):
    """JPEG-compressed GeoTIFFs usually carry no-data as a GDAL internal mask band."""
    path = tif(tmp_path / "p.tif", photo(32, 32), compress="jpeg", photometric="YCBCR")
    mask = np.full((32, 32), 255, np.uint8)
    mask[:, 24:] = 0
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "r+") as ds:
        ds.write_mask(mask)
    tile = load_tile(InputFiles(rgb=path))
    assert np.array_equal(tile.image_valid, mask > 0)


def test_photo_needs_three_or_four_bands(tmp_path):
    path = tif(tmp_path / "gray.tif", photo()[0])
    refused(InputFiles(rgb=path), path, "3 or 4 bands", "--height or --semantic", folder=tmp_path)


def test_photo_must_be_integer(tmp_path):
    path = tif(tmp_path / "f.tif", photo().astype(np.float32))
    refused(InputFiles(rgb=path), path, "8- or 16-bit", "gdal_translate", folder=tmp_path)


# --- heights --------------------------------------------------------------------------------------

def test_sixteen_bit_png_height_with_scale_and_offset(tmp_path):
    raw = np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) * 100
    path = png(tmp_path / "h.png", raw)
    tile = load_tile(InputFiles(height=path, gsd=0.5, height_scale=0.01, height_offset=-1.0))
    np.testing.assert_allclose(tile.height, np.clip(raw * 0.01 - 1.0, 0, None), atol=1e-4)
    assert tile.gsd == 0.5 and tile.georef.width_m == 8.0 and tile.georef.crs is None


def test_height_nodata_becomes_nan_and_invalid(tmp_path):
    ndsm = np.zeros((10, 10), np.float32)
    ndsm[6:, 6:] = 4.0
    ndsm[2:4, 2:4] = -9999
    tile = load_tile(InputFiles(height=tif(tmp_path / "h.tif", ndsm, nodata=-9999)))
    assert np.isnan(tile.height[2:4, 2:4]).all() and not tile.valid[2:4, 2:4].any()
    assert tile.valid.sum() == 96 and np.array_equal(tile.height[tile.valid], ndsm[tile.valid])


def test_dtm_gives_ndsm_and_ground(tmp_path):
    dtm = np.linspace(100, 110, 12, dtype=np.float32)[None].repeat(10, axis=0)
    dsm = dtm.copy()
    dsm[4:6, 4:6] += 8  # a building
    tile = load_tile(InputFiles(height=tif(tmp_path / "dsm.tif", dsm), dtm=tif(tmp_path / "dtm.tif", dtm)))
    assert tile.height[4:6, 4:6] == pytest.approx(8) and tile.height.sum() == pytest.approx(32)
    assert tile.georef.elevation == pytest.approx(np.median(dtm))
    np.testing.assert_allclose(tile.ground + tile.georef.elevation, dtm, atol=1e-4)


def test_dtm_holes_and_dsm_holes(tmp_path):
    """A DTM gap under valid DSM is filled (nDSM stays known); a DSM gap over valid DTM keeps ground."""
    dtm = np.full((8, 8), 20.0, np.float32)
    dsm = dtm + 5
    dtm[1, 1] = -9999
    dsm[6, 6] = -9999
    tile = load_tile(InputFiles(height=tif(tmp_path / "dsm.tif", dsm, nodata=-9999),
                                dtm=tif(tmp_path / "dtm.tif", dtm, nodata=-9999)))
    assert tile.height[1, 1] == pytest.approx(5) and np.isnan(tile.height[6, 6])
    assert tile.ground[6, 6] == pytest.approx(0) and tile.valid.all()


def test_coarse_dtm_is_upsampled_onto_fine_dsm(tmp_path):
    dtm = np.full((5, 6), 50.0, np.float32)
    dsm = np.full((10, 12), 53.0, np.float32)
    tile = load_tile(InputFiles(height=tif(tmp_path / "dsm.tif", dsm, gsd=1.0),
                                dtm=tif(tmp_path / "dtm.tif", dtm, gsd=2.0)))
    assert tile.shape == (10, 12) and tile.height == pytest.approx(3)


def test_heights_average_when_the_photo_is_coarser(tmp_path):
    """Analysis GSD is never finer than half the photo's: a 0.5 m DSM under a 2 m photo -> 1 m."""
    ndsm = np.arange(32 * 40, dtype=np.float32).reshape(32, 40) % 7
    ndsm[0, 0] = -9999  # ignored by the average, not spread
    tile = load_tile(InputFiles(rgb=tif(tmp_path / "p.tif", photo(8, 10), gsd=2.0),
                                height=tif(tmp_path / "h.tif", ndsm, gsd=0.5, nodata=-9999)))
    assert tile.gsd == 1.0 and tile.shape == (16, 20) and tile.image_gsd == 2.0
    blocks = np.where(ndsm == -9999, np.nan, ndsm).reshape(16, 2, 20, 2)
    np.testing.assert_allclose(tile.height, np.nanmean(blocks, axis=(1, 3)), atol=1e-5)


def test_height_needs_one_band(tmp_path):
    path = tif(tmp_path / "h.tif", photo())
    refused(InputFiles(height=path), path, "1 band", "--rgb", folder=tmp_path)


def test_all_no_data_is_refused(tmp_path):
    path = tif(tmp_path / "h.tif", np.full((8, 8), -9999, np.float32), nodata=-9999)
    refused(InputFiles(height=path), path, "every pixel is no-data", "nodata", folder=tmp_path)


# --- semantic maps --------------------------------------------------------------------------------

def test_semantic_ids(tmp_path):
    ids = np.random.default_rng(0).integers(0, 9, (20, 30)).astype(np.uint8)
    tile = load_tile(InputFiles(semantic=tif(tmp_path / "s.tif", ids, gsd=0.5)))
    assert tile.classes.dtype == np.uint8 and np.array_equal(tile.classes, ids)
    assert np.array_equal(tile.valid, ids > 0) and tile.scheme.name == "openearthmap"


def test_semantic_ids_outside_the_scheme(tmp_path):
    ids = np.full((20, 30), 8, np.uint8)
    ids[:2, :5], ids[5, 5] = 12, 25  # 11 pixels of earthcrafter25 ids
    path = tif(tmp_path / "s.tif", ids)
    refused(InputFiles(semantic=path), path, "11 pixels", "class ids", "12, 25", "openearthmap",
            "use --palette earthcrafter25", folder=tmp_path)
    assert load_tile(InputFiles(semantic=path, palette="earthcrafter25")).classes[0, 0] == 12


def test_semantic_palette_image(tmp_path):
    from satforge.core.schemes import EARTHCRAFTER25

    ids = np.random.default_rng(0).integers(0, 26, (20, 30)).astype(np.uint8)
    lut = np.array([EARTHCRAFTER25.colours[i] for i in range(26)], np.uint8)
    path = png(tmp_path / "s.png", lut[ids])
    tile = load_tile(InputFiles(semantic=path, palette="earthcrafter25", gsd=1.0))
    assert np.array_equal(tile.classes, ids)


def test_semantic_palette_with_foreign_colours(tmp_path):
    from satforge.core.schemes import OPENEARTHMAP

    rgb = np.zeros((20, 30, 3), np.uint8) + np.array(OPENEARTHMAP.colours[8], np.uint8)
    rgb[:3, :3] = (1, 2, 3)
    path = png(tmp_path / "s.png", rgb)
    refused(InputFiles(semantic=path, gsd=1.0), path, "9 pixels", "(1, 2, 3)", "--palette", folder=tmp_path)


def test_semantic_is_nearest_onto_a_finer_grid(tmp_path):
    """The finest height/semantic raster sets the grid: 1 m classes + 0.5 m nDSM -> 0.5 m."""
    ids = np.array([[4, 8], [5, 6]], np.uint8).repeat(4, 0).repeat(4, 1)
    tile = load_tile(InputFiles(semantic=tif(tmp_path / "s.tif", ids, gsd=1.0),
                                height=tif(tmp_path / "h.tif", np.ones((16, 16), np.float32), gsd=0.5)))
    assert tile.gsd == 0.5 and np.array_equal(tile.classes, ids.repeat(2, 0).repeat(2, 1))


# --- grids and georeference -----------------------------------------------------------------------

def test_city_tile_round_trip(tmp_path):
    truth = make_city_tile(size=96, gsd=0.5, seed=3)
    paths = write_tile(tmp_path, truth, gsd=0.5)
    tile = load_tile(InputFiles(rgb=paths["rgb"], height=paths["ndsm"], semantic=paths["semantic"]))
    assert tile.gsd == 0.5 and tile.shape == (96, 96) and tile.valid.all()
    np.testing.assert_allclose(tile.height, np.clip(truth["ndsm"], 0, None))
    assert np.array_equal(tile.classes, truth["semantic"])
    np.testing.assert_allclose(tile.rgb, truth["rgb"] / 255, atol=1e-6)
    assert tile.name == "rgb" and set(tile.sources) == {"rgb", "height", "semantic"}


def test_no_georeference_uses_gsd_for_the_largest(tmp_path):
    """--gsd is the photo's pixel size; the half-size class map covers the same extent."""
    img = Image.fromarray(np.moveaxis(photo(40, 60), 0, -1))
    img.save(tmp_path / "p.jpg", quality=95)
    sem = png(tmp_path / "s.png", np.full((20, 30), 5, np.uint8))
    tile = load_tile(InputFiles(rgb=tmp_path / "p.jpg", semantic=sem, gsd=0.25))
    assert tile.image_gsd == 0.25 and tile.gsd == 0.5 and tile.shape == (20, 30)
    assert (tile.georef.width_m, tile.georef.height_m) == (15.0, 10.0)
    assert tile.georef.crs is None and (tile.georef.easting, tile.georef.northing) == (0, 0)


def test_plain_image_takes_the_extent_of_a_georeferenced_one(tmp_path):
    dsm = tif(tmp_path / "h.tif", np.ones((10, 20), np.float32), gsd=2.0)
    sem = png(tmp_path / "s.png", np.full((20, 40), 8, np.uint8))
    tile = load_tile(InputFiles(height=dsm, semantic=sem))
    assert tile.gsd == 1.0 and tile.shape == (20, 40) and tile.georef.crs == "EPSG:32633"


def test_no_gsd_anywhere(tmp_path):
    path = png(tmp_path / "s.png", np.full((20, 30), 5, np.uint8))
    msg = refused(InputFiles(semantic=path), "--gsd", "no ground sampling distance", folder=tmp_path)
    assert msg == f"--gsd: no ground sampling distance: {path} has no georeference (pass --gsd METRES)"


@pytest.mark.parametrize("gsd", [0.0, -1.0, 0.001, 5000.0])
def test_absurd_gsd_option(tmp_path, gsd):
    path = png(tmp_path / "s.png", np.full((20, 30), 5, np.uint8))
    refused(InputFiles(semantic=path, gsd=gsd), "--gsd", "outside", folder=tmp_path)


def test_absurd_gsd_in_file(tmp_path):
    path = tif(tmp_path / "deg.tif", np.ones((8, 8), np.float32), gsd=0.0001, crs=None)
    refused(InputFiles(height=path), path, "pixel size", "gdalinfo", folder=tmp_path)


def test_plain_images_of_different_shape(tmp_path):
    a = png(tmp_path / "a.png", np.full((20, 30), 5, np.uint8))
    b = png(tmp_path / "b.png", np.ones((20, 20), np.uint16))
    refused(InputFiles(semantic=a, height=b, gsd=1.0), b, "is 20x20 pixels; a.png is 30x20",
            "crop both", folder=tmp_path)


def test_extents_must_match(tmp_path):
    ortho = tif(tmp_path / "ortho.tif", photo(), gsd=0.5)
    dsm = tif(tmp_path / "dsm.tif", np.ones((20, 25), np.float32), gsd=1.0, west=WEST + 10)
    msg = refused(InputFiles(rgb=ortho, height=dsm), dsm, "covers x 500010.0..500035.0",
                  "ortho.tif covers x 500000.0..500025.0", "crop both to the same extent", folder=tmp_path)
    assert msg.startswith(str(dsm))
    shifted = tif(tmp_path / "dsm2.tif", np.ones((20, 25), np.float32), gsd=1.0, west=WEST + 0.4)
    assert load_tile(InputFiles(rgb=ortho, height=shifted)).shape == (20, 25)  # within a pixel


# --- user mistakes --------------------------------------------------------------------------------

def test_no_input_at_all():
    refused(InputFiles(), "--rgb/--height/--semantic", "no input raster")


def test_dtm_without_height(tmp_path):
    dtm = tif(tmp_path / "dtm.tif", np.ones((5, 5), np.float32))
    refused(InputFiles(dtm=dtm, rgb=tif(tmp_path / "p.tif", photo(5, 5))), "--dtm", "--height")


def test_unknown_palette(tmp_path):
    sem = tif(tmp_path / "s.tif", np.ones((5, 5), np.uint8))
    refused(InputFiles(semantic=sem, palette="nope"), "--palette", "openearthmap, earthcrafter25")


def test_missing_file_folder_empty_and_not_a_raster(tmp_path):
    missing, empty, text = tmp_path / "nope.tif", tmp_path / "empty.tif", tmp_path / "notes.tif"
    empty.write_bytes(b"")
    text.write_text("not a raster")
    refused(InputFiles(height=missing), missing, "file not found", folder=tmp_path)
    refused(InputFiles(height=tmp_path), tmp_path, "not a file", folder=tmp_path)
    refused(InputFiles(height=empty), empty, "empty (0 bytes)", folder=tmp_path)
    refused(InputFiles(height=text), text, "not a raster", "PNG, JPEG or GeoTIFF", folder=tmp_path)


def test_truncated_png(tmp_path):
    whole = png(tmp_path / "whole.png", np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8))
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[:-100])
    refused(InputFiles(height=cut, gsd=1.0), cut, "truncated", folder=tmp_path)


def test_pixel_budget_is_checked_before_decoding(tmp_path):
    """The header alone refuses it: the pixel data here is garbage and is never read."""
    path = tif(tmp_path / "big.tif", np.ones((100, 100), np.float32))
    data = bytearray(path.read_bytes())
    data[-2000:] = b"\xff" * 2000
    path.write_bytes(bytes(data))
    refused(InputFiles(height=path, max_pixels=5000), path, "10000 pixels", "budget of 5000",
            folder=tmp_path)


def test_rotated_grid_is_refused(tmp_path):
    path = tmp_path / "rot.tif"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=1, dtype="float32",
                       crs="EPSG:32633", transform=Affine(1, 0.2, WEST, 0.2, -1, NORTH)) as ds:
        ds.write(np.ones((1, 8, 8), np.float32))
    refused(InputFiles(height=path), path, "rotated", "gdalwarp", folder=tmp_path)
