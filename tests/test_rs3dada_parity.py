"""RS3DAda parity with the original code in ../shared/reference (skipped when it is absent).

The original ``DPT_DINOv2`` is built with a local, reduced DINOv2 (torch.hub.load is patched to build
it from the reference folder: nothing is fetched) and random weights scaled so that heights and
classes vary across the image; its state dict is saved as upstream saves it. SynRS3D's own
``infer_height.py`` / ``infer_segmentation.py`` ``main()`` then run unmodified on a GeoTIFF, with
only their I/O adapted: arguments through ``sys.argv``, the model class given the reduced head
sizes, ``.cuda()`` a no-op, albumentations (not a dependency of ours) replaced by its documented
arithmetic, the GDAL writer replaced by capturing the array. Ours loads the same file through the
real loader and must agree.
"""
from __future__ import annotations

import importlib.util
import sys
from functools import partial
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
import torch

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
pytestmark = pytest.mark.skipif(not REFERENCE.is_dir(),
                                reason=f"the original code is not here ({REFERENCE} is absent in a plain clone)")

HEAD_CONFIGS = [{"name": "regression", "nclass": 1}, {"name": "segmentation", "nclass": 8}]
# The reduced backbone: 518 px position grid like DINOv2's, but 128 wide and 4 blocks deep.
SMALL_VIT = dict(img_size=518, patch_size=14, embed_dim=128, depth=4, num_heads=2, mlp_ratio=4,
                 init_values=1.0, block_chunks=0)
# Reduced heads, with four different reassembly widths so ours must read each from the checkpoint.
SMALL_HEADS = dict(features=64, out_channels=[32, 64, 96, 128])
IMAGE_SHAPE = (160, 230)           # rows, columns: non-square, several patches each way
UPSTREAM_MODULES = ("models", "utils", "dinov2", "albumentations", "osgeo")


def _albumentations_stub() -> dict[str, ModuleType]:
    """albumentations as the infer scripts use it. Normalize computes what albumentations does:
    (x - mean * max_pixel_value) * reciprocal(std * max_pixel_value) in float32; ToTensorV2 turns
    HWC into a CHW tensor."""
    class Normalize:
        def __init__(self, mean, std, max_pixel_value=255.0, always_apply=False, p=1.0):
            self.mean = np.array(mean, np.float32) * max_pixel_value
            self.denominator = np.reciprocal(np.array(std, np.float32) * max_pixel_value)

        def __call__(self, image):
            return (image.astype(np.float32) - self.mean) * self.denominator

    class ToTensorV2:
        def __call__(self, image):
            return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))

    class Compose:
        def __init__(self, transforms):
            self.transforms = transforms

        def __call__(self, image):
            for transform in self.transforms:
                image = transform(image)
            return {"image": image}

    album, pytorch = ModuleType("albumentations"), ModuleType("albumentations.pytorch")
    album.Compose, album.Normalize, pytorch.ToTensorV2 = Compose, Normalize, ToTensorV2
    album.pytorch = pytorch
    osgeo = ModuleType("osgeo")
    osgeo.gdal = ModuleType("osgeo.gdal")
    return {"albumentations": album, "albumentations.pytorch": pytorch, "osgeo": osgeo, "osgeo.gdal": osgeo.gdal}


def _upstream_names() -> list[str]:
    return [n for n in sys.modules if n.split(".")[0] in UPSTREAM_MODULES]


@pytest.fixture(scope="module")
def upstream():
    """The original modules, importable for this file only; the rest of the session never sees them."""
    saved = {n: sys.modules.pop(n) for n in _upstream_names()}
    sys.path[:0] = [str(REFERENCE / "SynRS3D"), str(REFERENCE / "dinov2")]
    sys.modules.update(_albumentations_stub())
    with pytest.MonkeyPatch.context() as mp:
        from dinov2.layers import MemEffAttention, NestedTensorBlock
        from dinov2.models.vision_transformer import DinoVisionTransformer

        def local_hub_load(repo, name, pretrained=True):
            assert repo == "facebookresearch/dinov2" and not pretrained
            return DinoVisionTransformer(block_fn=partial(NestedTensorBlock, attn_class=MemEffAttention), **SMALL_VIT)

        mp.setattr(torch.hub, "load", local_hub_load)
        mp.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)
        mp.setattr(torch.nn.Module, "cuda", lambda self, *a, **k: self)
        from models.dpt import DPT_DINOv2

        infer = {name: _import_file(REFERENCE / "SynRS3D" / f"{name}.py", f"synrs3d_{name}")
                 for name in ("infer_height", "infer_segmentation")}
        for module in infer.values():  # main() builds the model with the default (ViT-L sized) heads
            mp.setattr(module, "DPT_DINOv2", partial(DPT_DINOv2, **SMALL_HEADS))
        yield SimpleNamespace(DPT_DINOv2=DPT_DINOv2, infer=infer, DinoVisionTransformer=DinoVisionTransformer,
                              block=partial(NestedTensorBlock, attn_class=MemEffAttention))
    for name in _upstream_names():
        del sys.modules[name]
    sys.modules.update(saved)
    del sys.path[:2]


