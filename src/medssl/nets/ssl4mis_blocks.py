"""The blocks of the SSL4MIS / UA-MT networks, one family per published network.

Two families of layers, each able to build an encoder level, a decoder stage and an output head
in 2D or 3D (MONAI ``Convolution`` with the family's norm and activation):

- :class:`UNetBlocks`, SSL4MIS ``networks/unet.py``: a level is a ConvBlock (conv3x3-norm-
  LeakyReLU-dropout-conv3x3-norm-LeakyReLU), after a max pool on every level but the first;
  a decoder stage upsamples, *concatenates* the skip (skip first) and merges with a ConvBlock of
  dropout ``decoder_dropout`` (0 in SSL4MIS); heads are 3x3 convolutions. Dropout is element-wise
  (``nn.Dropout``, as in the ConvBlock).
- :class:`VNetBlocks`, UA-MT / SSL4MIS ``networks/vnet.py``: a level is a stage of
  ``min(level + 1, 3)`` conv3x3-norm-ReLU (1, 2, 3, 3, 3: no residual add inside a stage), after a
  strided conv (kernel = stride) on every level but the first; a decoder stage upsamples, *adds*
  the skip and runs the stage of the same level (3, 3, 2, 1 convolutions); heads are 1x1.
  Dropout is channel-wise (``Dropout3d``, the papers' ``has_dropout``).

Upsampling, per decoder (MC-Net+'s three kinds): ``transpose`` is a transposed convolution of
kernel = stride (the V-Net's with norm and ReLU after it, as ``UpsamplingDeconvBlock``);
``linear`` / ``nearest`` are, in the UNet family, a 1x1 convolution then interpolation
(SSL4MIS ``UpBlock``), in the V-Net family interpolation then a 3x3 conv-norm-ReLU (MC-Net
``Upsampling_function``). Linear interpolation aligns corners, as both.

:class:`Encoder` returns every level's features, finest first; :class:`Decoder` the logits of
its heads at the input size (finest first), :class:`SingleDecoder` the full-resolution logits.
Level strides are given per level, finest first; the first is 1 (both networks start at full
resolution).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution
from torch import nn

from medssl.nets.multi_decoder import Perturbation, channel_dropout

Normalization = Literal["batch", "instance", "group", "none"]
LEAKY = ("leakyrelu", {"negative_slope": 0.01})
# SSL4MIS's dropout rates, finest level first; other depths keep the deepest ones (0.5 last).
SSL4MIS_DROPOUT = (0.05, 0.1, 0.2, 0.3, 0.5)


def norm_spec(normalization: str) -> str | tuple | None:
    """A MONAI norm for the papers' ``normalization`` (group norm: 16 groups, as theirs)."""
    specs = {"batch": "batch", "instance": "instance", "group": ("group", {"num_groups": 16})}
    if normalization == "none":
        return None
    if normalization not in specs:
        raise ValueError(f"normalization {normalization!r}: choose batch, instance, group, none")
    return specs[normalization]


def encoder_dropout_rates(levels: int, rates: Sequence[float] | None = None) -> list[float]:
    """One dropout rate per level: ``rates`` as given, else SSL4MIS's for the deepest levels."""
    if rates is None:
        return ([SSL4MIS_DROPOUT[0]] * levels + list(SSL4MIS_DROPOUT))[-levels:]
    if len(rates) != levels:
        raise ValueError(f"encoder_dropout {list(rates)} needs one rate per level ({levels})")
    return [float(r) for r in rates]


def _interp(dims: int, mode: str, stride: int) -> nn.Upsample:
    if mode == "linear":
        linear = "bilinear" if dims == 2 else "trilinear"
        return nn.Upsample(scale_factor=stride, mode=linear, align_corners=True)
    if mode == "nearest":
        return nn.Upsample(scale_factor=stride, mode="nearest")
    raise ValueError(f"unknown upsampling {mode!r}; choose transpose, linear, nearest")


class UNetBlocks:
    """The SSL4MIS 2D UNet's layers (see the module docstring)."""

    family = "ssl4mis_unet"
    merge = "concat"
    head_kernel = 3  # SSL4MIS's out_conv is 3x3
    channelwise = False  # nn.Dropout, as the ConvBlock's
    head_interp = "nearest"  # F.interpolate's default, as Decoder_URPC

    def __init__(
        self,
        dims: int,
        normalization: str = "batch",
        encoder_dropout: Sequence[float] = SSL4MIS_DROPOUT,
        decoder_dropout: float = 0.0,
    ) -> None:
        self.dims, self.norm = dims, norm_spec(normalization)
        self.encoder_dropout, self.decoder_dropout = list(encoder_dropout), decoder_dropout

    def conv(self, cin: int, cout: int, dropout: float) -> nn.Sequential:
        """SSL4MIS ConvBlock: the dropout sits between its two convolutions."""
        first = Convolution(
            self.dims,
            cin,
            cout,
            act=LEAKY,
            norm=self.norm,
            dropout=dropout or None,
            adn_ordering="NAD",
        )
        return nn.Sequential(first, Convolution(self.dims, cout, cout, act=LEAKY, norm=self.norm))

    def level(self, i: int, cin: int, cout: int, stride: int) -> nn.Module:
        block = self.conv(cin, cout, self.encoder_dropout[i])
        if i == 0:
            return block
        pool = (nn.MaxPool2d if self.dims == 2 else nn.MaxPool3d)(stride)
        return nn.Sequential(pool, block)

    def up(self, cin: int, cout: int, stride: int, mode: str) -> nn.Module:
        if mode == "transpose":
            return Convolution(
                self.dims,
                cin,
                cout,
                strides=stride,
                kernel_size=stride,
                padding=0,
                output_padding=0,
                is_transposed=True,
                conv_only=True,
            )
        conv = Convolution(self.dims, cin, cout, kernel_size=1, conv_only=True)
        return nn.Sequential(conv, _interp(self.dims, mode, stride))

    def block(self, i: int, width: int) -> nn.Module:
        return self.conv(2 * width, width, self.decoder_dropout)

    def dropout(self, p: float) -> nn.Module:
        return nn.Dropout(p) if p > 0 else nn.Identity()


