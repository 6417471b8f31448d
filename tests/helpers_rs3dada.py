"""Tiny RS3DAda checkpoints for the tests: the real architecture, shrunk, with random weights large
enough that the outputs vary across an image (a constant output would prove nothing)."""
from __future__ import annotations

from pathlib import Path

import torch

from satforge.core.generators.rs3dada.model import RS3DAdaConfig, build_rs3dada
from satforge.core.nets.dinov2 import ViTConfig
from satforge.core.nets.dpt import DPTHeadConfig

TINY = RS3DAdaConfig(
    ViTConfig(embed_dim=64, depth=4, num_heads=1, mlp_hidden=128, patch_size=14, in_chans=3, pos_grid=4),
    {"regression": DPTHeadConfig(64, 16, (8, 16, 24, 32), nclass=1),
     "segmentation": DPTHeadConfig(64, 16, (8, 16, 24, 32), nclass=8)},
)


def tiny_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_rs3dada(TINY).eval()
    for p in model.parameters():  # random everywhere, position embedding and layer scale included
        p.data.normal_(0, 0.2)
    return model


def save_state_dict(model: torch.nn.Module, path: Path) -> Path:
    """As upstream saves and publishes it: a plain state_dict pickle."""
    torch.save(model.state_dict(), path)
    return path