def _import_file(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _image() -> np.ndarray:
    """[H, W, 4] uint8: smooth colour fields with blocks and noise (the 4th band must be ignored)."""
    rng = np.random.default_rng(3)
    rows, cols = IMAGE_SHAPE
    y, x = np.mgrid[0:rows, 0:cols] / 40.0
    rgb = np.stack([np.sin(x + 0.5 * y), np.cos(1.3 * y - x), np.sin(0.7 * x * y)], -1) * 80 + 128
    rgb[40:90, 60:120] = (200, 60, 50)
    rgb[100:150, 150:210] = (30, 120, 40)
    rgb += rng.normal(0, 12, rgb.shape)
    nir = rng.integers(0, 256, (rows, cols, 1))
    return np.clip(np.concatenate([rgb, nir], -1), 0, 255).astype(np.uint8)


def _write_geotiff(path: Path, image: np.ndarray) -> None:
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", height=image.shape[0], width=image.shape[1],
                       count=image.shape[2], dtype="uint8", crs="EPSG:28992",
                       transform=from_origin(155000.0, 463000.0, 0.25, 0.25)) as dst:
        dst.write(np.moveaxis(image, -1, 0))


def _randomise(model: torch.nn.Module, image: np.ndarray) -> None:
    """Random BatchNorm statistics, and output layers rescaled so that on this image heights spread
    over metres (about 70 % above ground) and several classes win somewhere."""
    gen = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1, generator=gen)
            module.running_var.uniform_(0.5, 2.0, generator=gen)
            module.weight.data.normal_(1.0, 0.1, generator=gen)
            module.bias.data.normal_(0.0, 0.1, generator=gen)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    x = (torch.from_numpy(image[:140, :140, :3]).permute(2, 0, 1)[None].float() - mean) / std
    model.eval()
    with torch.no_grad():
        out = model(x)
        regression = model.heads["regression"].scratch.output_conv2[1]
        plain = out["regression"] - regression.bias
        scale = 5.0 / plain.std()
        regression.weight *= scale
        regression.bias.fill_(-torch.quantile(plain * scale, 0.3))
        classify = model.heads["segmentation"].scratch.output_conv[1]
        logits = out["segmentation"] - classify.bias.view(1, -1, 1, 1)
        scale = 3.0 / logits.std()
        classify.weight *= scale
        classify.bias.copy_(-(logits * scale).mean(dim=(0, 2, 3)))  # no class wins everywhere


@pytest.fixture(scope="module")
def checkpoint(upstream, tmp_path_factory):
    """A random reduced RS3DAda saved as upstream saves it, and the GeoTIFF to run on."""
    folder = tmp_path_factory.mktemp("rs3dada")
    torch.manual_seed(0)
    model = upstream.DPT_DINOv2(encoder="vitl", head_configs=HEAD_CONFIGS, pretrained=False, **SMALL_HEADS)
    image = _image()
    _randomise(model, image)
    torch.save(model.state_dict(), folder / "small.pth")
    _write_geotiff(folder / "rgb.tif", image)
    return SimpleNamespace(model=model, path=folder / "small.pth", tif=folder / "rgb.tif", image=image)


def _run_upstream(upstream, name: str, checkpoint, patch: int, stride: int, tta: bool) -> np.ndarray:
    module = upstream.infer[name]
    captured = {}
    argv = ["infer", "--data_dir", str(checkpoint.tif), "--output_path", "unused.tif", "--restore_from",
            str(checkpoint.path), "--patch_size", str(patch), "--overlap", str(stride)] + (["--use_tta"] * tta)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", argv)
        mp.setenv("CUDA_VISIBLE_DEVICES", "")  # main() sets it; keep the session's value
        mp.setattr(module, "save_tiff_with_geo_info", lambda src, dst, data: captured.update(data=data))
        module.main()
    return captured["data"]


