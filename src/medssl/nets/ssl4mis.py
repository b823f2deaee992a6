"""The two networks of the published LA and ACDC semi-supervised numbers, and their multi-decoder
variants: ``ssl4mis_vnet`` and ``ssl4mis_unet`` in the network factory.

UA-MT, MC-Net+, BCP and the SSL4MIS baselines all report on one of two networks, not on MONAI's
(whose VNet has 5x5x5 PReLU convolutions and 45.6 M parameters, and whose UNet strides its first
convolution):

- ``ssl4mis_vnet``, UA-MT's ``networks/vnet.py`` (the same file in SSL4MIS and MC-Net+): 3x3x3
  convolutions, batch norm, ReLU, widths 16-256, stages of 1, 2, 3, 3, 3 plain convolutions,
  strided 2x2x2 convolutions down, transposed convolutions up, additive skips, and with
  ``has_dropout`` (on by default, as every paper trains it) channel dropout p = 0.5 on the
  bottleneck and before the 1x1 output convolution in training. 9.45 M parameters at one input
  channel and two classes.
- ``ssl4mis_unet``, SSL4MIS's ``networks/unet.py`` ``UNet`` (ACDC): widths 16-256, the first
  level at full resolution, ConvBlocks (conv3x3-BN-LeakyReLU-dropout-conv3x3-BN-LeakyReLU) with
  dropout 0.05, 0.1, 0.2, 0.3, 0.5 down the levels, 2x max pooling, decoder stages that upsample,
  concatenate the skip and merge with a ConvBlock (no dropout), a 3x3 output convolution.
  SSL4MIS builds ``UNet`` with ``'bilinear': False`` but its ``Decoder`` never passes that on, so
  every ``UpBlock`` keeps its default: a 1x1 convolution then bilinear upsampling. That is what
  its numbers were measured with (1.81 M parameters at one channel, four classes), and so the
  default here (``upsampling: linear``; ``transpose`` gives the 2x2 transposed convolution).

Both work in 2D and 3D with the same blocks (``ssl4mis_unet`` in 3D: the 3D analogue of the ACDC
network, not SSL4MIS's different ``unet_3D``; ``ssl4mis_vnet`` in 2D likewise). The run's ``net``
settings they take: ``channels`` (the level widths, default 16-256, any depth of at least 2),
``strides`` (one downsampling factor per level after the first, default 2), and for the UNet
``dropout`` (its decoder ConvBlocks' dropout, 0 in SSL4MIS). ``net.norm`` does not apply: the
run default (instance) is not what the papers trained, so the norm is the option
``normalization`` (batch by default; instance, group of 16 groups, none). ``num_res_units`` does
not apply.

The multi-decoder variants (:class:`SSL4MISMultiDecoderNet`, built by ``from_net_config`` of
``nets/multi_decoder.py`` for MC-Net+ and URPC) share one such encoder among decoders of the same
blocks that differ in upsampling (MC-Net+'s ``mcnet3d_v2`` / ``mcnet2d_v2``), with URPC's
deep-supervision heads (SSL4MIS ``UNet_URPC``: 3x3 heads upsampled by nearest interpolation) and
their perturbations; the methods set the upsampling modes and dropout, so of ``net.options`` only
``normalization`` and ``encoder_dropout`` apply there. Every variant keeps its encoder under
``encoder.levels.i``, so an encoder trained in one loads into another (``nets/encoder_keys.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn

from medssl.errors import ConfigError
from medssl.nets.factory import NETS, NetSettings, check_net_options
from medssl.nets.multi_decoder import DEFAULT_CHANNELS, DecoderNet
from medssl.nets.ssl4mis_blocks import (
    Blocks,
    Decoder,
    Encoder,
    Normalization,
    SingleDecoder,
    UNetBlocks,
    VNetBlocks,
    encoder_dropout_rates,
)

Upsampling = Literal["transpose", "linear", "nearest"]
HAS_DROPOUT_P = 0.5  # the papers' Dropout3d(p=0.5)
# net.options the multi-decoder variants take: the methods choose decoders and their dropout
ENCODER_OPTIONS = ("normalization", "encoder_dropout")


def make_blocks(
    name: str,
    dims: int,
    levels: int,
    normalization: str = "batch",
    encoder_dropout: Sequence[float] | None = None,
    dropout: float = 0.0,
) -> Blocks:
    """The blocks of network ``name``; ``dropout`` is the UNet decoder blocks' dropout."""
    if name == "ssl4mis_unet":
        rates = encoder_dropout_rates(levels, encoder_dropout)
        return UNetBlocks(dims, normalization, rates, dropout)
    if name == "ssl4mis_vnet":
        return VNetBlocks(dims, normalization)
    raise ValueError(f"no SSL4MIS network {name!r}")


