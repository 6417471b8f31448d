"""Sat3DGen parity with the original code in ../shared/reference (skipped when it is absent, or when
the original's own dependencies, transformers >= 4.56 and diffusers, are not installed).

The original ``Sat3DGen`` is built in a reduced configuration (its DINOv3 ViT-L/16 with 2 blocks and
a narrow MLP, decoder levels [1, 2], 8-channel planes, 6 colour channels) with random weights, the
density and colour outputs rescaled so that density crosses the iso level and colour varies, and
saved with its own ``save_pretrained`` (config.json + safetensors, under transformers 5's key
layout). Ours loads that folder through the real loader and must compute the same planes, density
and colour at the same points, and upstream's ``forward_grid`` value for value.

Adaptations of the original's environment only: ``.cuda()`` is a no-op (upstream calls it in its
constructor), ``torchvision`` (imported, unused on this path) is an empty module, transformers 5's
``no_init_weights`` is given the 4.x import path upstream uses, and the backbone's built-in config
is shrunk. The image is prepared as torchvision's ``Resize((256, 256), BICUBIC)`` (PIL's resize),
``ToTensor`` (/255) and ``Normalize`` (ImageNet mean/std) compute it.
"""
from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
SAT3DGEN = REFERENCE / "Sat3DGen"
pytestmark = pytest.mark.skipif(not SAT3DGEN.is_dir(),
                                reason=f"the original code is not here ({SAT3DGEN} is absent in a plain clone)")

SMALL_BACKBONE = {"num_hidden_layers": 2, "intermediate_size": 256}   # width stays 1024: upstream fixes it
SMALL_NETWORK = {"triplane": {"dim": 8, "ch_mult": [1, 2]}, "color_channels": 6}
UPSTREAM_MODULES = ("source", "torchvision")
IMAGE_SHAPE = (300, 280)
TOLERANCE = 1e-3   # relative, the bar


def _upstream_names() -> list[str]:
    return [n for n in sys.modules if n.split(".")[0] in UPSTREAM_MODULES]


@pytest.fixture(scope="module")
def upstream():
    """The original ``source.generator``, importable for this file only."""
    pytest.importorskip("transformers", minversion="4.56", reason="the original needs transformers >= 4.56 (DINOv3)")
    pytest.importorskip("diffusers", reason="the original's model classes need diffusers")
    pytest.importorskip("einops", reason="the original needs einops")
    pytest.importorskip("easydict", reason="the original needs easydict")
    # Imported before the torchvision stub goes in: both probe for torchvision when first imported.
    import diffusers.configuration_utils
    import diffusers.models.modeling_utils  # noqa: F401
    import transformers.modeling_utils

    saved = {n: sys.modules.pop(n) for n in _upstream_names()}
    sys.path.insert(0, str(SAT3DGEN))
    with pytest.MonkeyPatch.context() as mp:
        if not hasattr(transformers.modeling_utils, "no_init_weights"):   # moved in transformers 5
            from transformers.initialization import no_init_weights
            mp.setattr(transformers.modeling_utils, "no_init_weights", no_init_weights, raising=False)
        mp.setitem(sys.modules, "torchvision", types.ModuleType("torchvision"))
        mp.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)
        mp.setattr(torch.nn.Module, "cuda", lambda self, *a, **k: self)
        from source import generator

        full = generator._BACKBONE_CONFIGS["dinov3-large-sat"]
        mp.setitem(generator._BACKBONE_CONFIGS, "dinov3-large-sat", {**full, **SMALL_BACKBONE})
        mp.setattr(generator.Sat3DGen, "_skip_backbone_weights", True)   # build, don't download
        yield SimpleNamespace(generator=generator, full_backbone=full)
    for name in _upstream_names():
        del sys.modules[name]
    sys.modules.update(saved)
    sys.path.remove(str(SAT3DGEN))


def _options() -> dict:
    opt = json.loads((SAT3DGEN / "configs" / "Sat3DGen_dino_v3.json").read_text())["opt"]
    opt["network"].update(SMALL_NETWORK)
    return opt


