"""Image -> pooled feature vector for every network family of the factory: ``encoder_of(net)``.

Self-supervised methods train an encoder and a projection head, classifiers and landmark models
read features. ``encoder_of(net)`` returns an :class:`Encoder` whose layers *are* ``net``'s (shared
modules, no copy): training the encoder trains ``net``, and ``net``'s own state dict then holds
the pretrained weights for the downstream run (:mod:`medssl.nets.encoder_keys` names them). What
each family contributes:

- **ResNet** (MONAI): everything before ``avgpool`` and ``fc``: ``conv1``, ``bn1``, ``act``,
  ``maxpool`` (unless built with ``no_max_pool``), ``layer1``-``layer4``. ``feature_dim`` =
  ``layer4``'s width (512, or 2048 for ResNet-50, times ``widen_factor``).
- **DenseNet** (MONAI): ``features`` (through ``norm5``) and the ReLU of ``class_layers``, the
  input of its ``out`` Linear. ``feature_dim`` = that Linear's ``in_features``.
- **SwinUNETR**: the ``swinViT`` transformer's last stage (its 1/32-resolution output, layer-normed
  when the network ``normalize``\\ s, as in its forward pass), VoCo's feature. ``feature_dim`` =
  ``16 * feature_size``. The conv blocks (``encoder1``-``encoder4``, ``encoder10``) and the decoder
  are not taken.
- **UNet** (MONAI): the down path. MONAI nests the UNet as ``Sequential(down, SkipConnection(
  Sequential(down, SkipConnection(...), up)), up)``; the encoder is every level's ``down`` layer
  in order, then the innermost (bottom) layer, so ``feature_dim`` = ``channels[-1]``. Skips and the
  up path are not taken.
- **VNet** (MONAI): ``in_tr`` then ``down_tr32``-``down_tr256``; ``feature_dim`` = 256.

For UNet and VNet, level ``i`` is ``body.i`` (``encoder_keys``' ``levels.i``).
``Encoder.forward`` averages the last feature map over its spatial axes: ``(B, feature_dim)``;
``Encoder.feature_map`` returns the map itself ``(B, feature_dim, *spatial)`` (landmark heads).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from monai.networks.layers.simplelayers import SkipConnection
from monai.networks.nets import DenseNet, ResNet, SwinUNETR, UNet, VNet
from torch import nn

from medssl.nets.ssl4mis import SSL4MISNet


def global_pool(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, *spatial)`` -> ``(B, C)`` by averaging; a ``(B, C)`` input is returned as is."""
    return x if x.ndim == 2 else x.flatten(2).mean(dim=2)


class Encoder(nn.Module):
    """An image encoder: ``body`` maps ``(B, C, *spatial)`` to ``(B, feature_dim, *spatial')``."""

    def __init__(self, body: nn.Module, feature_dim: int) -> None:
        super().__init__()
        self.body = body
        self.feature_dim = int(feature_dim)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return global_pool(self.body(x))


class _SwinLastStage(nn.Module):
    """``swinViT``'s deepest output, normalised as SwinUNETR's forward normalises it."""

    def __init__(self, swin_vit: nn.Module, normalize: bool) -> None:
        super().__init__()
        self.swinViT = swin_vit
        self.normalize = normalize

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.swinViT(x, self.normalize)[-1]


def _resnet(net: ResNet) -> Encoder:
    stem = ["conv1", "bn1", "act"] + ([] if net.no_max_pool else ["maxpool"])
    names = [*stem, "layer1", "layer2", "layer3", "layer4"]
    body = nn.Sequential(OrderedDict((name, getattr(net, name)) for name in names))
    return Encoder(body, net.in_planes)  # MONAI leaves in_planes at layer4's output width


def _densenet(net: DenseNet) -> Encoder:
    layers = net.class_layers
    body = nn.Sequential(OrderedDict(features=net.features, relu=layers.relu))
    return Encoder(body, layers.out.in_features)


def _swin_unetr(net: SwinUNETR) -> Encoder:
    vit = net.swinViT
    return Encoder(_SwinLastStage(vit, net.normalize), 16 * vit.embed_dim)


def _unet(net: UNet) -> Encoder:
    levels: list[nn.Module] = []
    node: nn.Module = net.model
    while (
        isinstance(node, nn.Sequential) and len(node) == 3 and isinstance(node[1], SkipConnection)
    ):
        levels.append(node[0])
        node = node[1].submodule
    return Encoder(nn.Sequential(*levels, node), net.channels[-1])  # node: the bottom layer


def _vnet(net: VNet) -> Encoder:
    levels = [net.in_tr, net.down_tr32, net.down_tr64, net.down_tr128, net.down_tr256]
    return Encoder(nn.Sequential(*levels), 256)


def _ssl4mis(net: SSL4MISNet) -> Encoder:
    return Encoder(net.encoder_body(), net.channels[-1])


_FAMILIES = (
    (ResNet, _resnet),
    (DenseNet, _densenet),
    (SwinUNETR, _swin_unetr),
    (UNet, _unet),
    (VNet, _vnet),
    (SSL4MISNet, _ssl4mis),
)


def encoder_of(net: nn.Module) -> Encoder:
    """The encoder of a factory network, sharing its weights (see the module docstring)."""
    if isinstance(net, Encoder):
        return net
    for family, build in _FAMILIES:
        if isinstance(net, family):
            return build(net)
    known = ", ".join(family.__name__ for family, _ in _FAMILIES)
    raise TypeError(f"no encoder for {type(net).__name__}; encoder_of knows {known}")
