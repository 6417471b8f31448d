"""Sat3DGen's 3D path, built from the published ``config.json`` and safetensors: the DINOv3 backbone
under ``unet_model.dino_model.``, the plane decoder under ``unet_model.decoder.`` and the density/colour
MLP under ``mlp.``, with the original parameter names, loaded strictly. The file's sky and
super-resolution modules (``sky_mapping.``, ``sky_decoder.``, ``sr_module.``) and the constant
``point_representer.oneplane_axes`` only serve panorama rendering and are not loaded.

What the original computes (``source/generator.py``: ``dino_3d_model``, ``from_sat_to_triplane``,
``density_reg``; ``source/rendering/``), for one 256² image normalised with ImageNet's mean/std:

    image [1, 3, 256, 256] -> DINOv3 last hidden state, patch tokens only -> [1, D, 16, 16]
    -> zero-padded by 16·pad tokens on each side (pad 0.125: 2) -> [1, D, 20, 20]
    -> LDM decoder -> planes [1, 2C, 320, 320]   ("oneplane": C = triplane.dim = 32)
    plane = planes[:, :C] [1, C, 320, 320] (rows = image rows, columns = image columns)
    line  = planes[:, C:].mean over rows [1, C, 320] (indexed by height)
    point (x, y, z) in [-1, 1]³ -> plane(x, y) ⊕ line(z)  (bilinear, zero outside, align_corners=False)
    -> MLP -> density softplus(raw - 1) ("mipnerf"; relu(raw + 3) for "relu"), colour sigmoid(...)[:3]

The colour branch is evaluated with a zero style code, as upstream's mesh colouring does (the style
code only tints panoramas), so ``style_squ`` contributes its bias alone.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import InputError
from ...nets.dinov3 import DINOv3Config, DINOv3ViT, canonical_key
from ...nets.ldm_decoder import LDMDecoder, LDMDecoderConfig
from ...weights import HUB_PREFIX, check_state_dict, load_state_dict, resolve_known, resolve_source

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
WHAT = "Sat3DGen"
SUBJECT = "--weights"
BACKBONE = "unet_model.dino_model."
# Modules of the published file that the volume never uses (see the module docstring).
UNUSED = ("sky_mapping.", "sky_decoder.", "sr_module.", "point_representer.")
# Backbones of config.json's ``opt.backbone`` that are DINOv3 ViT-L/16 (the published one is "-sat").
BACKBONES = ("dinov3-large-sat", "dinov3-large-lvd")
# Fixed in upstream's code, not in config.json: the decoder's base width and residual blocks per level,
# and the token grid (upstream asserts a 16 x 16 patch grid: 256 px at patch 16).
DECODER_CH = 128
DECODER_RES_BLOCKS = 2
TOKEN_GRID = 16
# ImageNet mean / std in 0-1 units (torchvision's Normalize after ToTensor, as upstream's inference).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
DENSITY_MODES = ("mipnerf", "relu")


@dataclass(frozen=True)
class Sat3DGenConfig:
    """The 3D path's architecture: backbone, decoder, ``plane_channels`` C (planes carry 2C
    channels), ``pad`` (config.json's ``opt.pad``: the image covers [-1/(1 + 2 pad), 1/(1 + 2 pad)]
    of the plane), the MLP's widths and the density activation."""

    vit: DINOv3Config
    decoder: LDMDecoderConfig
    plane_channels: int
    pad: float
    mlp_hidden: int
    style_dim: int
    colour_channels: int
    density_mode: str = "mipnerf"

    @property
    def input_size(self) -> int:
        """Side of the image the backbone reads (256)."""
        return TOKEN_GRID * self.vit.patch_size

    @property
    def pad_tokens(self) -> int:
        return round(TOKEN_GRID * self.pad)

    @property
    def plane_size(self) -> int:
        """Side of the decoded planes (320): padded token grid x the decoder's upsampling."""
        return (TOKEN_GRID + 2 * self.pad_tokens) * self.decoder.upsampling

    @property
    def image_half_extent(self) -> float:
        """Half the side of the image in model units (upstream's position_scale_factor, 0.8)."""
        return 1 / (1 + 2 * self.pad)

    @classmethod
    def published(cls) -> Sat3DGenConfig:
        """qian43/Sat3DGen: DINOv3 ViT-L/16; decoder 128 x [1, 2, 4, 4, 4] with middle attention to
        2 x 32 plane channels; pad 0.125; MLP 64 wide, 512-wide style code, 24 colour channels."""
        return cls(vit=DINOv3Config.vitl16(),
                   decoder=LDMDecoderConfig(ch=DECODER_CH, ch_mult=(1, 2, 4, 4, 4), num_res_blocks=DECODER_RES_BLOCKS,
                                            z_channels=1024, out_channels=64),
                   plane_channels=32, pad=0.125, mlp_hidden=64, style_dim=512, colour_channels=24)

    @classmethod
    def from_options(cls, opt: Mapping, state: Mapping[str, Tensor]) -> Sat3DGenConfig:
        """config.json's ``opt`` for what the code leaves to it, the state dict's shapes for the
        rest. Raises ValueError for a variant SatForge does not read, KeyError naming a missing
        state-dict key, TypeError/AttributeError for a malformed config."""
        network = opt["network"]
        backbone = opt.get("backbone", "dinov2-base")
        if backbone not in BACKBONES:
            raise ValueError(f"backbone {backbone!r} (SatForge reads the DINOv3 ViT-L/16 ones: {', '.join(BACKBONES)})")
        representation = opt.get("representation_type", "triplane")
        if representation != "oneplane":
            raise ValueError(f"representation_type {representation!r} (SatForge reads the published 'oneplane')")
        if not (network.get("no_hidden_states", False) and network.get("no_cls_token", False)):
            raise ValueError("intermediate layers or the class token as features (the published model reads "
                             "the last layer's patch tokens: no_hidden_states and no_cls_token true)")
        pad = float(opt.get("pad", 0.0))
        if TOKEN_GRID * pad != round(TOKEN_GRID * pad):
            raise ValueError(f"pad {pad} is not a whole number of tokens")
        density_mode = network.get("ray_marching_kwargs", {}).get("density_clamp_mode", "mipnerf")
        if density_mode not in DENSITY_MODES:
            raise ValueError(f"density_clamp_mode {density_mode!r}")
        triplane = network["triplane"]
        dim = int(triplane["dim"])
        vit = DINOv3Config.from_state_dict(state, BACKBONE)
        ch_mult = tuple(int(m) for m in triplane.get("ch_mult", (1, 2, 4, 4, 4)))
        decoder = LDMDecoderConfig(ch=DECODER_CH, ch_mult=ch_mult,
                                   num_res_blocks=DECODER_RES_BLOCKS, z_channels=vit.embed_dim, out_channels=2 * dim,
                                   mid_attention=bool(network.get("with_attn", True)))
        net0 = state["mlp.net0.weight"]                    # [hidden, 2C]
        return cls(vit=vit, decoder=decoder, plane_channels=dim, pad=pad, mlp_hidden=int(net0.shape[0]),
                   style_dim=int(state["mlp.style_squ.weight"].shape[1]),
                   colour_channels=int(network.get("color_channels", 32)), density_mode=density_mode)


