"""DINOv2 ViT/14 backbone, written from the paper's description and the behaviour of the
facebookresearch/dinov2 code at commit b8931f7 (the version SynRS3D loads through torch.hub).

Parameter names equal the original's (``patch_embed.proj``, ``blocks.{i}.attn.qkv``, ``ls1.gamma``,
...), so an original state dict loads with ``strict=True``. Shapes (gsplat-style notation):

    image   [B, 3, H, W]      H, W multiples of the patch size p (14)
    tokens  [B, 1 + R + N, D] class token, R register tokens, N = (H/p)(W/p) patch tokens
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# DINOv2 builds every LayerNorm with this epsilon.
LAYER_NORM_EPS = 1e-6


@dataclass(frozen=True)
class ViTConfig:
    """Everything that sets a DINOv2 ViT's parameter shapes and its forward pass.

    ``pos_grid`` is the side M of the square grid the position embedding was trained on
    (37 for DINOv2's 518 px). ``interpolate_offset`` / ``interpolate_antialias`` are not stored in
    checkpoints: the hub builds plain models with (0.1, False) and register models with (0.0, True).
    """

    embed_dim: int
    depth: int
    num_heads: int
    mlp_hidden: int
    patch_size: int
    in_chans: int
    pos_grid: int
    num_register_tokens: int = 0
    layer_scale: bool = True
    interpolate_offset: float = 0.1
    interpolate_antialias: bool = False

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Tensor], prefix: str = "") -> ViTConfig:
        """Infer the architecture from a state dict's shapes.

        Width from ``pos_embed`` [1, 1 + M², D]; depth from the number of ``blocks.{i}``; heads =
        width / 64 (true of every DINOv2 size); MLP width from ``blocks.0.mlp.fc1``; layer scale and
        register tokens from their keys. Raises KeyError naming the first key it needs and lacks,
        ValueError when the position embedding is not a square grid.
        """
        pos = state[f"{prefix}pos_embed"]
        embed_dim = int(pos.shape[-1])
        grid = math.isqrt(int(pos.shape[1]) - 1)
        if grid * grid != pos.shape[1] - 1:
            raise ValueError(f"{prefix}pos_embed has {pos.shape[1] - 1} patch positions, not a square grid")
        proj = state[f"{prefix}patch_embed.proj.weight"]            # [D, C, p, p]
        block = re.compile(re.escape(prefix) + r"blocks\.(\d+)\.")
        indices = {int(m.group(1)) for key in state if (m := block.match(key))}
        if not indices:
            raise KeyError(f"{prefix}blocks.0.norm1.weight")
        registers = state.get(f"{prefix}register_tokens")           # [1, R, D] when present
        num_registers = 0 if registers is None else int(registers.shape[1])
        return cls(
            embed_dim=embed_dim,
            depth=max(indices) + 1,
            num_heads=embed_dim // 64,
            mlp_hidden=int(state[f"{prefix}blocks.0.mlp.fc1.weight"].shape[0]),
            patch_size=int(proj.shape[-1]),
            in_chans=int(proj.shape[1]),
            pos_grid=grid,
            num_register_tokens=num_registers,
            layer_scale=f"{prefix}blocks.0.ls1.gamma" in state,
            interpolate_offset=0.0 if num_registers else 0.1,
            interpolate_antialias=bool(num_registers),
        )

    @classmethod
    def vitl14(cls) -> ViTConfig:
        """DINOv2 ViT-L/14 as torch.hub's ``dinov2_vitl14`` builds it (518 px, layer scale)."""
        return cls(embed_dim=1024, depth=24, num_heads=16, mlp_hidden=4096, patch_size=14, in_chans=3,
                   pos_grid=37)


class PatchEmbed(nn.Module):
    """[B, C, H, W] -> [B, N, D]: one non-overlapping p x p convolution per patch."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.proj = nn.Conv2d(cfg.in_chans, cfg.embed_dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention, [B, T, D] -> [B, T, D], through torch's fused SDPA."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        # [B, T, 3D] -> [3, B, heads, T, D/heads]: q, k, v as SDPA wants them.
        q, k, v = self.qkv(x).reshape(b, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, t, d))


class Mlp(nn.Module):
    """fc1 -> exact GELU -> fc2."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    """Per-channel scale of a residual branch (``gamma`` [D])."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm transformer block: x + ls1(attn(norm1 x)), then x + ls2(mlp(norm2 x))."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        dim = cfg.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(dim, cfg.num_heads)
        self.ls1 = LayerScale(dim) if cfg.layer_scale else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, cfg.mlp_hidden)
        self.ls2 = LayerScale(dim) if cfg.layer_scale else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoVisionTransformer(nn.Module):
    """The DINOv2 ViT without a classification head; ``intermediate_layers`` is what DPT reads.

    ``mask_token`` [1, D] is only used in DINOv2's masked pre-training; it is kept (unused) so the
    published checkpoints, which contain it, load with ``strict=True`` and the key layout stays the
    original's.
    """

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.cfg = cfg
        dim = cfg.embed_dim
        self.patch_embed = PatchEmbed(cfg)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + cfg.pos_grid ** 2, dim))
        if cfg.num_register_tokens:
            self.register_tokens = nn.Parameter(torch.zeros(1, cfg.num_register_tokens, dim))
        else:
            self.register_tokens = None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mask_token = nn.Parameter(torch.zeros(1, dim))

    def position_embedding(self, height: int, width: int) -> Tensor:
        """Position embedding [1, 1 + (H/p)(W/p), D] for an image of height x width pixels.

        Reproduces DINOv2's interpolation to the bit: the trained grid is returned as is only when
        the token count matches *and* the image is square (pixels, not patches); otherwise the
        M x M grid is resized bicubically in float32 with ``scale_factor = (rows + 0.1) / M,
        (cols + 0.1) / M`` (the historical offset; torch then uses these factors, not the size
        ratio, to place samples), or to an explicit size when the offset is 0 (register models).
        """
        p, m = self.cfg.patch_size, self.cfg.pos_grid
        rows, cols = height // p, width // p
        if rows * cols == m * m and height == width:
            return self.pos_embed
        pos = self.pos_embed.float()
        grid = pos[:, 1:].reshape(1, m, m, -1).permute(0, 3, 1, 2)  # [1, D, M, M]
        offset = self.cfg.interpolate_offset
        if offset:
            resize = {"scale_factor": ((rows + offset) / m, (cols + offset) / m)}
        else:
            resize = {"size": (rows, cols)}
        grid = F.interpolate(grid, mode="bicubic", antialias=self.cfg.interpolate_antialias, **resize)
        if grid.shape[-2:] != (rows, cols):
            raise RuntimeError(f"position grid resized to {tuple(grid.shape[-2:])}, expected {(rows, cols)}")
        patches = grid.permute(0, 2, 3, 1).reshape(1, rows * cols, -1)
        return torch.cat((pos[:, :1], patches), dim=1).to(self.pos_embed.dtype)

    def tokens(self, image: Tensor) -> Tensor:
        """[B, C, H, W] -> [B, 1 + R + N, D]: class token, registers, patch tokens, positions added."""
        b, _, height, width = image.shape
        x = self.patch_embed(image)
        x = torch.cat((self.cls_token.expand(b, -1, -1), x), dim=1)
        x = x + self.position_embedding(height, width)
        if self.register_tokens is not None:
            # Registers go after the class token and carry no position embedding.
            x = torch.cat((x[:, :1], self.register_tokens.expand(b, -1, -1), x[:, 1:]), dim=1)
        return x

    def intermediate_layers(self, image: Tensor, n: int = 4) -> list[tuple[Tensor, Tensor]]:
        """Outputs of the last ``n`` blocks, final-norm applied, as (patch tokens [B, N, D],
        class token [B, D]) pairs, shallowest first (DINOv2's ``get_intermediate_layers(x, n,
        return_class_token=True)``)."""
        x = self.tokens(image)
        first = len(self.blocks) - n
        skip = 1 + self.cfg.num_register_tokens
        out = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i >= first:
                normed = self.norm(x)
                out.append((normed[:, skip:], normed[:, 0]))
        return out
