"""Network factory over MONAI networks: one registry, ``create_net(name, ...)``.

Methods never import a MONAI class directly: they ask the factory, so that every method of a
family trains the same network under the same settings, and ``--config net.name=...`` swaps it.
"""

from __future__ import annotations

from collections.abc import Sequence

from monai.networks.nets import UNet, VNet
from torch import nn

from medssl.registry import Registry

NETS: Registry = Registry("network")


def _levels(channels: Sequence[int] | None, strides: Sequence[int] | None, default: Sequence[int]):
    channels = list(channels or default)
    strides = list(strides or [2] * (len(channels) - 1))
    return channels, strides


@NETS.register("unet")
def unet(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    channels: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
    num_res_units: int = 2,
    norm: str = "instance",
    dropout: float = 0.0,
) -> nn.Module:
    """MONAI residual UNet (Kerfoot et al. 2018), the nnU-Net-like default of medssl."""
    channels, strides = _levels(channels, strides, (16, 32, 64, 128, 256))
    return UNet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=out_channels,
        channels=channels,
        strides=strides,
        num_res_units=num_res_units,
        norm=norm,
        dropout=dropout,
    )


@NETS.register("vnet")
def vnet(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    dropout: float = 0.0,
    **_: object,
) -> nn.Module:
    """MONAI V-Net (Milletari et al. 2016), the network of the UA-MT / MC-Net LA protocol.

    V-Net downsamples four times: patch sides must be multiples of 16. Width options of the
    UNet (channels, strides, residual units, norm) do not apply and are ignored.
    """
    return VNet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=out_channels,
        dropout_prob_down=dropout,
        dropout_prob_up=(dropout, dropout),
        dropout_dim=spatial_dims,
    )


def create_net(
    name: str, spatial_dims: int, in_channels: int, out_channels: int, **kw
) -> nn.Module:
    return NETS.create(name, spatial_dims, in_channels, out_channels, **kw)


def downsample_factor(name: str, strides: Sequence[int] | None = None, levels: int = 5) -> int:
    """The factor patch sides must be divisible by for this network."""
    if name == "vnet":
        return 16
    factor = 1
    for s in strides or [2] * (levels - 1):
        factor *= s
    return factor