class PlaneEncoder(nn.Module):
    """Upstream's ``dino_3d_model``: image [B, 3, 256, 256] -> planes [B, 2C, 320, 320]."""

    def __init__(self, cfg: Sat3DGenConfig):
        super().__init__()
        self.pad_tokens = cfg.pad_tokens
        self.dino_model = DINOv3ViT(cfg.vit)
        self.decoder = LDMDecoder(cfg.decoder)

    def forward(self, image: Tensor) -> Tensor:
        p = self.pad_tokens
        return self.decoder(F.pad(self.dino_model.patch_features(image), (p, p, p, p)))


class DensityColourMLP(nn.Module):
    """Upstream's ``MLPNetwork2``: features [M, 2C] -> softplus hidden [M, H] -> raw density [M]
    and, from the hidden layer and the (zero-)style code, colour channels [M, colour_channels]."""

    def __init__(self, cfg: Sat3DGenConfig):
        super().__init__()
        hidden = cfg.mlp_hidden
        self.net0 = nn.Linear(2 * cfg.plane_channels, hidden)
        self.net1_feature = nn.Linear(hidden, hidden // 2)
        self.net1_density = nn.Linear(hidden, 1)
        self.style_squ = nn.Linear(cfg.style_dim, hidden // 2)
        self.grd_color_convert = nn.Linear(hidden, cfg.colour_channels)

    def hidden(self, features: Tensor) -> Tensor:
        return F.softplus(self.net0(features))

    def raw_density(self, hidden: Tensor) -> Tensor:
        return self.net1_density(hidden)[:, 0]

    def colour(self, hidden: Tensor) -> Tensor:
        # style_squ(0) is its bias: the zero style code of upstream's mesh colouring.
        style = self.style_squ.bias.expand(hidden.shape[0], -1)
        return torch.sigmoid(self.grd_color_convert(torch.cat((self.net1_feature(hidden), style), dim=-1)))


class Sat3DGenModel(nn.Module):
    """The 3D path: ``planes`` from a normalised image, ``density_colour`` at points."""

    def __init__(self, cfg: Sat3DGenConfig):
        super().__init__()
        self.cfg = cfg
        self.unet_model = PlaneEncoder(cfg)
        self.mlp = DensityColourMLP(cfg)

    @property
    def device(self) -> torch.device:
        return self.mlp.net0.weight.device

    def planes(self, image: Tensor) -> Tensor:
        """[1, 3, 256, 256] ImageNet-normalised -> [1, 2C, 320, 320]."""
        return self.unet_model(image)

    def split(self, planes: Tensor) -> tuple[Tensor, Tensor]:
        """planes [1, 2C, P, P] -> the xy plane [1, C, P, P] and the z line as a one-column image
        [1, C, P, 1] (upstream's "oneplane": the second half averaged over the plane's rows)."""
        c = self.cfg.plane_channels
        return planes[:, :c], planes[:, c:].mean(dim=2).unsqueeze(-1)

    def features(self, plane: Tensor, line: Tensor, points: Tensor) -> Tensor:
        """The MLP's input [M, 2C] at points [M, 3] in model coordinates: plane(x, y) ⊕ line(z).
        ``plane``, ``line`` from ``split``."""
        grid = points[None, None]                                             # [1, 1, M, 3]
        xy = F.grid_sample(plane, grid[..., :2], mode="bilinear", padding_mode="zeros", align_corners=False)
        # The line is sampled as a one-pixel-wide image: x = 0 is that column's centre, y = z.
        zs = torch.cat((torch.zeros_like(grid[..., 2:]), grid[..., 2:]), dim=-1)
        z = F.grid_sample(line, zs, mode="bilinear", padding_mode="zeros", align_corners=False)
        return torch.cat((xy, z), dim=1)[0, :, 0].T

    def density_colour(self, plane: Tensor, line: Tensor, points: Tensor,
                       colour: bool = True) -> tuple[Tensor, Tensor | None]:
        """points [M, 3] in model coordinates -> density [M], RGB [M, 3] in [0, 1] (None unless
        ``colour``)."""
        hidden = self.mlp.hidden(self.features(plane, line, points))
        raw = self.mlp.raw_density(hidden)
        density = F.softplus(raw - 1) if self.cfg.density_mode == "mipnerf" else F.relu(raw + 3)
        return density, self.mlp.colour(hidden)[:, :3] if colour else None


def build_sat3dgen(cfg: Sat3DGenConfig, device: str | torch.device = "cpu") -> Sat3DGenModel:
    """A Sat3DGenModel with freshly initialised weights (``device="meta"``: shapes only)."""
    with torch.device(device):
        return Sat3DGenModel(cfg)


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sat3dgen_from_files(config_path: Path, weights_path: Path,
                        device: str | torch.device | None = None) -> Sat3DGenModel:
    """The 3D path the two files describe, its tensors loaded in place, in eval mode and float32.
    Anything that is not a Sat3DGen config or checkpoint is an InputError naming the file and the
    first missing or unexpected key."""
    opt = _read_options(config_path)
    subject = str(weights_path)
    state = {_canonical(k): v for k, v in load_state_dict(weights_path, subject).items() if not k.startswith(UNUSED)}
    fix = f"pass a checkpoint of {WHAT}"
    try:
        cfg = Sat3DGenConfig.from_options(opt, state)
    except KeyError as err:
        key = err.args[0]
        if key.startswith(("unet_model.", "mlp.")):
            raise InputError(subject, f"not {WHAT} weights: missing key {key!r}", fix) from None
        raise InputError(str(config_path), f"not a {WHAT} config: no {key!r} option",
                         "pass the config.json published with the weights") from None
    except ValueError as err:
        raise InputError(str(config_path), f"unsupported {WHAT} variant: {err}",
                         "pass the published qian43/Sat3DGen config.json") from None
    except (TypeError, AttributeError) as err:
        raise InputError(str(config_path), f"not a {WHAT} config ({err})",
                         "pass the config.json published with the weights") from None
    model = build_sat3dgen(cfg, "meta")
    check_state_dict({k: v.shape for k, v in model.state_dict().items()}, state, subject, WHAT)
    model.load_state_dict(state, strict=True, assign=True)
    return model.float().to(device or default_device()).eval()


def load_sat3dgen(src: str | None = None, device: str | torch.device | None = None) -> Sat3DGenModel:
    """Resolve and load the model: ``src`` is a folder holding ``config.json`` and
    ``diffusion_pytorch_model.safetensors``, either of those files (the other is read next to it),
    a hub source ``hf:OWNER/REPO[@REVISION][/FILE]``, or None for the registered files from the hub
    cache (never downloaded here). ``device``: CUDA when present when None."""
    config_path, weights_path = sat3dgen_files(src)
    return sat3dgen_from_files(config_path, weights_path, device)


def sat3dgen_files(src: str | None) -> tuple[Path, Path]:
    """The local config.json and safetensors a source names (see ``load_sat3dgen``)."""
    if src is None:
        return resolve_known("sat3dgen-config", SUBJECT), resolve_known("sat3dgen-weights", SUBJECT)
    if src.startswith(HUB_PREFIX):
        folder = _hub_folder(src)
        return (resolve_source(f"{folder}/{CONFIG_FILE}", SUBJECT),
                resolve_source(f"{folder}/{WEIGHTS_FILE}", SUBJECT))
    path = Path(src).expanduser()
    folder = path if path.is_dir() else path.parent
    weights = path if path.is_file() and path.name != CONFIG_FILE else folder / WEIGHTS_FILE
    for needed in (folder / CONFIG_FILE, weights):
        if not needed.is_file():
            raise InputError(SUBJECT, f"{needed} does not exist: {WHAT} reads {CONFIG_FILE} and {WEIGHTS_FILE} "
                             "from one folder", "pass that folder, or run 'satforge weights fetch sat3dgen'")
    return folder / CONFIG_FILE, weights


def _hub_folder(src: str) -> str:
    """``hf:OWNER/REPO[@REV]`` of a hub source, followed by the folder of its FILE when one is given."""
    owner, _, rest = src[len(HUB_PREFIX):].partition("/")
    repo, _, file = rest.partition("/")
    name, at, revision = repo.partition("@")
    if not owner or not name or (at and not revision):
        raise InputError(SUBJECT, f"{src!r} is not a hub source", "write hf:OWNER/REPO[@REVISION][/FILE]")
    folder = file.rpartition("/")[0]
    return f"{HUB_PREFIX}{owner}/{repo}" + (f"/{folder}" if folder else "")


def _canonical(key: str) -> str:
    return canonical_key(key) if key.startswith(BACKBONE) else key


def _read_options(path: Path) -> Mapping:
    fix = "pass the config.json published with the weights"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(str(path), f"not a readable JSON file ({err})", fix) from None
    opt = config.get("opt") if isinstance(config, dict) else None
    if not isinstance(opt, dict) or not isinstance(opt.get("network"), dict):
        raise InputError(str(path), f"not a {WHAT} config: no 'opt.network' section", fix)
    return opt
