"""One encoder, several decoders: the network family of MC-Net+ and URPC, built from MONAI blocks.

The encoder has one level per width in ``channels``; each level is one layer as the factory's
MONAI UNet builds it (a ``ResidualUnit`` of ``num_res_units`` convolutions, or one
``Convolution`` when that is 0), strided by the level's stride (2 by default) except at full
resolution. Each decoder mirrors the encoder with its own upsampling:

- ``"transpose"``: a transposed convolution (MONAI ``UpSample`` mode ``deconv``);
- ``"linear"``: a 1x1 convolution then bi/trilinear interpolation (``nontrainable``, ``linear``);
- ``"nearest"``: a 1x1 convolution then nearest-neighbour interpolation.

After upsampling, the skip features of the same level are concatenated and merged by such a
layer (U-Net skips). MC-Net+'s official 3D network is a V-Net (plain conv stages, additive skips,
16-256 filters); here the encoder is this residual-unit U-Net encoder at the run's widths, and
``net.name="vnet"`` selects the same network: the MC-Net+ idea (decoders differing only in
upsampling) does not depend on the encoder.

Each decoder ends in a 1x1 head at full resolution. With ``deep_supervision=S`` it has heads at
its ``S`` finest levels (URPC's pyramid: full resolution, then the ``S - 1`` next coarser), the
coarser ones upsampled to the input size by linear interpolation; ``S`` is capped at the number of
decoder levels, ``len(channels) - 1``. ``head_perturbations`` names the feature perturbation
each head's input sees in training (one entry per head, finest first; heads past the list see
none): ``"dropout"`` (channel dropout, p = ``head_dropout``, 0.5), ``"feature_dropout"`` (CCT's
attention dropout: zero the locations whose channel-mean activation exceeds 0.7-0.9 x its
maximum) and ``"noise"`` (multiplicative uniform noise in +-0.3): SSL4MIS ``unet_urpc``'s.
``bottleneck_dropout`` drops channels of the deepest features shared by all decoders (MC-Net+).

``forward`` returns a list of logits at the input size: for each decoder in order, its heads
finest first. ``forward_main`` computes only the first decoder's full-resolution logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution, ResidualUnit, UpSample
from torch import nn

from medssl.errors import ConfigError

if TYPE_CHECKING:
    from medssl.engine.config import NetConfig

Upsampling = Literal["transpose", "linear", "nearest"]
PerturbationKind = Literal["none", "dropout", "feature_dropout", "noise"]
UPSAMPLING_MODES: tuple[str, ...] = ("transpose", "linear", "nearest")
PERTURBATIONS: tuple[str, ...] = ("none", "dropout", "feature_dropout", "noise")
DEFAULT_CHANNELS = (16, 32, 64, 128, 256)


def conv_block(
    dims: int,
    cin: int,
    cout: int,
    num_res_units: int,
    norm: str | tuple,
    dropout: float,
    stride: int = 1,
    act: str | tuple = "PRELU",
) -> nn.Module:
    """A layer as MONAI's UNet builds one: a residual unit of ``num_res_units`` convolutions
    (the first strided), or a single (strided) convolution when ``num_res_units`` is 0.
    ``act`` defaults to MONAI's (PReLU); KP-Net passes its LeakyReLU."""
    if num_res_units > 0:
        return ResidualUnit(
            dims,
            cin,
            cout,
            strides=stride,
            subunits=num_res_units,
            act=act,
            norm=norm,
            dropout=dropout,
        )
    return Convolution(dims, cin, cout, strides=stride, act=act, norm=norm, dropout=dropout)


def upsample(dims: int, cin: int, cout: int, stride: int, mode: str) -> UpSample:
    """MONAI ``UpSample`` for one of MC-Net+'s three upsampling kinds."""
    if mode == "transpose":
        return UpSample(dims, cin, cout, scale_factor=stride, mode="deconv")
    if mode in ("linear", "nearest"):
        return UpSample(
            dims,
            cin,
            cout,
            scale_factor=stride,
            mode="nontrainable",
            interp_mode=mode,
            align_corners=True if mode == "linear" else None,
        )
    raise ValueError(f"unknown upsampling {mode!r}; choose from {UPSAMPLING_MODES}")


