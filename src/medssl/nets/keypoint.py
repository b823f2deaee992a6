"""Keypoint networks on a ResNet trunk: CCF-Net's multi-scale context module and coarse head.

CCF-Net (Multi-Scale Context-Guided Lumbar Spine Disease Identification with Coarse-to-fine
Localization and Classification, ISBI 2022; code czifan/CCFNet.pytorch) reads a ResNet to
``layer3`` (stride 16 with the ImageNet stem), reduces it to 256 channels, enriches it with a
multi-scale context module and predicts, per landmark and per cell of that stride-16 grid, a
heatmap, an x and a y offset and class logits. The context module is CE-Net's (Gu et al., TMI
2019), as the official code has it: a dense atrous convolution block (cascaded 3x3 convolutions
of dilation 1, 3 and 5, weights shared between branches) and residual multi-kernel pooling (max
pooling over 2, 4 and 8 cells, each squeezed to one channel and upsampled back), then a
bottleneck back to the input width.

Shapes: input ``(B, C, X, Y)`` with sides divisible by the stride; ``heat`` ``(B, L, X/s, Y/s)``,
``offset`` ``(B, L, 2, X/s, Y/s)`` (x then y, in cells), ``landmark_logits``
``(B, L, K_l, X/s, Y/s)`` and ``class_logits`` ``(B, K)`` when asked for.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from monai.networks.nets import ResNet
from monai.networks.nets.resnet import ResNetBottleneck
from torch import nn

from medssl.nets.heads import ClassificationHead

__all__ = [
    "CCFNet",
    "DenseAtrousContext",
    "MultiKernelPooling",
    "MultiScaleContext",
    "resnet_trunk",
]


class DenseAtrousContext(nn.Module):
    """CE-Net's dense atrous convolution: ``x`` plus four branches of growing receptive field
    (3x3 convolutions of dilation 1; 3 then 1x1; 1, 3 then 1x1; 1, 3, 5 then 1x1), the
    convolutions shared between branches. ``(B, C, X, Y) -> (B, C, X, Y)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.dilate1 = nn.Conv2d(channels, channels, 3, dilation=1, padding=1)
        self.dilate3 = nn.Conv2d(channels, channels, 3, dilation=3, padding=3)
        self.dilate5 = nn.Conv2d(channels, channels, 3, dilation=5, padding=5)
        self.squeeze = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d1 = self.dilate1(x)
        d13 = self.dilate3(d1)
        branches = (
            d1,
            self.squeeze(self.dilate3(x)),
            self.squeeze(d13),
            self.squeeze(self.dilate5(d13)),
        )
        return x + sum(F.relu(b) for b in branches)


class MultiKernelPooling(nn.Module):
    """CE-Net's residual multi-kernel pooling: max pools over 2, 4 and 8 cells, each squeezed
    to one channel by a shared 1x1 convolution and upsampled back, concatenated to the input.
    ``(B, C, X, Y) -> (B, C + 3, X, Y)``; any grid size (pools round up)."""

    KERNELS = (2, 4, 8)

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(channels, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        pooled = [
            F.interpolate(
                self.squeeze(F.max_pool2d(x, k, k, ceil_mode=True)),
                size=size,
                mode="bilinear",
                align_corners=True,
            )
            for k in self.KERNELS
        ]
        return torch.cat([*pooled, x], dim=1)


class MultiScaleContext(nn.Sequential):
    """The context module of CCF-Net's "-MSC" backbones: dense atrous convolution, multi-kernel
    pooling, then a bottleneck from ``C + 3`` back to ``C`` channels (``C`` divisible by 4)."""

    def __init__(self, channels: int) -> None:
        downsample = nn.Sequential(
            nn.Conv2d(channels + 3, channels, 1, bias=False), nn.BatchNorm2d(channels)
        )
        super().__init__(
            OrderedDict(
                dac=DenseAtrousContext(channels),
                rmp=MultiKernelPooling(channels),
                bottleneck=ResNetBottleneck(
                    channels + 3, channels // 4, spatial_dims=2, downsample=downsample
                ),
            )
        )


def resnet_trunk(net: ResNet) -> tuple[nn.Sequential, int, int]:
    """A MONAI ResNet's stem and ``layer1``-``layer3`` sharing its weights, with their output
    channels and stride (``conv1``'s stride, times 2 for the max pool, times 4)."""
    stem = ["conv1", "bn1", "act"] + ([] if net.no_max_pool else ["maxpool"])
    names = [*stem, "layer1", "layer2", "layer3"]
    trunk = nn.Sequential(OrderedDict((name, getattr(net, name)) for name in names))
    conv_stride = net.conv1.stride
    stride = int(conv_stride[0] if isinstance(conv_stride, tuple) else conv_stride)
    stride *= 1 if net.no_max_pool else 2
    norms = [m for m in net.layer3.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    return trunk, int(norms[-1].num_features), stride * 4


class CCFNet(nn.Module):
    """ResNet trunk, 1x1 reduction to ``width`` channels, optional multi-scale context, one 1x1
    convolution to the per-cell outputs; an image-level classifier on the pooled context
    features when ``num_classes`` is given."""

    def __init__(
        self,
        backbone: ResNet,
        num_landmarks: int,
        width: int = 256,
        context: bool = True,
        num_classes: int = 0,
        landmark_classes: int = 0,
    ) -> None:
        super().__init__()
        self.trunk, channels, self.stride = resnet_trunk(backbone)
        self.reduce = nn.Conv2d(channels, width, 1)
        self.context = MultiScaleContext(width) if context else nn.Identity()
        self.num_landmarks, self.landmark_classes = num_landmarks, landmark_classes
        self.out = nn.Conv2d(width, num_landmarks * (3 + landmark_classes), 1)
        self.classifier = ClassificationHead(width, num_classes) if num_classes else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | None]:
        features = self.context(self.reduce(self.trunk(x)))
        maps = self.out(features)
        n, grid = self.num_landmarks, maps.shape[2:]
        b = maps.shape[0]
        heat, offset, classes = torch.split(maps, [n, 2 * n, n * self.landmark_classes], dim=1)
        return {
            "heat": heat,
            "offset": offset.reshape(b, n, 2, *grid),
            "landmark_logits": (
                classes.reshape(b, n, self.landmark_classes, *grid)
                if self.landmark_classes
                else None
            ),
            "class_logits": self.classifier(features) if self.classifier is not None else None,
        }
