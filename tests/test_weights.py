"""Weights: tiny RS3DAda checkpoints built here, loaded through the real loader from files and from a
fake Hugging Face cache (HF_HUB_OFFLINE=1: nothing touches the network), the official ViT-L layout,
and every user mistake as one InputError."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_hub import fake_hub_cache, offline_hub_cache
from helpers_rs3dada import TINY, save_state_dict, tiny_model

from satforge.core import weights
from satforge.core.contract import sha256_file
from satforge.core.errors import InputError
from satforge.core.generators.rs3dada.model import RS3DAdaConfig, build_rs3dada, load_rs3dada
from satforge.core.generators.rs3dada.tiled import estimate

FETCH_FIX = "run 'satforge weights fetch rs3dada' on a connected machine, or pass --height-weights FILE"


def _outputs(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    x = torch.linspace(-2, 2, 3 * 56 * 42).reshape(1, 3, 56, 42)
    with torch.no_grad():
        return model(x)


def _same_network(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    return offline_hub_cache(tmp_path, monkeypatch)


def test_pickle_and_safetensors_load_the_same_network(tmp_path):
    from safetensors.torch import save_file

    model = tiny_model(0)
    pth = save_state_dict(model, tmp_path / "tiny.pth")
    safe = tmp_path / "tiny.safetensors"
    save_file(model.state_dict(), safe)
    for path in (pth, safe):
        models = load_rs3dada(str(path))
        assert models.height is models.classes and models.height_path == path
        assert RS3DAdaConfig.from_state_dict(model.state_dict()) == TINY
        expect, got = _outputs(model), _outputs(models.height)
        assert all(torch.allclose(got[k], expect[k], atol=1e-6) for k in expect)


def test_two_files_height_from_one_classes_from_the_other(tmp_path):
    a, b = tiny_model(1), tiny_model(2)
    models = load_rs3dada(str(save_state_dict(a, tmp_path / "a.pth")), str(save_state_dict(b, tmp_path / "b.pth")))
    assert _same_network(models.height, a) and _same_network(models.classes, b)
    rgb = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    ndsm, classes = estimate(rgb, models, patch=28, stride=14)
    assert ndsm.shape == classes.shape == (40, 50) and (ndsm >= 0).all() and classes.min() >= 1


def test_folder_source_holds_the_published_name(tmp_path):
    model = tiny_model(3)
    save_state_dict(model, tmp_path / "RS3DAda_vitl_DPT_segmentation.pth")
    models = load_rs3dada(seg_src=str(tmp_path), need_height=False)
    assert models.height is None and _same_network(models.classes, model)
    with pytest.raises(InputError, match=r"--height-weights: weights file .*RS3DAda_vitl_DPT_height.pth does not"):
        load_rs3dada(height_src=str(tmp_path))


def test_hub_source_from_the_cache_offline(tmp_path, offline_hub):
    model = tiny_model(4)
    path = save_state_dict(model, tmp_path / "tiny.pth")
    fake_hub_cache(offline_hub, "someone/tiny", "main", {"tiny.pth": path})
    for source in ("hf:someone/tiny/tiny.pth", "hf:someone/tiny@main/tiny.pth"):
        models = load_rs3dada(source)
        assert _same_network(models.height, model)
        assert models.height_path.is_relative_to(offline_hub)
    with pytest.raises(InputError, match=r"hf:someone/tiny/other.pth is not in the local hub cache"):
        load_rs3dada("hf:someone/tiny/other.pth")


def test_default_weights_come_from_the_cache_and_are_listed(tmp_path, offline_hub):
    height, seg = tiny_model(5), tiny_model(6)
    known = weights.KNOWN_WEIGHTS
    for w in (known["rs3dada-height"], known["rs3dada-seg"]):
        path = save_state_dict(height if w.name == "rs3dada-height" else seg, tmp_path / w.filename)
        fake_hub_cache(offline_hub, w.repo, w.revision, {w.filename: path})
    models = load_rs3dada()
    assert _same_network(models.height, height) and _same_network(models.classes, seg)
    rows = {row["name"]: row for row in weights.list_weights() if row["group"] == "rs3dada"}
    assert set(rows) == {"rs3dada-height", "rs3dada-seg"}
    for name, row in rows.items():
        assert row["present"] and row["licence"] == "MIT" and row["source"].startswith("hf:JTRNEO/RS3DAda@")
        assert row["sha256"] == sha256_file(tmp_path / known[name].filename)
    # A cached file that is not the published one is refused by fetch (it checks size and sha256).
    with pytest.raises(InputError, match=r"rs3dada-height has .* bytes, the published file 1466477172"):
        weights.fetch_weights("rs3dada-height")


def test_missing_while_offline_names_the_fetch_command(offline_hub):
    with pytest.raises(InputError) as err:
        load_rs3dada()
    assert str(err.value).startswith("--height-weights: hf:JTRNEO/RS3DAda@")
    assert err.value.fix == FETCH_FIX
    assert not weights.list_weights()[0]["present"]
    with pytest.raises(InputError, match=r"not in the local hub cache"):
        weights.fetch_weights("rs3dada")
    with pytest.raises(InputError, match=r"unknown weights 'nope'.*rs3dada-height"):
        weights.fetch_weights("nope")


def test_fetch_progress_reports_fractions():
    seen = []
    bar = weights._reporting_tqdm(lambda f, m: seen.append((f, m)), "rs3dada-seg")(total=200, initial=50)
    bar.update(50)
    bar.update(100)
    bar.close()
    assert seen == [(0.5, "downloading rs3dada-seg"), (1.0, "downloading rs3dada-seg")]


def test_official_vitl_layout_on_meta():
    """The published files' layout (checked against the original code in test_rs3dada_parity)."""
    state = build_rs3dada(RS3DAdaConfig.official(), "meta").state_dict()
    assert len(state) == 629
    params = build_rs3dada(RS3DAdaConfig.official(), "meta").parameters()
    assert sum(p.numel() for p in params) == 366_539_209          # SynRS3D's "366.54M Params"
    assert state["pretrained.pos_embed"].shape == (1, 1370, 1024)
    assert state["pretrained.mask_token"].shape == (1, 1024)
    assert state["pretrained.blocks.23.ls2.gamma"].shape == (1024,)
    assert state["heads.segmentation.scratch.output_conv.1.weight"].shape == (8, 256, 1, 1)
    assert state["heads.regression.scratch.output_conv2.1.weight"].shape == (1, 32, 1, 1)
    assert "heads.regression.scratch.refinenet4.resConfUnit1.bn1.num_batches_tracked" in state
    assert RS3DAdaConfig.from_state_dict(state) == RS3DAdaConfig.official()