def channel_dropout(dims: int, p: float) -> nn.Module:
    return (nn.Dropout2d if dims == 2 else nn.Dropout3d)(p)


class Perturbation(nn.Module):
    """A training-time feature perturbation (identity in eval mode)."""

    def __init__(self, kind: str, dims: int, p: float = 0.5, noise: float = 0.3) -> None:
        super().__init__()
        if kind not in PERTURBATIONS:
            raise ValueError(f"unknown perturbation {kind!r}; choose from {PERTURBATIONS}")
        self.kind, self.noise = kind, noise
        self.dropout = channel_dropout(dims, p) if kind == "dropout" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.kind == "none":
            return x
        if self.dropout is not None:
            return self.dropout(x)
        if self.kind == "noise":  # one noise field shared by the batch, as CCT / SSL4MIS
            scale = torch.empty_like(x[:1]).uniform_(-self.noise, self.noise)
            return x + x * scale
        return attention_dropout(x)


def attention_dropout(x: torch.Tensor) -> torch.Tensor:
    """CCT's FeatureDropout: zero where the channel-mean exceeds 0.7-0.9 x its per-sample max."""
    attention = x.mean(dim=1, keepdim=True)
    peak = attention.flatten(1).amax(dim=1).view(-1, *([1] * (x.ndim - 1)))
    threshold = peak * float(torch.empty(()).uniform_(0.7, 0.9))
    return x * (attention < threshold).to(x.dtype)


