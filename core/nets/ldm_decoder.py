"""The convolutional decoder of latent-diffusion autoencoders (Rombach et al. 2022), as Sat3DGen uses
it to turn DINOv3 patch features into its 3D feature plane: a 3x3 input convolution, a middle of two
residual blocks around one single-head spatial self-attention, then levels from coarse to fine, each
of residual blocks followed by a nearest 2x upsampling and a 3x3 convolution (none after the finest),
and GroupNorm -> swish -> 3x3 output convolution. No timestep embedding, no attention in the levels.

Parameter names equal the original's (``conv_in``, ``mid.block_1``, ``mid.attn_1.{q,k,v,proj_out}``,
``up.{level}.block.{i}.{norm1,conv1,norm2,conv2,nin_shortcut}``, ``up.{level}.upsample.conv``,
``norm_out``, ``conv_out``; level 0 is the finest). Shapes, with L levels:

    z       [B, z_channels, h, w]
    output  [B, out_channels, h * 2^(L-1), w * 2^(L-1)]
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import torch.nn.functional as F
from torch import Tensor, nn

# Every normalisation of the original: 32 groups, epsilon 1e-6.
GROUPS = 32
GROUP_NORM_EPS = 1e-6


@dataclass(frozen=True)
class LDMDecoderConfig:
    """``ch * ch_mult[level]`` channels at each level (level 0 finest), ``num_res_blocks + 1``
    residual blocks per level, attention in the middle or not."""

    ch: int
    ch_mult: tuple[int, ...]
    num_res_blocks: int
    z_channels: int
    out_channels: int
    mid_attention: bool = True

    def level_channels(self, level: int) -> int:
        return self.ch * self.ch_mult[level]

    @property
    def upsampling(self) -> int:
        """Output size / input size."""
        return 2 ** (len(self.ch_mult) - 1)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(GROUPS, channels, eps=GROUP_NORM_EPS)


class ResnetBlock(nn.Module):
    """x' + conv2(swish(norm2(conv1(swish(norm1 x))))), x' = x or its 1x1 projection when the width
    changes."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm1 = _norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm2 = _norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        else:
            self.nin_shortcut = None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        skip = x if self.nin_shortcut is None else self.nin_shortcut(x)
        return skip + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all positions of [B, C, H, W], 1x1 projections, residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = _norm(channels)
        self.q = nn.Conv2d(channels, channels, kernel_size=1)
        self.k = nn.Conv2d(channels, channels, kernel_size=1)
        self.v = nn.Conv2d(channels, channels, kernel_size=1)
        self.proj_out = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        # [B, C, H, W] -> [B, 1, HW, C]: one head whose width is the channel count.
        q, k, v = (proj(y).flatten(2).transpose(1, 2).unsqueeze(1) for proj in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj_out(out.squeeze(1).transpose(1, 2).reshape(b, c, h, w))


class Upsample(nn.Module):
    """Nearest 2x, then a 3x3 convolution."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UpLevel(nn.Module):
    """One resolution level: ``block`` (residual blocks), ``upsample`` (None at the finest level)."""

    def __init__(self, in_channels: int, out_channels: int, blocks: int, upsample: bool):
        super().__init__()
        widths = [in_channels] + [out_channels] * blocks
        self.block = nn.ModuleList(ResnetBlock(a, b) for a, b in pairwise(widths))
        self.upsample = Upsample(out_channels) if upsample else None

    def forward(self, x: Tensor) -> Tensor:
        for block in self.block:
            x = block(x)
        return x if self.upsample is None else self.upsample(x)


class Middle(nn.Module):
    """``block_1`` -> ``attn_1`` (when configured) -> ``block_2`` at the coarsest width."""

    def __init__(self, channels: int, attention: bool):
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels)
        self.attn_1 = AttnBlock(channels) if attention else None
        self.block_2 = ResnetBlock(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.block_1(x)
        if self.attn_1 is not None:
            x = self.attn_1(x)
        return self.block_2(x)


class LDMDecoder(nn.Module):
    """z [B, z_channels, h, w] -> [B, out_channels, h·2^(L-1), w·2^(L-1)]."""

    def __init__(self, cfg: LDMDecoderConfig):
        super().__init__()
        self.cfg = cfg
        levels = len(cfg.ch_mult)
        coarsest = cfg.level_channels(levels - 1)
        self.conv_in = nn.Conv2d(cfg.z_channels, coarsest, kernel_size=3, padding=1)
        self.mid = Middle(coarsest, cfg.mid_attention)
        # Built coarse to fine as data flows, stored fine to coarse (``up.0`` is the finest level).
        up, width = [], coarsest
        for level in reversed(range(levels)):
            out = cfg.level_channels(level)
            up.insert(0, UpLevel(width, out, cfg.num_res_blocks + 1, upsample=level != 0))
            width = out
        self.up = nn.ModuleList(up)
        self.norm_out = _norm(width)
        self.conv_out = nn.Conv2d(width, cfg.out_channels, kernel_size=3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            h = level(h)
        return self.conv_out(F.silu(self.norm_out(h)))
