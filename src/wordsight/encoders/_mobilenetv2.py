"""MobileNetV2 with torchvision's module layout, so torchvision state dicts load strictly.

(torchvision itself cannot be a dependency: its PyPI wheels are CUDA builds that fail to import
beside a CPU torch.)
"""
from __future__ import annotations

from torch import nn


def _conv_bn_relu(inp: int, out: int, kernel: int = 3, stride: int = 1, groups: int = 1):
    return nn.Sequential(
        nn.Conv2d(inp, out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out),
        nn.ReLU6(inplace=True),
    )


class _InvertedResidual(nn.Module):
    def __init__(self, inp: int, out: int, stride: int, expand: int):
        super().__init__()
        hidden = inp * expand
        self.use_res_connect = stride == 1 and inp == out
        layers = [] if expand == 1 else [_conv_bn_relu(inp, hidden, kernel=1)]
        layers += [
            _conv_bn_relu(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    # (expansion, channels, repeats, first stride)
    SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, num_classes: int = 1000, last_channel: int = 1280):
        super().__init__()
        inp = 32
        features = [_conv_bn_relu(3, inp, stride=2)]
        for t, c, n, s in self.SETTINGS:
            for i in range(n):
                features.append(_InvertedResidual(inp, c, s if i == 0 else 1, t))
                inp = c
        features.append(_conv_bn_relu(inp, last_channel, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last_channel, num_classes))
        self.num_features = last_channel

    def forward_features(self, x):
        """Feature map before pooling (B, 1280, H/32, W/32)."""
        return self.features(x)

    def forward_head(self, fmap, pre_logits: bool = False):
        pooled = fmap.mean((2, 3))
        return pooled if pre_logits else self.classifier(pooled)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))