class Encoder(nn.Module):
    def __init__(
        self,
        dims: int,
        in_channels: int,
        channels: Sequence[int],
        strides: Sequence[int],
        num_res_units: int,
        norm: str,
        dropout: float,
    ) -> None:
        super().__init__()
        self.stem = conv_block(dims, in_channels, channels[0], num_res_units, norm, dropout)
        self.levels = nn.ModuleList(
            conv_block(dims, cin, cout, num_res_units, norm, dropout, stride=s)
            for cin, cout, s in zip(channels[:-1], channels[1:], strides, strict=True)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features of every level, finest first."""
        features = [self.stem(x)]
        for level in self.levels:
            features.append(level(features[-1]))
        return features


class Decoder(nn.Module):
    def __init__(
        self,
        dims: int,
        out_channels: int,
        channels: Sequence[int],
        strides: Sequence[int],
        mode: str,
        num_res_units: int,
        norm: str,
        dropout: float,
        heads: int,
        perturbations: Sequence[str],
        head_dropout: float,
    ) -> None:
        super().__init__()
        levels = len(channels) - 1
        # Stages run coarse to fine: stage j upsamples level (levels - j) to level (levels - j - 1).
        pairs = [(channels[i + 1], channels[i], strides[i]) for i in reversed(range(levels))]
        self.ups = nn.ModuleList(upsample(dims, cin, cout, s, mode) for cin, cout, s in pairs)
        self.blocks = nn.ModuleList(
            conv_block(dims, 2 * cout, cout, num_res_units, norm, dropout) for _, cout, _ in pairs
        )
        # Head k reads the features of level k (0 = full resolution).
        self.heads = nn.ModuleList(
            Convolution(dims, channels[k], out_channels, kernel_size=1, conv_only=True)
            for k in range(heads)
        )
        kinds = list(perturbations) + ["none"] * (heads - len(perturbations))
        self.perturb = nn.ModuleList(
            Perturbation(kinds[k], dims, p=head_dropout) for k in range(heads)
        )

    def forward(self, features: list[torch.Tensor], all_heads: bool = True) -> list[torch.Tensor]:
        """Logits at the input size, finest head first."""
        size = features[0].shape[2:]
        x = features[-1]
        by_level: dict[int, torch.Tensor] = {}
        for j, (up, block) in enumerate(zip(self.ups, self.blocks, strict=True)):
            level = len(features) - 2 - j
            x = block(torch.cat([features[level], up(x)], dim=1))
            by_level[level] = x
        count = len(self.heads) if all_heads else 1
        outputs = []
        for k in range(count):
            logits = self.heads[k](self.perturb[k](by_level[k]))
            if logits.shape[2:] != size:
                logits = F.interpolate(logits, size=size, mode=_linear(len(size)))
            outputs.append(logits)
        return outputs


def _linear(dims: int) -> str:
    return "bilinear" if dims == 2 else "trilinear"


class MultiDecoderNet(nn.Module):
    """A shared encoder and one decoder per entry of ``upsampling`` (see the module docstring)."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int] | None = None,
        strides: Sequence[int] | None = None,
        num_res_units: int = 2,
        norm: str = "instance",
        dropout: float = 0.0,
        upsampling: Sequence[str] = ("transpose",),
        deep_supervision: int = 1,
        head_perturbations: Sequence[str] = (),
        head_dropout: float = 0.5,
        bottleneck_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        channels = list(channels or DEFAULT_CHANNELS)
        if len(channels) < 2:
            raise ValueError(f"channels needs at least 2 levels, got {channels}")
        strides = list(strides or [2] * (len(channels) - 1))
        if len(strides) != len(channels) - 1:
            raise ValueError(f"{len(channels)} levels need {len(channels) - 1} strides: {strides}")
        if not upsampling:
            raise ValueError("at least one decoder (upsampling mode) is needed")
        self.num_heads = max(1, min(deep_supervision, len(channels) - 1))
        self.encoder = Encoder(
            spatial_dims, in_channels, channels, strides, num_res_units, norm, dropout
        )
        self.bottleneck_dropout = channel_dropout(spatial_dims, bottleneck_dropout)
        self.decoders = nn.ModuleList(
            Decoder(
                spatial_dims,
                out_channels,
                channels,
                strides,
                mode,
                num_res_units,
                norm,
                dropout,
                self.num_heads,
                head_perturbations,
                head_dropout,
            )
            for mode in upsampling
        )

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.encoder(x)
        features[-1] = self.bottleneck_dropout(features[-1])
        return features

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.features(x)
        return [logits for decoder in self.decoders for logits in decoder(features)]

    def forward_main(self, x: torch.Tensor) -> torch.Tensor:
        """The first decoder's full-resolution logits only (the usual test-time output)."""
        return self.decoders[0](self.features(x), all_heads=False)[0]


class MainOutput(nn.Module):
    """Image -> the first decoder's full-resolution logits, for sliding-window inference.

    Holds the network without registering it (it is already a submodule of the method).
    """

    def __init__(self, net: MultiDecoderNet) -> None:
        super().__init__()
        self._net = [net]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._net[0].forward_main(x)


class MeanOutput(MainOutput):
    """Image -> the mean of all outputs' logits (MC-Net+'s "average of all decoders")."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack(self._net[0](x)).mean(dim=0)


def from_net_config(
    net: NetConfig, spatial_dims: int, in_channels: int, out_channels: int, **kw
) -> MultiDecoderNet:
    """The network at the run's ``net`` widths, depth, norm and dropout (``net.name`` "unet" or
    "vnet" both select it: the methods using it define their own decoders)."""
    if net.name not in ("unet", "vnet"):
        raise ConfigError(
            f"net.name={net.name!r}: this method trains its own multi-decoder network; "
            "use net.name unet (or vnet) and set its widths with net.channels"
        )
    return MultiDecoderNet(
        spatial_dims,
        in_channels,
        out_channels,
        channels=net.channels,
        strides=net.strides,
        num_res_units=net.num_res_units,
        norm=net.norm,
        dropout=net.dropout,
        **kw,
    )
