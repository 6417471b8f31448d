"""DINOv3 ViT backbone (patch embedding, class and register tokens, 2D rotary position embedding on
the patch tokens, pre-norm blocks with layer scale), written from the DINOv3 paper's description and
the behaviour of Hugging Face ``transformers``' ``DINOv3ViTModel`` (4.56 to 5.x), which is what
Sat3DGen builds and saves.

Why our own module and not ``transformers``: the network is ~150 lines of standard parts, the only
subtle piece is the rotary embedding (below), and our copy keeps the checkpoint's parameter names
without pulling a large dependency (and its version churn: 5.x moved the blocks from ``layer.{i}`` to
``model.layer.{i}``) into the product. Parity with ``transformers`` is tested on random weights
(``tests/test_sat3dgen_parity.py``).

Parameter names are those ``transformers`` 4.56-4.57 writes (``embeddings.cls_token``,
``layer.{i}.attention.q_proj``, ``layer.{i}.layer_scale1.lambda1``, ``norm``, ...), so a state dict
loads with ``strict=True``; ``canonical_key`` maps the 5.x names onto them. Shapes:

    image   [B, 3, H, W]       H, W multiples of the patch size p (16)
    tokens  [B, 1 + R + N, D]  class token, R register tokens, N = (H/p)(W/p) patch tokens (row-major)
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Width of one attention head in every DINOv3 ViT size (heads = width / 64); checkpoints do not store it.
HEAD_DIM = 64
_LAYER = re.compile(r"layer\.(\d+)\.")
# transformers >= 5 nests the blocks one level deeper; the published files use the 4.x layout.
_V5_LAYER = re.compile(r"(^|\.)model\.layer\.")


def canonical_key(key: str) -> str:
    """The 4.x name of a backbone key written by either ``transformers`` layout."""
    return _V5_LAYER.sub(r"\1layer.", key)


@dataclass(frozen=True)
class DINOv3Config:
    """Everything that sets a DINOv3 ViT's parameter shapes and forward pass.

    ``rope_theta`` and ``layer_norm_eps`` are not stored in checkpoints: 100 and 1e-5 for every
    published DINOv3 ViT (the ``dinov3-large-sat`` / ``-lvd`` configurations Sat3DGen builds).
    """

    embed_dim: int
    depth: int
    num_heads: int
    mlp_hidden: int
    patch_size: int
    in_chans: int
    num_register_tokens: int
    query_bias: bool = True
    key_bias: bool = False
    value_bias: bool = True
    proj_bias: bool = True
    mlp_bias: bool = True
    rope_theta: float = 100.0
    layer_norm_eps: float = 1e-5

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Tensor], prefix: str = "") -> DINOv3Config:
        """Infer the architecture from a state dict's keys (4.x names) and shapes.

        Width from ``embeddings.cls_token`` [1, 1, D]; depth from the number of ``layer.{i}``;
        heads = width / 64; MLP width from ``layer.0.mlp.up_proj`` [hidden, D]; patch size and input
        channels from ``embeddings.patch_embeddings`` [D, C, p, p]; register count from
        ``embeddings.register_tokens`` [1, R, D]; each projection's bias from its key. Raises KeyError
        naming the first key it needs and lacks.
        """
        embed_dim = int(state[f"{prefix}embeddings.cls_token"].shape[-1])
        proj = state[f"{prefix}embeddings.patch_embeddings.weight"]
        registers = state[f"{prefix}embeddings.register_tokens"]
        layer = re.compile(re.escape(prefix) + _LAYER.pattern)
        indices = {int(m.group(1)) for key in state if (m := layer.match(key))}
        if not indices:
            raise KeyError(f"{prefix}layer.0.norm1.weight")
        first = f"{prefix}layer.0."
        return cls(
            embed_dim=embed_dim,
            depth=max(indices) + 1,
            num_heads=max(1, embed_dim // HEAD_DIM),
            mlp_hidden=int(state[f"{first}mlp.up_proj.weight"].shape[0]),
            patch_size=int(proj.shape[-1]),
            in_chans=int(proj.shape[1]),
            num_register_tokens=int(registers.shape[1]),
            query_bias=f"{first}attention.q_proj.bias" in state,
            key_bias=f"{first}attention.k_proj.bias" in state,
            value_bias=f"{first}attention.v_proj.bias" in state,
            proj_bias=f"{first}attention.o_proj.bias" in state,
            mlp_bias=f"{first}mlp.up_proj.bias" in state,
        )

    @classmethod
    def vitl16(cls) -> DINOv3Config:
        """DINOv3 ViT-L/16 (the ``sat493m`` and ``lvd1689m`` backbones): 1024 wide, 24 blocks, 16
        heads, MLP 4096, 4 registers, no key bias."""
        return cls(embed_dim=1024, depth=24, num_heads=16, mlp_hidden=4096, patch_size=16, in_chans=3,
                   num_register_tokens=4)


class Embeddings(nn.Module):
    """[B, C, H, W] -> [B, 1 + R + N, D]: class token, register tokens, patch tokens (no absolute
    position embedding: positions enter through the rotary embedding). ``mask_token`` [1, 1, D] only
    serves masked pre-training; it is kept so published checkpoints load with ``strict=True``."""

    def __init__(self, cfg: DINOv3Config):
        super().__init__()
        dim = cfg.embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, cfg.num_register_tokens, dim))
        self.patch_embeddings = nn.Conv2d(cfg.in_chans, dim, kernel_size=cfg.patch_size, stride=cfg.patch_size)

    def forward(self, image: Tensor) -> Tensor:
        b = image.shape[0]
        patches = self.patch_embeddings(image).flatten(2).transpose(1, 2)
        return torch.cat((self.cls_token.expand(b, -1, -1), self.register_tokens.expand(b, -1, -1), patches), dim=1)


def rope_cos_sin(rows: int, cols: int, head_dim: int, theta: float, device: torch.device) -> tuple[Tensor, Tensor]:
    """cos, sin [rows * cols, head_dim] of DINOv3's 2D rotary embedding, computed in float32.

    Each patch centre gets coordinates in [-1, 1] (row y, column x: (index + 0.5) / count * 2 - 1).
    With head_dim / 4 frequencies f_k = theta^(-4k / head_dim), the angles are 2π·y·f_k followed by
    2π·x·f_k (head_dim / 2 values), repeated twice to span the head, matched with ``_rotate_half``.
    """
    freqs = 1 / theta ** torch.arange(0, 1, 4 / head_dim, dtype=torch.float32, device=device)  # [head_dim / 4]
    ys = torch.arange(0.5, rows, dtype=torch.float32, device=device) / rows
    xs = torch.arange(0.5, cols, dtype=torch.float32, device=device) / cols
    centres = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).flatten(0, 1) * 2.0 - 1.0  # [N, 2]
    angles = (2 * math.pi * centres[:, :, None] * freqs[None, None, :]).flatten(1, 2).tile(2)       # [N, head_dim]
    return torch.cos(angles), torch.sin(angles)


def _rotate_half(x: Tensor) -> Tensor:
    """(a, b) -> (-b, a) on the two halves of the last dimension."""
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class Attention(nn.Module):
    """Multi-head self-attention with the rotary embedding applied to the patch tokens' queries and
    keys only (the class and register tokens carry no position). [B, T, D] -> [B, T, D]."""

    def __init__(self, cfg: DINOv3Config):
        super().__init__()
        dim = cfg.embed_dim
        self.num_heads = cfg.num_heads
        self.q_proj = nn.Linear(dim, dim, bias=cfg.query_bias)
        self.k_proj = nn.Linear(dim, dim, bias=cfg.key_bias)
        self.v_proj = nn.Linear(dim, dim, bias=cfg.value_bias)
        self.o_proj = nn.Linear(dim, dim, bias=cfg.proj_bias)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = (proj(x).view(b, t, self.num_heads, -1).transpose(1, 2)   # [B, heads, T, head_dim]
                   for proj in (self.q_proj, self.k_proj, self.v_proj))
        prefix = t - cos.shape[0]
        q, k = (torch.cat((y[..., :prefix, :], y[..., prefix:, :] * cos + _rotate_half(y[..., prefix:, :]) * sin),
                          dim=-2) for y in (q, k))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, d))


class Mlp(nn.Module):
    """up_proj -> exact GELU -> down_proj."""

    def __init__(self, cfg: DINOv3Config):
        super().__init__()
        self.up_proj = nn.Linear(cfg.embed_dim, cfg.mlp_hidden, bias=cfg.mlp_bias)
        self.down_proj = nn.Linear(cfg.mlp_hidden, cfg.embed_dim, bias=cfg.mlp_bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.gelu(self.up_proj(x)))


class LayerScale(nn.Module):
    """Per-channel scale of a residual branch (``lambda1`` [D])."""

    def __init__(self, dim: int):
        super().__init__()
        self.lambda1 = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.lambda1


class Layer(nn.Module):
    """Pre-norm block: x + ls1(attn(norm1 x)), then x + ls2(mlp(norm2 x))."""

    def __init__(self, cfg: DINOv3Config):
        super().__init__()
        dim = cfg.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.attention = Attention(cfg)
        self.layer_scale1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=cfg.layer_norm_eps)
        self.mlp = Mlp(cfg)
        self.layer_scale2 = LayerScale(dim)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        x = x + self.layer_scale1(self.attention(self.norm1(x), cos, sin))
        return x + self.layer_scale2(self.mlp(self.norm2(x)))


class DINOv3ViT(nn.Module):
    """The DINOv3 ViT without a head: ``forward`` is ``transformers``' ``last_hidden_state``."""

    def __init__(self, cfg: DINOv3Config):
        super().__init__()
        self.cfg = cfg
        self.embeddings = Embeddings(cfg)
        self.layer = nn.ModuleList(Layer(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)

    def forward(self, image: Tensor) -> Tensor:
        """[B, C, H, W] -> [B, 1 + R + N, D], final norm applied to every token."""
        p = self.cfg.patch_size
        cos, sin = rope_cos_sin(image.shape[-2] // p, image.shape[-1] // p, self.cfg.embed_dim // self.cfg.num_heads,
                                self.cfg.rope_theta, image.device)
        x = self.embeddings(image)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        for layer in self.layer:
            x = layer(x, cos, sin)
        return self.norm(x)

    def patch_features(self, image: Tensor) -> Tensor:
        """[B, C, H, W] -> [B, D, H/p, W/p]: the normed patch tokens as a feature map."""
        b, _, height, width = image.shape
        p = self.cfg.patch_size
        tokens = self.forward(image)[:, 1 + self.cfg.num_register_tokens:]
        return tokens.transpose(1, 2).reshape(b, self.cfg.embed_dim, height // p, width // p)