def test_truncated_files(tmp_path):
    from safetensors.torch import save_file

    model = tiny_model(7)
    full = save_state_dict(model, tmp_path / "full.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(full[: len(full) // 2])
    with pytest.raises(InputError, match=r"cut.pth: truncated or corrupt weights file"):
        load_rs3dada(str(tmp_path / "cut.pth"))
    save_file(model.state_dict(), tmp_path / "full.safetensors")
    cut = (tmp_path / "full.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(cut[: len(cut) // 2])
    with pytest.raises(InputError, match=r"cut.safetensors: truncated or corrupt safetensors file"):
        load_rs3dada(str(tmp_path / "cut.safetensors"))


def test_foreign_checkpoints_name_the_key(tmp_path):
    torch.save(torch.nn.Linear(3, 4).state_dict(), tmp_path / "linear.pth")
    with pytest.raises(InputError, match=r"not RS3DAda weights: missing key 'pretrained.pos_embed'"):
        load_rs3dada(str(tmp_path / "linear.pth"))
    state = tiny_model(8).state_dict()
    torch.save({**state, "extra.weight": torch.zeros(1)}, tmp_path / "extra.pth")
    with pytest.raises(InputError, match=r"unexpected key 'extra.weight'"):
        load_rs3dada(str(tmp_path / "extra.pth"))
    del state["pretrained.norm.bias"]
    torch.save(state, tmp_path / "lacking.pth")
    with pytest.raises(InputError, match=r"missing key 'pretrained.norm.bias'"):
        load_rs3dada(str(tmp_path / "lacking.pth"))
    torch.save({"state_dict": tiny_model(8).state_dict(), "epoch": 3}, tmp_path / "wrapped.pth")
    with pytest.raises(InputError, match=r"not a plain state dict: entry 'state_dict' is not a tensor"):
        load_rs3dada(str(tmp_path / "wrapped.pth"))


class _RunsACommand:
    """Unpickling this calls os.system (what a malicious checkpoint would do)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "ran"
    zipped, legacy = tmp_path / "evil.pth", tmp_path / "evil_legacy.pth"
    torch.save({"pretrained.pos_embed": torch.zeros(1), "payload": _RunsACommand(marker)}, zipped)
    legacy.write_bytes(pickle.dumps(_RunsACommand(marker)))
    for path in (zipped, legacy):
        with pytest.raises(InputError, match=r"refused: the pickle holds Python objects other than tensors"):
            load_rs3dada(str(path))
    assert not marker.exists()
    pickle.loads(legacy.read_bytes())  # the file really would have run the command
    assert marker.exists()


def test_source_mistakes(tmp_path):
    with pytest.raises(InputError, match=r"--seg-weights: 'hf:owner/repo' is not a hub file"):
        load_rs3dada(seg_src="hf:owner/repo")
    with pytest.raises(InputError, match=r"--height-weights: weights file .*absent.pth does not exist"):
        load_rs3dada(str(tmp_path / "absent.pth"))