class VNetBlocks:
    """The UA-MT / SSL4MIS V-Net's layers (see the module docstring)."""

    family = "ssl4mis_vnet"
    merge = "add"
    head_kernel = 1
    head_interp = "linear"
    channelwise = True  # Dropout3d, the papers' has_dropout

    def __init__(self, dims: int, normalization: str = "batch") -> None:
        self.dims, self.norm = dims, norm_spec(normalization)

    def conv(self, cin: int, cout: int, **kw) -> Convolution:
        return Convolution(self.dims, cin, cout, act="relu", norm=self.norm, **kw)

    def stage(self, i: int, cin: int, cout: int) -> nn.Sequential:
        """V-Net stage of level ``i``: ``min(i + 1, 3)`` convolutions (1, 2, 3, 3, 3)."""
        n = min(i + 1, 3)
        return nn.Sequential(*(self.conv(cin if k == 0 else cout, cout) for k in range(n)))

    def level(self, i: int, cin: int, cout: int, stride: int) -> nn.Module:
        if i == 0:
            return self.stage(0, cin, cout)
        down = self.conv(cin, cout, strides=stride, kernel_size=stride, padding=0)
        return nn.Sequential(down, self.stage(i, cout, cout))

    def up(self, cin: int, cout: int, stride: int, mode: str) -> nn.Module:
        if mode == "transpose":
            return self.conv(
                cin,
                cout,
                strides=stride,
                kernel_size=stride,
                padding=0,
                output_padding=0,
                is_transposed=True,
            )
        return nn.Sequential(_interp(self.dims, mode, stride), self.conv(cin, cout))

    def block(self, i: int, width: int) -> nn.Module:
        return self.stage(i, width, width)

    def dropout(self, p: float) -> nn.Module:
        return channel_dropout(self.dims, p) if p > 0 else nn.Identity()


Blocks = UNetBlocks | VNetBlocks


def _check(channels: Sequence[int], strides: Sequence[int]) -> None:
    if len(channels) < 2:
        raise ValueError(f"channels needs at least 2 levels, got {list(channels)}")
    if len(strides) != len(channels) or strides[0] != 1:
        raise ValueError(
            f"{len(channels)} levels need {len(channels) - 1} downsampling strides: {strides[1:]}"
        )


class Encoder(nn.Module):
    """The levels of ``blocks``; ``bottleneck_dropout`` drops the deepest features (KP-Net)."""

    def __init__(
        self,
        blocks: Blocks,
        in_channels: int,
        channels: Sequence[int],
        strides: Sequence[int],
        bottleneck_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check(channels, strides)
        widths = [in_channels, *channels]
        self.levels = nn.ModuleList(
            blocks.level(i, widths[i], widths[i + 1], strides[i]) for i in range(len(channels))
        )
        self.drop = blocks.dropout(bottleneck_dropout)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features of every level, finest first."""
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        features[-1] = self.drop(features[-1])
        return features


class Decoder(nn.Module):
    """Stages coarse to fine, then ``heads`` output heads on the finest stages (URPC's pyramid),
    each behind its training-time perturbation (``head_perturbations``, finest first)."""

    def __init__(
        self,
        blocks: Blocks,
        out_channels: int,
        channels: Sequence[int],
        strides: Sequence[int],
        mode: str,
        heads: int = 1,
        head_perturbations: Sequence[str] = (),
        head_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        _check(channels, strides)
        deep = list(reversed(range(len(channels) - 1)))  # the level each stage decodes to
        self.merge, self.interp = blocks.merge, blocks.head_interp
        self.ups = nn.ModuleList(
            blocks.up(channels[i + 1], channels[i], strides[i + 1], mode) for i in deep
        )
        self.blocks = nn.ModuleList(blocks.block(i, channels[i]) for i in deep)
        heads = max(1, min(heads, len(deep)))
        self.heads = nn.ModuleList(
            Convolution(
                blocks.dims,
                channels[k],
                out_channels,
                kernel_size=blocks.head_kernel,
                conv_only=True,
            )
            for k in range(heads)
        )
        kinds = list(head_perturbations) + ["none"] * (heads - len(head_perturbations))
        self.perturb = nn.ModuleList(
            Perturbation(kinds[k], blocks.dims, p=head_dropout, channelwise=blocks.channelwise)
            for k in range(heads)
        )

    def forward(self, features: list[torch.Tensor], all_heads: bool = True) -> list[torch.Tensor]:
        """Logits at the input size, finest head first."""
        x, stages = features[-1], []
        for up, block, skip in zip(self.ups, self.blocks, reversed(features[:-1]), strict=True):
            x = up(x)
            x = block(x + skip if self.merge == "add" else torch.cat([skip, x], dim=1))
            stages.append(x)
        stages.reverse()  # finest first
        size = stages[0].shape[2:]
        outputs = []
        for k in range(len(self.heads) if all_heads else 1):
            logits = self.heads[k](self.perturb[k](stages[k]))
            if logits.shape[2:] != size:
                mode = self.interp
                if mode == "linear":
                    mode = "bilinear" if len(size) == 2 else "trilinear"
                logits = F.interpolate(logits, size=size, mode=mode)
            outputs.append(logits)
        return outputs


class SingleDecoder(Decoder):
    """A decoder with one head that returns its logits (the single networks, KP-Net)."""

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        return super().forward(features, all_heads=False)[0]
