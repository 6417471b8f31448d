"""DPT dense-prediction head (Ranftl et al. 2021) in the variant SynRS3D's RS3DAda puts on DINOv2:
four ViT layers reassembled at 4x, 2x, 1x and 1/2x of the token grid, fused coarse to fine by
residual refinement blocks, then a regression (1 channel) or a classification (``nclass``) output.

Parameter names equal the original's (``projects``, ``resize_layers``, ``scratch.layer{i}_rn``,
``scratch.refinenet{i}.resConfUnit{1,2}``, ``scratch.output_conv*``). Shapes, for a token grid of
h x w (image H = 14h, W = 14w) and width D:

    tokens   4 x [B, h*w, D]
    layer_i  [B, C_i, 4h, 4w], [B, C_i, 2h, 2w], [B, C_i, h, w], [B, C_i, ceil(h/2), ceil(w/2)]
    output   regression [B, 1, 14h, 14w]; classification [B, nclass, 8h, 8w]
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

# Width of the regression output's hidden layer (fixed in the original).
REGRESSION_HIDDEN = 32
# The ViT patch size the regression head upsamples to (it renders at token grid x 14).
VIT_PATCH = 14


@dataclass(frozen=True)
class DPTHeadConfig:
    """Shapes of one head: ViT width, fused width ``features``, the four reassembly widths, the
    number of output channels (1 = regression) and whether refinement units carry BatchNorm."""

    in_dim: int
    features: int
    out_channels: tuple[int, int, int, int]
    nclass: int
    use_bn: bool = True

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Tensor], prefix: str) -> DPTHeadConfig:
        """Infer a head from its keys (``prefix`` ends with '.'): widths from ``projects.{i}``
        [C_i, D, 1, 1], ``features`` from ``scratch.layer1_rn`` [F, C_1, 3, 3], the class count
        from the last classification conv, else a 1-channel regression. Raises KeyError naming
        the first key it needs and lacks."""
        projects = [state[f"{prefix}projects.{i}.weight"] for i in range(4)]
        classify = state.get(f"{prefix}scratch.output_conv.1.weight")
        if classify is not None:
            nclass = int(classify.shape[0])
        else:
            nclass = int(state[f"{prefix}scratch.output_conv2.1.weight"].shape[0])
        return cls(
            in_dim=int(projects[0].shape[1]),
            features=int(state[f"{prefix}scratch.layer1_rn.weight"].shape[0]),
            out_channels=tuple(int(p.shape[0]) for p in projects),
            nclass=nclass,
            use_bn=f"{prefix}scratch.refinenet1.resConfUnit1.bn1.weight" in state,
        )


class ResidualConvUnit(nn.Module):
    """x + conv2(relu(conv1(relu x))), each conv optionally followed by BatchNorm (eval stats)."""

    def __init__(self, features: int, use_bn: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(features, features, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(features) if use_bn else nn.Identity()
        self.bn2 = nn.BatchNorm2d(features) if use_bn else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn1(self.conv1(F.relu(x)))
        out = self.bn2(self.conv2(F.relu(out)))
        return out + x


class FeatureFusionBlock(nn.Module):
    """Fuse the coarser path with this level's skip, refine, upsample, project.

    ``forward(path, skip=None, size=None)``: [B, F, h, w] -> [B, F, size] (bilinear, corners
    aligned; twice the input when no size is given).
    """

    def __init__(self, features: int, use_bn: bool):
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, kernel_size=1)
        self.resConfUnit1 = ResidualConvUnit(features, use_bn)
        self.resConfUnit2 = ResidualConvUnit(features, use_bn)

    def forward(self, path: Tensor, skip: Tensor | None = None, size: tuple[int, int] | None = None) -> Tensor:
        if skip is not None:
            path = path + self.resConfUnit1(skip)
        path = self.resConfUnit2(path)
        if size is None:
            path = F.interpolate(path, scale_factor=2, mode="bilinear", align_corners=True)
        else:
            path = F.interpolate(path, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(path)


class DPTHead(nn.Module):
    """Four ViT layers -> one dense map; see the module docstring for shapes."""

    def __init__(self, cfg: DPTHeadConfig):
        super().__init__()
        self.cfg = cfg
        c1, c2, _, c4 = cfg.out_channels
        feats = cfg.features
        self.projects = nn.ModuleList(nn.Conv2d(cfg.in_dim, c, kernel_size=1) for c in cfg.out_channels)
        self.resize_layers = nn.ModuleList([
            nn.ConvTranspose2d(c1, c1, kernel_size=4, stride=4),
            nn.ConvTranspose2d(c2, c2, kernel_size=2, stride=2),
            nn.Identity(),
            nn.Conv2d(c4, c4, kernel_size=3, stride=2, padding=1),
        ])
        scratch = nn.Module()
        for i, c in enumerate(cfg.out_channels, start=1):
            setattr(scratch, f"layer{i}_rn", nn.Conv2d(c, feats, kernel_size=3, padding=1, bias=False))
        for i in range(1, 5):
            setattr(scratch, f"refinenet{i}", FeatureFusionBlock(feats, cfg.use_bn))
        if cfg.nclass > 1:
            scratch.output_conv = nn.Sequential(
                nn.Conv2d(feats, feats, kernel_size=3, padding=1),
                nn.Conv2d(feats, cfg.nclass, kernel_size=1),
            )
        else:
            scratch.output_conv1 = nn.Conv2d(feats, feats // 2, kernel_size=3, padding=1)
            scratch.output_conv2 = nn.Sequential(
                nn.Conv2d(feats // 2, REGRESSION_HIDDEN, kernel_size=3, padding=1),
                nn.Conv2d(REGRESSION_HIDDEN, cfg.nclass, kernel_size=1),
            )
        self.scratch = scratch

    def forward(self, layers: list[Tensor], grid_h: int, grid_w: int) -> Tensor:
        """``layers``: 4 x [B, grid_h * grid_w, D] patch tokens, shallowest first."""
        maps = []
        for tokens, project, resize in zip(layers, self.projects, self.resize_layers):
            grid = tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[-1], grid_h, grid_w)
            maps.append(resize(project(grid)))
        s = self.scratch
        l1, l2, l3, l4 = (getattr(s, f"layer{i}_rn")(m) for i, m in enumerate(maps, start=1))
        path = s.refinenet4(l4, size=l3.shape[2:])
        path = s.refinenet3(path, l3, size=l2.shape[2:])
        path = s.refinenet2(path, l2, size=l1.shape[2:])
        path = s.refinenet1(path, l1)
        if self.cfg.nclass > 1:
            return s.output_conv(path)
        out = s.output_conv1(path)
        out = F.interpolate(out, size=(grid_h * VIT_PATCH, grid_w * VIT_PATCH), mode="bilinear", align_corners=True)
        return s.output_conv2(out)
