"""Where each backbone keeps its encoder, under one naming that pretraining and fine-tuning share.

An encoder is handed from a pretext network to a downstream one by canonical names: level ``i``
of a U-Net-like encoder is ``levels.i.<rest>`` whether it sits in MONAI's ``UNet`` (nested
``model.1.submodule...``), in the multi-decoder U-Net (``encoder.levels.i``) or in KP-Net's image
encoder (``image_encoder.levels.i``): all three build each level as MONAI's ``UNet`` does, so
the tensors fit one another when widths and strides agree. MONAI's ``VNet`` has its own family.
The papers' networks (``nets/ssl4mis.py``) have one family each, ``ssl4mis_unet`` and
``ssl4mis_vnet``: their single network, their multi-decoder variant (``encoder.levels.i``) and
KP-Net built on them (``image_encoder.levels.i``) share the encoder's structure. ResNets
(``resnet``: stem and ``layer1``-``layer4``), DenseNets (``densenet``: ``features``) and
SwinUNETR (``swin_unetr``: its ``swinViT`` transformer) keep their own names.
Families whose encoders do not share a structure never exchange weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from monai.networks.nets import DenseNet, ResNet, SwinUNETR, UNet, VNet
from torch import nn

from medssl.nets.kpnet import KPNet
from medssl.nets.multi_decoder import MultiDecoderNet
from medssl.nets.ssl4mis import SSL4MISMultiDecoderNet, SSL4MISNet

_VNET_LEVELS = ("in_tr", "down_tr32", "down_tr64", "down_tr128", "down_tr256")
_UNET_DOWN = re.compile(r"^model((?:\.1\.submodule)*)\.0\.(.+)$")
_UNET_BOTTOM = re.compile(r"^model((?:\.1\.submodule)*)\.1\.submodule\.(?!\d)(.+)$")


@dataclass(frozen=True)
class EncoderMap:
    """The family of a backbone and ``{canonical name: name in the network's state dict}``."""

    family: str
    keys: dict[str, str]


def _unet_keys(names: list[str]) -> dict[str, str]:
    """MONAI UNet: the down block of depth d is ``model`` + d x ``.1.submodule`` + ``.0``; the
    bottom block is the innermost ``submodule`` that is not a sequence."""
    keys: dict[str, str] = {}
    depth_of = {}
    for name in names:
        down = _UNET_DOWN.match(name)
        if down:
            depth = down.group(1).count("submodule")
            keys[f"levels.{depth}.{down.group(2)}"] = name
            depth_of[name] = depth
    deepest = max(depth_of.values(), default=-1)
    for name in names:
        bottom = _UNET_BOTTOM.match(name)
        if bottom and bottom.group(1).count("submodule") == deepest:
            keys[f"levels.{deepest + 1}.{bottom.group(2)}"] = name
    return keys


def _prefixed(names: list[str], prefix: str) -> dict[str, str]:
    return {name[len(prefix) :]: name for name in names if name.startswith(prefix)}


def encoder_map(net: nn.Module) -> EncoderMap | None:
    """The encoder of ``net`` under canonical names, or ``None`` if ``net`` is no known backbone."""
    names = list(net.state_dict())
    if isinstance(net, UNet):
        return EncoderMap("unet", _unet_keys(names))
    if isinstance(net, MultiDecoderNet):
        return EncoderMap("unet", _prefixed(names, "encoder."))
    if isinstance(net, SSL4MISNet | SSL4MISMultiDecoderNet):
        return EncoderMap(net.family, _prefixed(names, "encoder."))
    if isinstance(net, KPNet):  # the image branch; the edge-prompt branch reads other inputs
        return EncoderMap(net.family, _prefixed(names, "image_encoder."))
    if isinstance(net, ResNet):  # everything before avgpool and fc (nets/encoders.py)
        stem = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")
        return EncoderMap("resnet", {n: n for n in names if n.startswith(stem)})
    if isinstance(net, DenseNet):
        return EncoderMap("densenet", {n: n for n in names if n.startswith("features.")})
    if isinstance(net, SwinUNETR):  # the transformer VoCo pretrains, not the conv blocks
        return EncoderMap("swin_unetr", {n: n for n in names if n.startswith("swinViT.")})
    if isinstance(net, VNet):
        keys = {}
        for level, block in enumerate(_VNET_LEVELS):
            keys.update(
                {f"levels.{level}.{k}": v for k, v in _prefixed(names, f"{block}.").items()}
            )
        return EncoderMap("vnet", keys)
    return None


def encoders_in(module: nn.Module) -> list[tuple[str, nn.Module, EncoderMap]]:
    """Every backbone inside ``module`` (a method's networks: a student and its teacher, CPS's
    two networks ...), outermost first; a backbone's own submodules are not searched again."""
    found: list[tuple[str, nn.Module, EncoderMap]] = []
    inside: list[str] = []
    for name, sub in module.named_modules():
        if any(name.startswith(f"{outer}.") for outer in inside):
            continue
        mapped = encoder_map(sub)
        if mapped is not None and mapped.keys:
            found.append((name, sub, mapped))
            inside.append(name)
    return found