def _image() -> np.ndarray:
    """[H, W, 3] uint8: smooth colour fields, blocks and noise."""
    rng = np.random.default_rng(5)
    rows, cols = IMAGE_SHAPE
    y, x = np.mgrid[0:rows, 0:cols] / 35.0
    rgb = np.stack([np.sin(x + 0.5 * y), np.cos(1.3 * y - x), np.sin(0.7 * x * y)], -1) * 80 + 128
    rgb[60:120, 80:160] = (210, 70, 60)
    rgb += rng.normal(0, 12, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _their_input(rgb: np.ndarray) -> torch.Tensor:
    """What upstream's inference transform gives: PIL bicubic to 256², /255, ImageNet mean/std."""
    resized = np.asarray(Image.fromarray(rgb).resize((256, 256), Image.Resampling.BICUBIC))
    x = torch.from_numpy(resized.copy()).permute(2, 0, 1).float().div(255)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    return ((x - mean[:, None, None]) / std[:, None, None])[None]


@torch.no_grad()
def _randomise(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Random weights everywhere (the backbone is built uninitialised), scaled by fan-in; then the
    MLP's raw density spread 3 with 30 % of random points above the iso level, colour logits 1.5."""
    gen = torch.Generator().manual_seed(0)
    for name, p in model.named_parameters():
        if p.dim() > 1:
            p.copy_(torch.randn(p.shape, generator=gen) / p[0].numel() ** 0.5)
        elif name.endswith(("norm1.weight", "norm2.weight", "norm.weight", "norm_out.weight", "lambda1")):
            p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
        else:
            p.copy_(0.2 * torch.randn(p.shape, generator=gen))
    tri = model.from_sat_to_triplane(x)
    points = torch.rand(1, 20000, 3, generator=gen) * 1.6 - 0.8
    features = model.point_representer(points, ref_representation=tri)[0]
    hidden = model.mlp.net0_act(model.mlp.net0(features))
    raw = model.mlp.net1_density(hidden)[:, 0]
    head = model.mlp.net1_density
    scale = 3 / raw.std()
    target = 1 + torch.log(torch.expm1(torch.tensor(5.0)))          # softplus(target - 1) = 5
    head.weight *= scale
    head.bias.copy_(head.bias * scale + target - torch.quantile(raw * scale, 0.7))
    colour = model.density_reg(points, tri, sample_color=True)[0]
    model.mlp.grd_color_convert.weight *= 1.5 / torch.logit(colour).std()


@pytest.fixture(scope="module")
def checkpoint(upstream, tmp_path_factory):
    """A random reduced Sat3DGen saved as upstream saves it, and the image it is checked on."""
    torch.manual_seed(0)
    model = upstream.generator.Sat3DGen(_options()).eval()
    image = _image()
    x = _their_input(image)
    _randomise(model, x)
    folder = tmp_path_factory.mktemp("sat3dgen")
    model.save_pretrained(folder)
    with torch.no_grad():
        tri = model.from_sat_to_triplane(x)
    return SimpleNamespace(model=model, folder=folder, image=image, x=x, tri=tri)


@pytest.fixture(scope="module")
def ours(checkpoint):
    from satforge.core.generators.sat3dgen.model import load_sat3dgen

    return load_sat3dgen(str(checkpoint.folder), "cpu")


def _close(name: str, ours: torch.Tensor | np.ndarray, theirs: torch.Tensor | np.ndarray) -> None:
    ours, theirs = torch.as_tensor(np.array(ours)), torch.as_tensor(np.array(theirs))
    assert ours.shape == theirs.shape
    error = float((ours - theirs).abs().max() / theirs.abs().max())
    print(f"{name}: max |ours - theirs| / max |theirs| = {error:.2e}")
    assert error <= TOLERANCE, name


def test_the_saved_files_are_upstreams_layout(checkpoint, ours):
    from safetensors import safe_open

    with safe_open(checkpoint.folder / "diffusion_pytorch_model.safetensors", "pt") as f:
        keys = set(f.keys())
    assert "unet_model.dino_model.model.layer.1.attention.q_proj.weight" in keys   # transformers 5 layout
    assert any(k.startswith("sky_decoder.") for k in keys) and any(k.startswith("sr_module.") for k in keys)
    assert ours.cfg.vit.depth == 2 and ours.cfg.decoder.ch_mult == (1, 2) and ours.cfg.plane_size == 40


def test_planes_match(checkpoint, ours):
    from satforge.core.generators.sat3dgen import volume

    planes = volume.planes(ours, checkpoint.image)                # resamples the 300 x 280 image itself
    plane, line = ours.split(planes)
    their_plane, their_line = checkpoint.tri
    _close("plane", plane, their_plane[:, 0])
    _close("line", line[..., 0], their_line)
    assert their_plane.std() > 0.1 and their_line.std() > 0.01


def test_density_and_colour_match_at_the_same_points(upstream, checkpoint, ours):
    from source.rendering.utils import create_voxel

    from satforge.core.generators.sat3dgen import volume

    points = torch.cat([
        create_voxel(N=24)["voxel_grid"][0],                                            # upstream's own grid
        torch.rand(20000, 3, generator=torch.Generator().manual_seed(3)) * 2.2 - 1.1,   # and beyond the cube
    ])
    model = checkpoint.model
    with torch.no_grad():
        their_density = model.density_reg(points[None], checkpoint.tri)[0, :, 0]
        their_colour = model.density_reg(points[None], checkpoint.tri, sample_color=True)[0]
    density, colour = volume.query(ours, volume.planes(ours, checkpoint.image), points, chunk=4096)
    _close("density", density, their_density)
    _close("colour", colour, their_colour)
    occupied = (their_density >= volume.ISO_LEVEL).float().mean()
    assert 0.05 < occupied < 0.6 and their_colour.std() > 0.05


def test_grid_matches_forward_grid(checkpoint, ours):
    from satforge.core.generators.sat3dgen import volume

    n = 48
    theirs = checkpoint.model.forward_grid(checkpoint.tri, grid_size=n)            # [x, y south, z], borders 0
    planes = volume.planes(ours, checkpoint.image)
    dense = volume.density_grid(ours, planes, n, sampling="upstream", coarse_stride=1)
    as_theirs = dense.density[:, ::-1]                                             # y north -> south
    _close("forward_grid", as_theirs, theirs)
    fine = volume.density_grid(ours, planes, n, sampling="upstream")
    evaluated = fine.evaluated[:, ::-1]
    _close("forward_grid coarse-to-fine", fine.density[:, ::-1][evaluated], theirs[evaluated])
    assert (theirs[~evaluated] < volume.ISO_LEVEL).all()       # what was skipped is below the iso level
    assert (theirs >= volume.ISO_LEVEL).mean() > 0.01


def test_official_layout(upstream):
    """The published architecture, built by the original on the meta device from the published
    config: ours, built from that config and the state dict's shapes, has the same 3D keys and shapes."""
    from satforge.core.generators.sat3dgen.model import UNUSED, Sat3DGenConfig, build_sat3dgen
    from satforge.core.nets.dinov3 import canonical_key

    opt = json.loads((SAT3DGEN / "configs" / "Sat3DGen_dino_v3.json").read_text())["opt"]
    with pytest.MonkeyPatch.context() as mp, torch.device("meta"):
        mp.setitem(upstream.generator._BACKBONE_CONFIGS, "dinov3-large-sat", upstream.full_backbone)
        theirs = upstream.generator.Sat3DGen(opt).state_dict()
    shapes = {canonical_key(k): v for k, v in theirs.items() if not k.startswith(UNUSED)}
    cfg = Sat3DGenConfig.from_options(opt, shapes)
    assert cfg == Sat3DGenConfig.published() and cfg.plane_size == 320 and cfg.input_size == 256
    ours = build_sat3dgen(cfg, "meta").state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in shapes.items()}
