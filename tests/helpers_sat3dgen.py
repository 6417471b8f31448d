"""Tiny Sat3DGen checkpoints for the tests: the real 3D path (DINOv3, plane decoder, MLP), shrunk,
with random weights scaled so that density crosses the iso level and colour varies (a constant
volume would prove nothing), written as upstream publishes it: config.json + safetensors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from satforge.core.generators.sat3dgen.model import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    Sat3DGenConfig,
    Sat3DGenModel,
    build_sat3dgen,
)
from satforge.core.generators.sat3dgen.volume import ISO_LEVEL, model_input
from satforge.core.nets.dinov3 import DINOv3Config
from satforge.core.nets.ldm_decoder import LDMDecoderConfig

# The options of the published config.json that the 3D path reads, with a shrunk plane and colour width.
TINY_OPTIONS = {
    "backbone": "dinov3-large-sat", "representation_type": "oneplane", "pad": 0.125,
    "network": {"no_hidden_states": True, "no_cls_token": True, "color_channels": 6, "with_attn": True,
                "triplane": {"dim": 8, "ch_mult": [1, 1]},
                "ray_marching_kwargs": {"density_clamp_mode": "mipnerf"}},
}
TINY = Sat3DGenConfig(
    vit=DINOv3Config(embed_dim=64, depth=2, num_heads=1, mlp_hidden=128, patch_size=16, in_chans=3,
                     num_register_tokens=4),
    decoder=LDMDecoderConfig(ch=128, ch_mult=(1, 1), num_res_blocks=2, z_channels=64, out_channels=16),
    plane_channels=8, pad=0.125, mlp_hidden=32, style_dim=16, colour_channels=6,
)
# Modules of the published file the 3D path ignores; a checkpoint carries some so loading must skip them.
SKY_KEYS = {"sky_mapping.mapping.0.weight": (512, 270), "sky_decoder.conv_in.weight": (128, 512, 3, 3),
            "sr_module.conv.weight": (3, 6, 1, 1), "point_representer.oneplane_axes": (1, 3, 3)}


def scene_image(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    """[rows, cols, 3] uint8: smooth colour fields with noise."""
    y, x = np.mgrid[0:rows, 0:cols] / 30.0
    rgb = np.stack([np.sin(x + y), np.cos(1.3 * y - x), np.sin(0.7 * x * y)], -1) * 90 + 128
    rgb += np.random.default_rng(seed).normal(0, 10, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def tiny_sat3dgen(seed: int, occupied: float = 0.1) -> Sat3DGenModel:
    """TINY with random weights; density >= ISO_LEVEL on about ``occupied`` of the kept part of
    the cube for ``scene_image``s."""
    torch.manual_seed(seed)
    model = build_sat3dgen(TINY).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 1 / p[0].numel() ** 0.5 if p.dim() > 1 else 0.3)
        calibrate(model, occupied)
    return model


@torch.no_grad()
def calibrate(model: Sat3DGenModel, occupied: float) -> None:
    """Rescale the MLP's outputs on a fixed image: raw density spread 3 with the (1 - occupied)
    quantile at the iso level, colour logits spread 1.5."""
    image = model_input(scene_image(256, 256), model.cfg.input_size)
    plane, line = model.split(model.planes(image))
    # Points over the image's footprint above the zeroed bottom slab: the part of the cube grids keep.
    points = (torch.rand(20000, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1) * 0.8
    points[:, 2] = points[:, 2] * 1.125 + 0.1
    hidden = model.mlp.hidden(model.features(plane, line, points))
    density, colour = model.mlp.net1_density, model.mlp.grd_color_convert
    raw = density(hidden)[:, 0]
    scale = 3 / raw.std()
    target = 1 + torch.log(torch.expm1(torch.tensor(ISO_LEVEL)))      # softplus(target - 1) = ISO_LEVEL
    density.weight *= scale
    density.bias.copy_(density.bias * scale + target - torch.quantile(raw * scale, 1 - occupied))
    logits = torch.logit(model.mlp.colour(hidden))
    colour.weight *= 1.5 / logits.std()


def save_checkpoint(model: Sat3DGenModel, folder: Path, options: dict | None = None) -> Path:
    """config.json + diffusion_pytorch_model.safetensors as upstream's save_pretrained writes them,
    with a few of the sky / super-resolution tensors the 3D path must ignore."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = {"_class_name": "Sat3DGen", "_diffusers_version": "0.30.0", "opt": options or TINY_OPTIONS}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    state.update({k: torch.zeros(shape) for k, shape in SKY_KEYS.items()})
    save_file(state, folder / WEIGHTS_FILE)
    return folder
