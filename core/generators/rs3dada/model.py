"""The RS3DAda network (SynRS3D's ``DPT_DINOv2``): a DINOv2 ViT/14 backbone under ``pretrained.``
and DPT heads under ``heads.{name}.``: ``regression`` (nDSM, metres) and ``segmentation`` (8
OpenEarthMap classes), built from a checkpoint's own shapes and loaded with ``strict=True``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import InputError
from ...nets.dinov2 import DinoVisionTransformer, ViTConfig
from ...nets.dpt import DPTHead, DPTHeadConfig
from ...weights import KNOWN_WEIGHTS, check_state_dict, load_state_dict, resolve_known, resolve_source

HEIGHT_HEAD = "regression"
CLASSES_HEAD = "segmentation"
BACKBONE = "pretrained."
# DINOv2 layers the heads read: the last four blocks.
HEAD_LAYERS = 4
WHAT = "RS3DAda"


@dataclass(frozen=True)
class RS3DAdaConfig:
    """Backbone and heads (name -> config, in checkpoint order)."""

    vit: ViTConfig
    heads: Mapping[str, DPTHeadConfig] = field(default_factory=dict)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Tensor]) -> RS3DAdaConfig:
        """Infer backbone and heads from the keys and shapes. KeyError names a missing key."""
        vit = ViTConfig.from_state_dict(state, BACKBONE)
        head = re.compile(r"heads\.([^.]+)\.")
        names = dict.fromkeys(m.group(1) for key in state if (m := head.match(key)))
        if not names:
            raise KeyError(f"heads.{HEIGHT_HEAD}.projects.0.weight")
        return cls(vit, {name: DPTHeadConfig.from_state_dict(state, f"heads.{name}.") for name in names})

    @classmethod
    def official(cls) -> RS3DAdaConfig:
        """The published RS3DAda_vitl_DPT files: ViT-L/14, features 256, widths 256/512/1024/1024,
        BatchNorm in the refinement units, a height and an 8-class head."""
        widths = (256, 512, 1024, 1024)
        return cls(ViTConfig.vitl14(), {
            HEIGHT_HEAD: DPTHeadConfig(1024, 256, widths, nclass=1),
            CLASSES_HEAD: DPTHeadConfig(1024, 256, widths, nclass=8),
        })


class RS3DAda(nn.Module):
    """image [B, 3, H, W] (normalised, H and W multiples of 14) -> {head: [B, C, H, W]}."""

    def __init__(self, cfg: RS3DAdaConfig):
        super().__init__()
        self.cfg = cfg
        self.pretrained = DinoVisionTransformer(cfg.vit)
        self.heads = nn.ModuleDict({name: DPTHead(head) for name, head in cfg.heads.items()})

    def forward(self, image: Tensor, heads: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Run the backbone once and the named heads (all when None) on its last four layers; each
        output is resized to the image (bilinear, corners aligned) as upstream does."""
        height, width = image.shape[-2:]
        layers = [tokens for tokens, _cls in self.pretrained.intermediate_layers(image, HEAD_LAYERS)]
        grid_h, grid_w = height // self.cfg.vit.patch_size, width // self.cfg.vit.patch_size
        out = {}
        for name in heads or list(self.heads):
            dense = self.heads[name](layers, grid_h, grid_w)
            out[name] = F.interpolate(dense, size=(height, width), mode="bilinear", align_corners=True)
        return out


def build_rs3dada(cfg: RS3DAdaConfig, device: str | torch.device = "cpu") -> RS3DAda:
    """An RS3DAda with freshly initialised weights (``device="meta"``: shapes only, no memory)."""
    with torch.device(device):
        return RS3DAda(cfg)


def rs3dada_from_state_dict(state: Mapping[str, Tensor], subject: str, device: str | torch.device = "cpu",
                            need_heads: Sequence[str] = ()) -> RS3DAda:
    """The network a state dict describes, its tensors loaded in place (no copy on CPU), in eval
    mode and float32. Anything that is not an RS3DAda checkpoint is an InputError naming the first
    missing or unexpected key; ``need_heads`` must be among its heads."""
    try:
        cfg = RS3DAdaConfig.from_state_dict(state)
    except KeyError as err:
        raise InputError(subject, f"not {WHAT} weights: missing key {err.args[0]!r}",
                         f"pass a checkpoint of {WHAT}") from None
    except ValueError as err:
        raise InputError(subject, f"not {WHAT} weights: {err}", f"pass a checkpoint of {WHAT}") from None
    for name in need_heads:
        if name not in cfg.heads:
            raise InputError(subject, f"not {WHAT} weights: missing key 'heads.{name}.projects.0.weight'",
                             f"pass a checkpoint with a {name} head")
    model = build_rs3dada(cfg, "meta")
    check_state_dict({k: v.shape for k, v in model.state_dict().items()}, state, subject, WHAT)
    model.load_state_dict(state, strict=True, assign=True)
    return model.float().to(device).eval()


@dataclass(frozen=True)
class RS3DAdaModels:
    """The network whose ``regression`` head gives the nDSM and the one whose ``segmentation`` head
    gives the classes (the same object when one file serves both; None when not needed), and the
    weights files they came from."""

    height: RS3DAda | None
    classes: RS3DAda | None
    height_path: Path | None = None
    classes_path: Path | None = None


def load_rs3dada(height_src: str | None = None, seg_src: str | None = None, device: str | torch.device = "cpu",
                 need_height: bool = True, need_classes: bool = True) -> RS3DAdaModels:
    """Resolve, load and build the networks for the rasters wanted.

    Sources are local files/folders or ``hf:`` hub files (see ``core.weights``). Upstream reads the
    height from ``RS3DAda_vitl_DPT_height.pth``'s regression head and the classes from
    ``RS3DAda_vitl_DPT_segmentation.pth``'s segmentation head: without sources these registered
    files are taken from the hub cache (never downloaded here). With one source, both rasters come
    from that file (each published file holds both heads). A file used twice is loaded once.
    """
    roles = [role for role, needed in (("height", need_height), ("classes", need_classes)) if needed]
    paths = _weights_paths({"height": height_src, "classes": seg_src}, roles)
    by_file: dict[Path, list[str]] = {}
    for role, path in paths.items():
        by_file.setdefault(path.resolve(), []).append(role)
    models: dict[str, RS3DAda] = {}
    for file_roles in by_file.values():
        path = paths[file_roles[0]]
        heads = [_ROLES[role][2] for role in file_roles]
        model = rs3dada_from_state_dict(load_state_dict(path), str(path), device, heads)
        models.update(dict.fromkeys(file_roles, model))
    return RS3DAdaModels(models.get("height"), models.get("classes"), paths.get("height"), paths.get("classes"))


# role -> (option that gives its weights, registered default file, head it reads)
_ROLES = {"height": ("--height-weights", "rs3dada-height", HEIGHT_HEAD),
          "classes": ("--seg-weights", "rs3dada-seg", CLASSES_HEAD)}


def _weights_paths(sources: dict[str, str | None], roles: list[str]) -> dict[str, Path]:
    given = [role for role, src in sources.items() if src is not None]
    if not given:
        return {role: resolve_known(_ROLES[role][1], _ROLES[role][0]) for role in roles}
    paths = {}
    for role in roles:
        # A role without its own source uses the one given; a folder must hold that option's file.
        own = role if role in given else given[0]
        option, known, _ = _ROLES[own]
        paths[role] = resolve_source(sources[own], option, KNOWN_WEIGHTS[known].filename)
    return paths
