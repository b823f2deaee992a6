"""The network factory: UNet and V-Net in 2D and 3D, and a helpful error for a typo."""

from __future__ import annotations

import pytest
import torch

from medssl.errors import ConfigError
from medssl.nets.factory import NETS, create_net, downsample_factor


@pytest.mark.parametrize("name", ["unet", "vnet"])
@pytest.mark.parametrize("dims", [2, 3])
def test_networks_keep_the_spatial_shape(name: str, dims: int):
    net = create_net(name, dims, 1, 4, channels=[8, 16, 32], num_res_units=0)
    x = torch.randn((2, 1) + (32,) * dims)
    assert net(x).shape == (2, 4) + (32,) * dims


def test_downsample_factor():
    assert downsample_factor("vnet") == 16
    assert downsample_factor("unet", levels=5) == 16
    assert downsample_factor("unet", strides=[2, 2]) == 4


def test_unknown_network_suggests_the_close_name():
    with pytest.raises(ConfigError, match="did you mean 'unet'"):
        NETS.get("uent")