def ssl4mis_strides(channels: Sequence[int], strides: Sequence[int] | None) -> list[int]:
    """Per level, finest first: 1 (full resolution), then the downsampling factors (default 2)."""
    strides = list(strides or [2] * (len(channels) - 1))
    if len(strides) != len(channels) - 1:
        raise ValueError(f"{len(channels)} levels need {len(channels) - 1} strides: {strides}")
    return [1, *strides]


class SSL4MISNet(nn.Module):
    """One encoder, one decoder: ``(B, C, *patch) -> (B, K, *patch)``; ``head_dropout`` drops the
    bottleneck and the last features before the head in training (the V-Net's has_dropout)."""

    def __init__(
        self,
        blocks: Blocks,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int],
        strides: Sequence[int],
        upsampling: str,
        head_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.family, self.channels = blocks.family, list(channels)
        self.encoder = Encoder(blocks, in_channels, channels, strides, head_dropout)
        self.decoder = SingleDecoder(
            blocks,
            out_channels,
            channels,
            strides,
            upsampling,
            head_perturbations=["dropout" if head_dropout > 0 else "none"],
            head_dropout=head_dropout,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def encoder_body(self) -> nn.Sequential:
        """The encoder's levels as one module (shared weights): ``x -> deepest features``,
        level ``i`` at ``i``, for pooled-feature pretraining (``nets/encoders.py``)."""
        return nn.Sequential(*self.encoder.levels)


class SSL4MISMultiDecoderNet(DecoderNet):
    """One SSL4MIS encoder, one decoder per entry of ``upsampling``: the contract of
    ``MultiDecoderNet`` (``forward``: every decoder's heads, finest first; ``forward_main``)."""

    def __init__(
        self,
        name: str,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int] | None = None,
        strides: Sequence[int] | None = None,
        normalization: str = "batch",
        encoder_dropout: Sequence[float] | None = None,
        dropout: float = 0.0,
        upsampling: Sequence[str] = ("transpose",),
        deep_supervision: int = 1,
        head_perturbations: Sequence[str] = (),
        head_dropout: float = 0.5,
        bottleneck_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        channels = list(channels or DEFAULT_CHANNELS)
        levels = ssl4mis_strides(channels, strides)
        if not upsampling:
            raise ValueError("at least one decoder (upsampling mode) is needed")
        blocks = make_blocks(
            name, spatial_dims, len(channels), normalization, encoder_dropout, dropout
        )
        self.family, self.channels = blocks.family, channels
        self.num_heads = max(1, min(deep_supervision, len(channels) - 1))
        self.encoder = Encoder(blocks, in_channels, channels, levels, bottleneck_dropout)
        self.bottleneck_dropout = nn.Identity()  # the encoder's own
        self.decoders = nn.ModuleList(
            Decoder(
                blocks,
                out_channels,
                channels,
                levels,
                mode,
                self.num_heads,
                head_perturbations,
                head_dropout,
            )
            for mode in upsampling
        )


def encoder_options(net: NetSettings, method: str = "this method") -> dict[str, Any]:
    """``net.options`` that describe the encoder and its blocks; any other is a ConfigError."""
    options = dict(getattr(net, "options", None) or {})
    other = sorted(set(options) - set(ENCODER_OPTIONS))
    if other:
        raise ConfigError(
            f"net.options {other}: {method} sets the decoders and their dropout of "
            f"{net.name}; of its options only {', '.join(ENCODER_OPTIONS)} apply"
        )
    return check_net_options(net.name, options)  # converted to the builder's types


def multi_decoder_from_net_config(
    net: NetSettings, spatial_dims: int, in_channels: int, out_channels: int, **kw: Any
) -> SSL4MISMultiDecoderNet:
    """``from_net_config`` for ``ssl4mis_unet`` / ``ssl4mis_vnet`` (see the module docstring)."""
    dropout = net.dropout if net.name == "ssl4mis_unet" else 0.0
    try:
        return SSL4MISMultiDecoderNet(
            net.name,
            spatial_dims,
            in_channels,
            out_channels,
            channels=net.channels,
            strides=net.strides,
            dropout=dropout,
            **encoder_options(net),
            **kw,
        )
    except ValueError as err:
        raise ConfigError(f"net {net.name}: {err}") from err


@NETS.register("ssl4mis_unet")
def ssl4mis_unet(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    channels: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
    dropout: float = 0.0,
    *,
    normalization: Normalization = "batch",
    encoder_dropout: Sequence[float] | None = None,
    upsampling: Upsampling = "linear",
) -> nn.Module:
    """SSL4MIS's 2D UNet (ACDC; 3D: the same blocks). ``dropout``: the decoder blocks' (0 in
    SSL4MIS); ``encoder_dropout``: one rate per level (default SSL4MIS's 0.05-0.5, the deepest
    ones at other depths); ``upsampling``: ``linear`` is what SSL4MIS runs (module docstring)."""
    channels = list(channels or DEFAULT_CHANNELS)
    blocks = make_blocks(
        "ssl4mis_unet", spatial_dims, len(channels), normalization, encoder_dropout, dropout
    )
    levels = ssl4mis_strides(channels, strides)
    return SSL4MISNet(blocks, in_channels, out_channels, channels, levels, upsampling)


@NETS.register("ssl4mis_vnet")
def ssl4mis_vnet(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    channels: Sequence[int] | None = None,
    strides: Sequence[int] | None = None,
    *,
    normalization: Normalization = "batch",
    has_dropout: bool = True,
    upsampling: Upsampling = "transpose",
) -> nn.Module:
    """UA-MT's V-Net (LA; 2D: the same blocks). ``has_dropout``: channel dropout p = 0.5 on the
    bottleneck and before the head in training, as the papers train it; the shared ``dropout``
    does not apply. ``upsampling`` ``linear`` / ``nearest``: MC-Net+'s interpolating decoders."""
    channels = list(channels or DEFAULT_CHANNELS)
    blocks = make_blocks("ssl4mis_vnet", spatial_dims, len(channels), normalization)
    levels = ssl4mis_strides(channels, strides)
    p = HAS_DROPOUT_P if has_dropout else 0.0
    return SSL4MISNet(blocks, in_channels, out_channels, channels, levels, upsampling, p)


def kpnet_parts(
    net: NetSettings, spatial_dims: int, options: Mapping[str, Any] | None = None
) -> tuple[Blocks, list[int], list[int]]:
    """KP-Net on an SSL4MIS encoder: its blocks, widths and per-level strides."""
    channels = list(net.channels or DEFAULT_CHANNELS)
    dropout = net.dropout if net.name == "ssl4mis_unet" else 0.0
    opts = dict(options if options is not None else encoder_options(net, "kpnet"))
    blocks = make_blocks(net.name, spatial_dims, len(channels), dropout=dropout, **opts)
    return blocks, channels, ssl4mis_strides(channels, net.strides)
