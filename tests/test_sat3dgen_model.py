"""Sat3DGen without the original code: tiny checkpoints written here (config.json + safetensors, as
upstream publishes them) loaded through the real loader from a folder, a file and a fake hub cache
(HF_HUB_OFFLINE=1), the coarse-to-fine grid against the dense one, the sliding window on a
non-square image, and the weights mistakes as one InputError each."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers_hub import fake_hub_cache, offline_hub_cache
from helpers_sat3dgen import SKY_KEYS, TINY, TINY_OPTIONS, save_checkpoint, scene_image, tiny_sat3dgen

from satforge.core import weights
from satforge.core.errors import InputError
from satforge.core.generators.sat3dgen import volume
from satforge.core.generators.sat3dgen.model import CONFIG_FILE, WEIGHTS_FILE, load_sat3dgen

FETCH_HINT = "satforge weights fetch sat3dgen"


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    return offline_hub_cache(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def tiny():
    """A tiny model whose density reaches the iso level on ~1 % of the kept cube (a sparse scene)."""
    return tiny_sat3dgen(0, occupied=0.01)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_folder_file_and_hub_cache_load_the_same_model(tiny, tmp_path, offline_hub):
    folder = save_checkpoint(tiny, tmp_path / "ckpt")
    for source in (folder, folder / WEIGHTS_FILE, folder / CONFIG_FILE):
        model = load_sat3dgen(str(source), "cpu")
        assert model.cfg == TINY and _same(model, tiny)
    files = {name: folder / name for name in (CONFIG_FILE, WEIGHTS_FILE)}
    fake_hub_cache(offline_hub, "someone/s3d", "main", files)
    for source in ("hf:someone/s3d", "hf:someone/s3d@main", f"hf:someone/s3d/{WEIGHTS_FILE}"):
        assert _same(load_sat3dgen(source, "cpu"), tiny)
    for w in (weights.KNOWN_WEIGHTS["sat3dgen-config"], weights.KNOWN_WEIGHTS["sat3dgen-weights"]):
        assert w.pinned and w.group == "sat3dgen" and w.repo == "qian43/Sat3DGen"
        fake_hub_cache(offline_hub, w.repo, w.revision, {w.filename: files[w.filename]})
    assert _same(load_sat3dgen(None, "cpu"), tiny)
    rows = {row["name"]: row for row in weights.list_weights() if row["group"] == "sat3dgen"}
    assert rows["sat3dgen-weights"]["present"] and "DINOv3 License" in rows["sat3dgen-weights"]["licence"]


def test_query_is_chunked_and_planes_resample_any_size(tiny):
    rgb = scene_image(300, 280)
    planes = volume.planes(tiny, rgb)
    assert planes.shape == (1, 16, 40, 40)
    points = torch.rand(5000, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1
    density, colour = volume.query(tiny, planes, points)
    small_d, small_c = volume.query(tiny, planes, points, chunk=777)
    assert torch.allclose(density, small_d, rtol=1e-5, atol=1e-5) and torch.allclose(colour, small_c, atol=1e-6)
    assert density.min() >= 0 and 0.01 < (density >= volume.ISO_LEVEL).float().mean() < 0.2
    assert colour.shape == (5000, 3) and colour.std() > 0.05 and 0 <= colour.min() and colour.max() <= 1
    float_planes = volume.planes(tiny, rgb.astype(np.float32))
    assert (float_planes - planes).abs().max() < 0.05 * planes.abs().max()   # same filter, no 8-bit rounding


@pytest.mark.parametrize("sampling", ["regular", "upstream"])
def test_coarse_to_fine_equals_dense_where_evaluated(tiny, sampling):
    planes = volume.planes(tiny, scene_image(256, 256))
    n = 80
    fine = volume.density_grid(tiny, planes, n, sampling=sampling)
    dense = volume.density_grid(tiny, planes, n, sampling=sampling, coarse_stride=1)
    border = volume.border_cells(tiny, n)
    assert border == 8                                              # 32 of 320, 8 of 80
    box = np.zeros((n, n, n), bool)
    box[border:n - border, border:n - border, border:] = True
    assert (dense.evaluated == box).all() and (dense.density[~box] == 0).all()
    assert fine.evaluated.sum() < 0.85 * box.sum()                # the coarse pass skipped empty space
    occupied = dense.density >= volume.ISO_LEVEL
    assert occupied.any() and (occupied <= fine.evaluated).all()  # nothing occupied was skipped
    e = fine.evaluated
    np.testing.assert_allclose(fine.density[e], dense.density[e], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fine.colour[e], dense.colour[e], rtol=1e-5, atol=1e-5)
    assert (fine.density[~e] == 0).all() and (fine.colour[~e] == 0).all()
    # Volume index [x, y north, z] is model index [i, n - 1 - j, k] at the points model_points gives.
    i, j, k = torch.tensor([15, 40, 62]), torch.tensor([20, 33, 55]), torch.tensor([30, 12, 70])
    d, c = volume.query(tiny, planes, volume.model_points(i, j, k, n, sampling))
    at = (i.numpy(), n - 1 - j.numpy(), k.numpy())
    np.testing.assert_allclose(dense.density[at], d.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dense.colour[at], c.numpy(), rtol=1e-5, atol=1e-5)


def test_metric_frame_of_a_tile():
    vol = volume.Volume(np.zeros((320, 320, 320), np.float32), np.zeros((320, 320, 320, 3), np.float32),
                        np.zeros((320, 320, 320), bool), 0.28, (-44.66, -44.66, -44.66))
    assert np.allclose(vol.bounds, [(-44.8, 44.8)] * 3)


@pytest.fixture(scope="module")
def sparse():
    """A sparser scene (~0.3 % occupied): the sliding window evaluates fewer cells."""
    return tiny_sat3dgen(1, occupied=0.003)


def _window_values(model, rgb: np.ndarray, c0: int, x: int, rows: range) -> np.ndarray:
    """Dense density [len(rows), 288] of the 256 px window at column c0, at image column x and the
    given image rows, z cells 32-319: model cell (32 + x - c0, 32 + row, k)."""
    planes = volume.planes(model, rgb[:256, c0:c0 + 256])
    i, j, k = torch.meshgrid(torch.tensor([32 + x - c0]), torch.tensor([32 + r for r in rows]), torch.arange(32, 320),
                             indexing="ij")
    density, _ = volume.query(model, planes, volume.model_points(i.flatten(), j.flatten(), k.flatten(), 320),
                              colour=False)
    return density.view(len(rows), 288).numpy()


def _check_average(vol: volume.Volume, x: int, values: list[np.ndarray]) -> None:
    """Column x of the volume (rows north-up) averages the windows that evaluated each cell: every
    evaluated cell is the mean of all windows or of one of them, occupied cells the mean of all."""
    got = vol.density[x][::-1]                                   # image rows top down
    candidates = [np.mean(values, axis=0), *values]
    close = np.zeros(got.shape, bool)
    for candidate in candidates:
        close |= np.isclose(got, candidate, rtol=1e-5, atol=1e-5)
    evaluated = vol.evaluated[x][::-1]
    assert close[evaluated].all() and (got[~evaluated] == 0).all()
    occupied = np.all([v >= volume.ISO_LEVEL for v in values], axis=0)
    assert evaluated[occupied].all()
    np.testing.assert_allclose(got[occupied], candidates[0][occupied], rtol=1e-5)


def test_sliding_window_on_a_non_square_image(sparse):
    rgb = scene_image(256, 300, seed=2)              # 256 rows, 300 columns: windows at columns 0 and 44
    vol = volume.window_volume(sparse, rgb)
    assert vol.density.shape == (300, 256, 288) and vol.colour.shape == (300, 256, 288, 3)
    assert vol.voxel_size == pytest.approx(0.28)
    assert np.allclose(vol.bounds, [(-42.0, 42.0), (-35.84, 35.84), (-35.84, 44.8)])
    # Window 0 keeps columns 0-223 (its far 32 px dropped), window 44 keeps 76-299.
    for x, sources in ((10, [0]), (150, [0, 44]), (290, [44])):
        _check_average(vol, x, [_window_values(sparse, rgb, c0, x, range(256)) for c0 in sources])
    assert (vol.density >= volume.ISO_LEVEL).any() and vol.colour[vol.evaluated].std() > 0.05


def test_small_image_is_one_mirrored_window(sparse):
    rgb = scene_image(200, 230, seed=3)
    vol = volume.window_volume(sparse, rgb)
    assert vol.density.shape == (230, 200, 288)
    padded = np.pad(rgb, ((0, 56), (0, 26), (0, 0)), mode="symmetric")   # the window: image top-left
    for x in (5, 120, 225):
        _check_average(vol, x, [_window_values(sparse, padded, 0, x, range(200))])
    assert (vol.density >= volume.ISO_LEVEL).any()


def test_weights_mistakes(tiny, tmp_path, offline_hub):
    folder = save_checkpoint(tiny, tmp_path / "ok")
    data = (folder / WEIGHTS_FILE).read_bytes()
    cut = save_checkpoint(tiny, tmp_path / "cut")
    (cut / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut/diffusion_pytorch_model.safetensors: truncated or corrupt"):
        load_sat3dgen(str(cut), "cpu")
    from safetensors.torch import load_file, save_file

    state = load_file(folder / WEIGHTS_FILE)
    for name, change, message in (
        ("extra", {"extra.weight": torch.zeros(1)}, r"not Sat3DGen weights: unexpected key 'extra.weight'"),
        ("lacking", {"mlp.net0.bias": None}, r"not Sat3DGen weights: missing key 'mlp.net0.bias'"),
        ("foreign", {k: None for k in state if k.startswith("unet_model.dino_model.embeddings.cls")},
         r"missing key 'unet_model.dino_model.embeddings.cls_token'"),
        ("shape", {"mlp.net0.weight": torch.zeros(3, 3)}, r"'mlp.net0.weight' has shape \(3, 3\)"),
    ):
        changed = {**state, **{k: v for k, v in change.items() if v is not None}}
        for key in [k for k, v in change.items() if v is None]:
            del changed[key]
        target = save_checkpoint(tiny, tmp_path / name)
        save_file(changed, target / WEIGHTS_FILE)
        with pytest.raises(InputError, match=message):
            load_sat3dgen(str(target), "cpu")
    assert all(k in state for k in SKY_KEYS)                   # ignored, not unexpected
    (tmp_path / "noconfig").mkdir()
    (tmp_path / "noconfig" / WEIGHTS_FILE).write_bytes(data)
    with pytest.raises(InputError, match=r"config.json does not exist"):
        load_sat3dgen(str(tmp_path / "noconfig"), "cpu")
    triplane = save_checkpoint(tiny, tmp_path / "triplane", {**TINY_OPTIONS, "representation_type": "triplane"})
    with pytest.raises(InputError, match=r"config.json: unsupported Sat3DGen variant: representation_type"):
        load_sat3dgen(str(triplane), "cpu")
    (folder / CONFIG_FILE).write_text(json.dumps({"architectures": ["Bert"]}))
    with pytest.raises(InputError, match=r"not a Sat3DGen config"):
        load_sat3dgen(str(folder), "cpu")
    with pytest.raises(InputError) as err:
        load_sat3dgen(None, "cpu")
    assert FETCH_HINT in err.value.fix and str(err.value).startswith("--weights: hf:qian43/Sat3DGen@")
    with pytest.raises(InputError, match=r"not in the local hub cache"):
        load_sat3dgen("hf:someone/absent", "cpu")
    with pytest.raises(InputError, match=r"is not a hub source"):
        load_sat3dgen("hf:someone", "cpu")
