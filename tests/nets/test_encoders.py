"""encoder_of: an image -> feature-vector encoder for every network family, sharing its weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medssl.nets.encoder_keys import encoder_map
from medssl.nets.encoders import Encoder, encoder_of, global_pool
from medssl.nets.factory import create_net

TINY_RESNET = {"small_input": True, "widen_factor": 0.125}
TINY_DENSENET = {"small_input": True, "init_features": 8, "growth_rate": 4, "bn_size": 2}
TINY_SWIN = {"feature_size": 12, "depths": [1, 1, 1, 1]}

# name, dims, input side, create_net keywords, expected feature_dim
CASES = [
    ("resnet10", 2, 28, TINY_RESNET, 64),
    ("resnet18", 3, 28, TINY_RESNET, 64),
    ("resnet18", 2, 28, {"widen_factor": 0.125}, 64),  # with MONAI's max pool
    ("resnet50", 2, 28, TINY_RESNET, 256),  # bottleneck blocks: 4 x 512 x 1/8
    ("densenet121", 2, 28, TINY_DENSENET, None),  # widths: _densenet_width
    ("densenet169", 3, 28, TINY_DENSENET, None),
    ("unet", 3, 32, {"channels": [8, 16, 32], "num_res_units": 0}, 32),
    ("unet", 2, 32, {"channels": [4, 8, 16, 24], "num_res_units": 2}, 24),
    ("vnet", 2, 32, {}, 256),
    ("ssl4mis_unet", 2, 32, {"channels": [4, 8, 16]}, 16),
    ("ssl4mis_vnet", 3, 32, {"channels": [4, 8, 16]}, 16),
    ("swin_unetr", 3, 32, {"options": TINY_SWIN, "norm": "batch"}, 192),  # 16 x 12
    ("swin_unetr", 2, 64, {"options": {**TINY_SWIN, "feature_size": 24}}, 384),
]


def _densenet_width(block_config, init=8, growth=4) -> int:
    width = init
    for i, layers in enumerate(block_config):
        width += layers * growth
        if i < len(block_config) - 1:
            width //= 2
    return width


@pytest.mark.parametrize(("name", "dims", "side", "kw", "dim"), CASES)
def test_encoder_features_are_feature_dim_wide(name, dims, side, kw, dim):
    if name == "swin_unetr":
        pytest.importorskip("einops", reason="MONAI's SwinUNETR needs einops")
    if name.startswith("densenet"):
        dim = _densenet_width((6, 12, 24, 16) if name == "densenet121" else (6, 12, 32, 32))
    net = create_net(name, dims, 1, 2, **kw).eval()
    encoder = encoder_of(net)
    assert encoder.feature_dim == dim
    x = torch.randn((2, 1) + (side,) * dims)
    with torch.no_grad():
        features, fmap = encoder(x), encoder.feature_map(x)
    assert features.shape == (2, dim)
    assert fmap.shape[:2] == (2, dim) and fmap.ndim == 2 + dims
    torch.testing.assert_close(features, global_pool(fmap))


def test_the_encoder_shares_the_networks_weights():
    net = create_net("resnet18", 2, 1, 2, **TINY_RESNET)
    encoder = encoder_of(net)
    own = {id(p) for p in net.parameters()}
    assert all(id(p) in own for p in encoder.parameters())
    assert "fc.weight" not in dict(encoder.named_parameters())
    with torch.no_grad():
        encoder.body.conv1.weight.zero_()
    assert net.conv1.weight.abs().sum() == 0  # training the encoder trains the network


def test_resnet_encoder_is_the_network_without_its_classifier():
    net = create_net("resnet18", 2, 1, 2, **TINY_RESNET).eval()
    encoder = encoder_of(net)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(net.fc(encoder(x)), net(x))


def test_unet_encoder_is_the_down_path_and_bottom():
    net = create_net("unet", 2, 1, 2, channels=[4, 8, 16, 32], num_res_units=0)
    body = encoder_of(net).body
    assert [layer.conv.out_channels for layer in body] == [4, 8, 16, 32]
    assert [layer.conv.stride for layer in body] == [(2, 2)] * 3 + [(1, 1)]  # bottom unstrided


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("unet", {"channels": [4, 8, 16], "num_res_units": 2}),
        ("vnet", {}),
        ("ssl4mis_unet", {"channels": [4, 8, 16]}),
        ("ssl4mis_vnet", {"channels": [4, 8, 16]}),
    ],
)
def test_unet_and_vnet_levels_are_numbered_as_the_encoder_handoff_names_them(name, kw):
    net = create_net(name, 2, 1, 2, **kw)
    mine = {k.replace("body.", "levels.", 1) for k in encoder_of(net).state_dict()}
    assert mine == set(encoder_map(net).keys)


def test_encoder_of_an_encoder_is_itself_and_other_modules_are_refused():
    encoder = encoder_of(create_net("vnet", 2, 1, 2))
    assert encoder_of(encoder) is encoder
    assert isinstance(encoder, Encoder)
    with pytest.raises(TypeError, match="no encoder for Linear; encoder_of knows ResNet"):
        encoder_of(nn.Linear(2, 2))