@pytest.mark.parametrize("patch, stride, tta", [(70, 35, False), (70, 35, True), (84, 56, False)])
def test_tiled_inference_matches_upstream(upstream, checkpoint, patch, stride, tta):
    from satforge.core.generators.rs3dada.model import load_rs3dada
    from satforge.core.generators.rs3dada.tiled import estimate

    theirs_height = np.maximum(_run_upstream(upstream, "infer_height", checkpoint, patch, stride, tta), 0)
    theirs_classes = _run_upstream(upstream, "infer_segmentation", checkpoint, patch, stride, tta)
    models = load_rs3dada(str(checkpoint.path))
    assert models.height is models.classes  # one file: both rasters from it, one forward pass
    ndsm, classes = estimate(checkpoint.image, models, patch=patch, stride=stride, tta=tta, batch=3)

    assert ndsm.shape == classes.shape == IMAGE_SHAPE and ndsm.dtype == np.float32 and classes.dtype == np.uint8
    # A model whose output is constant would make parity meaningless.
    assert theirs_height.std() > 1.0 and (theirs_height > 0).mean() > 0.3
    assert len(np.unique(theirs_classes)) >= 3
    spread = theirs_height.max() - theirs_height.min()
    error = np.abs(ndsm - theirs_height).max()
    agree = (classes == theirs_classes + 1).mean()
    print(f"patch {patch} stride {stride} tta {tta}: nDSM max error {error:.2e} m of a {spread:.1f} m range "
          f"({error / spread:.1e}), classes agree on {agree:.5%} ({len(np.unique(classes))} classes present)")
    assert error <= 1e-3 * spread
    assert agree >= 0.999


def test_small_image_is_one_padded_patch(checkpoint):
    """Below patch - stride px upstream divides 0 by 0; ours runs the zero-padded patch and crops."""
    from satforge.core.generators.rs3dada.model import load_rs3dada
    from satforge.core.generators.rs3dada.tiled import estimate

    small = checkpoint.image[:30, :45]
    ndsm, classes = estimate(small, load_rs3dada(str(checkpoint.path)), patch=70, stride=35)
    padded = np.zeros((70, 70, 3), np.float32)
    padded[:30, :45] = small[..., :3]
    mean, std = np.array([123.675, 116.28, 103.53], np.float32), np.array([58.395, 57.12, 57.375], np.float32)
    x = torch.from_numpy((padded - mean) / std).permute(2, 0, 1)[None]
    with torch.no_grad():
        out = checkpoint.model(x)
    expect_height = np.maximum(out["regression"][0, 0, :30, :45].numpy(), 0)
    expect_classes = out["segmentation"][0, :, :30, :45].argmax(0).numpy() + 1
    assert np.isfinite(ndsm).all()
    assert np.abs(ndsm - expect_height).max() <= 1e-4 * max(1.0, np.ptp(expect_height))
    assert (classes == expect_classes).mean() >= 0.999


@pytest.mark.parametrize("size", [(518, 518), (518, 532), (140, 98), (1022, 1022), (70, 70)])
def test_position_embedding_is_dinov2s(upstream, size):
    """Bit-identical interpolation, including the square-518 shortcut and the +0.1 offset."""
    from satforge.core.nets.dinov2 import DinoVisionTransformer, ViTConfig

    theirs = upstream.DinoVisionTransformer(block_fn=upstream.block, **SMALL_VIT)
    theirs.pos_embed.data.normal_(0, 1)
    ours = DinoVisionTransformer(ViTConfig.from_state_dict(theirs.state_dict()))
    ours.load_state_dict(theirs.state_dict(), strict=True)
    tokens = torch.zeros(1, 1 + (size[0] // 14) * (size[1] // 14), 128)
    with torch.no_grad():
        expect = theirs.interpolate_pos_encoding(tokens, *size)
        got = ours.position_embedding(*size)
    assert torch.equal(got, expect)


def test_vitl_layout_equals_upstream(upstream, monkeypatch):
    """Our ViT-L RS3DAda has the original's key names, order and shapes (both built on meta)."""
    from dinov2.hub.backbones import dinov2_vitl14

    from satforge.core.generators.rs3dada.model import RS3DAdaConfig, build_rs3dada

    monkeypatch.setattr(torch.hub, "load", lambda repo, name, pretrained: dinov2_vitl14(pretrained=False))
    with torch.device("meta"):
        theirs = upstream.DPT_DINOv2(encoder="vitl", head_configs=HEAD_CONFIGS, pretrained=False)
    ours = build_rs3dada(RS3DAdaConfig.official(), "meta")
    shapes = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == list(shapes.items())
    assert len(shapes) == 629
    assert sum(p.numel() for p in theirs.parameters()) == sum(p.numel() for p in ours.parameters()) == 366_539_209
