"""One encoder, several decoders: the network family of MC-Net+ and URPC, built from MONAI blocks.

The encoder has one level per width in ``channels``; each level is one layer as the factory's
MONAI UNet builds it (a ``ResidualUnit`` of ``num_res_units`` convolutions, or one
``Convolution`` when that is 0), strided by its entry of ``level_strides`` (one per level,
finest first). ``level_strides`` reads the run's ``net`` so that the levels sit where the
single-decoder methods' network puts them: for ``unet`` MONAI's reading of ``net.strides``
(level ``i`` strided by ``strides[i]``, the deepest level unstrided: at the default strides the
first convolution is already strided and no level works at full resolution), for ``vnet``
V-Net's (full resolution first, then halving at every level). Each decoder mirrors the encoder
with its own upsampling:

- ``"transpose"``: a transposed convolution (MONAI ``UpSample`` mode ``deconv``);
- ``"linear"``: a 1x1 convolution then bi/trilinear interpolation (``nontrainable``, ``linear``);
- ``"nearest"``: a 1x1 convolution then nearest-neighbour interpolation.

After upsampling, the skip features of the same level are concatenated and merged by such a
layer (U-Net skips). When the first level is strided, a last stage only upsamples to the input
size (there is no skip to merge at full resolution), so the heads read full-resolution
features; MONAI's ``UNet`` likewise ends in an upsampling to the output, with no full-width
layer at full resolution (one there would cost as much as the rest of the 3D network). So at
one ``net`` config this network and the factory's have their levels at the same resolutions
and widths, and methods of both kinds compare on one topology. MC-Net+'s official 3D network
is a V-Net (plain conv stages, additive skips, 16-256 filters); ``net.name="vnet"`` gives this
residual-unit encoder V-Net's resolutions at the run's widths: the MC-Net+ idea (decoders
differing only in upsampling) does not depend on the encoder. ``net.name`` ``ssl4mis_vnet`` /
``ssl4mis_unet`` build the official networks themselves (``nets/ssl4mis.py``, same contract).

Each decoder ends in a 1x1 head at full resolution. With ``deep_supervision=S`` it has heads at
its ``S`` finest stages (URPC's pyramid: full resolution, then the ``S - 1`` next coarser), the
coarser ones upsampled to the input size by linear interpolation; ``S`` is capped at the number of
decoder stages (``len(channels) - 1``, plus the last stage when the first level is strided).
``head_perturbations`` names the feature perturbation each head's input sees in training (one
entry per head, finest first; heads past the list see none): ``"dropout"`` (channel dropout,
p = ``head_dropout``, 0.5), ``"feature_dropout"`` (CCT's attention dropout: zero the locations
whose channel-mean activation exceeds 0.7-0.9 x its maximum) and ``"noise"`` (multiplicative
uniform noise in +-0.3): SSL4MIS ``unet_urpc``'s.
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

if TYPE_CHECKING:  # the factory imports the SSL4MIS networks, which import this module
    from medssl.nets.factory import NetSettings

Upsampling = Literal["transpose", "linear", "nearest"]
PerturbationKind = Literal["none", "dropout", "feature_dropout", "noise"]
UPSAMPLING_MODES: tuple[str, ...] = ("transpose", "linear", "nearest")
PERTURBATIONS: tuple[str, ...] = ("none", "dropout", "feature_dropout", "noise")
DEFAULT_CHANNELS = (16, 32, 64, 128, 256)
SSL4MIS_NETS: tuple[str, ...] = ("ssl4mis_unet", "ssl4mis_vnet")  # nets/ssl4mis.py


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

    def __init__(
        self, kind: str, dims: int, p: float = 0.5, noise: float = 0.3, channelwise: bool = True
    ) -> None:
        super().__init__()
        if kind not in PERTURBATIONS:
            raise ValueError(f"unknown perturbation {kind!r}; choose from {PERTURBATIONS}")
        self.kind, self.noise = kind, noise
        self.dropout = None
        if kind == "dropout":  # SSL4MIS's UNet drops elements (channelwise=False)
            self.dropout = channel_dropout(dims, p) if channelwise else nn.Dropout(p)

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


def level_strides(
    name: str, channels: Sequence[int], strides: Sequence[int] | None = None
) -> list[int]:
    """The stride of each encoder level, finest first, where the run's ``net.name`` network puts
    them: ``unet`` reads ``strides`` as MONAI's ``UNet`` does (one per level but the deepest, which
    is unstrided; default 2), ``vnet`` is full resolution first and halves at every level."""
    levels = len(channels)
    if name in SSL4MIS_NETS:  # their own blocks: a MONAI-block network at their layout would
        raise ConfigError(  # silently be another network
            f"net.name={name!r}: this method builds its network from MONAI blocks at the unet "
            "or vnet layout only; use net.name unet or vnet"
        )
    if name == "vnet":
        return [1] + [2] * (levels - 1)
    strides = list(strides or [2] * (levels - 1))
    if len(strides) != levels - 1:
        raise ValueError(f"{levels} levels need {levels - 1} strides: {strides}")
    return [*strides, 1]


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
        widths = [in_channels, *channels]
        self.levels = nn.ModuleList(
            conv_block(dims, cin, cout, num_res_units, norm, dropout, stride=s)
            for cin, cout, s in zip(widths[:-1], widths[1:], strides, strict=True)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features of every level, finest first."""
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
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
        # Stages run coarse to fine: stage j upsamples level (L - j) to level (L - j - 1) and
        # merges the skip; a strided first level gets one more stage, to full resolution.
        levels = len(channels) - 1
        pairs = [(channels[i + 1], channels[i], strides[i + 1]) for i in reversed(range(levels))]
        merged = [2 * cout for _, cout, _ in pairs]
        blocks = [
            conv_block(dims, cin, cout, num_res_units, norm, dropout)
            for cin, (_, cout, _) in zip(merged, pairs, strict=True)
        ]
        if strides[0] > 1:  # no skip to merge at full resolution: the stage only upsamples
            pairs.append((channels[0], channels[0], strides[0]))
            blocks.append(nn.Identity())
        self.ups = nn.ModuleList(upsample(dims, cin, cout, s, mode) for cin, cout, s in pairs)
        self.blocks = nn.ModuleList(blocks)
        # Head k reads the k-th finest stage's features (0 = full resolution).
        widths = [cout for _, cout, _ in reversed(pairs)]
        self.heads = nn.ModuleList(
            Convolution(dims, widths[k], out_channels, kernel_size=1, conv_only=True)
            for k in range(heads)
        )
        kinds = list(perturbations) + ["none"] * (heads - len(perturbations))
        self.perturb = nn.ModuleList(
            Perturbation(kinds[k], dims, p=head_dropout) for k in range(heads)
        )

    def forward(self, features: list[torch.Tensor], all_heads: bool = True) -> list[torch.Tensor]:
        """Logits at the input size, finest head first."""
        x = features[-1]
        stages = []
        skips = reversed(features[:-1])
        for up, block in zip(self.ups, self.blocks, strict=True):
            x = up(x)
            skip = next(skips, None)
            x = block(x if skip is None else torch.cat([skip, x], dim=1))
            stages.append(x)
        stages.reverse()  # finest first
        size = stages[0].shape[2:]
        count = len(self.heads) if all_heads else 1
        outputs = []
        for k in range(count):
            logits = self.heads[k](self.perturb[k](stages[k]))
            if logits.shape[2:] != size:
                logits = F.interpolate(logits, size=size, mode=_linear(len(size)))
            outputs.append(logits)
        return outputs


def _linear(dims: int) -> str:
    return "bilinear" if dims == 2 else "trilinear"


class DecoderNet(nn.Module):
    """The contract of the multi-decoder networks: ``encoder(x)`` gives the features (finest
    first), ``bottleneck_dropout`` acts on the deepest, each of ``decoders`` gives its heads'
    logits; ``forward`` and ``forward_main`` as in the module docstring."""

    encoder: nn.Module
    bottleneck_dropout: nn.Module
    decoders: nn.ModuleList
    num_heads: int

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


class MultiDecoderNet(DecoderNet):
    """A shared encoder and one decoder per entry of ``upsampling`` (see the module docstring).

    ``strides`` gives every level's stride, finest first (``level_strides`` computes them from a
    run's ``net``); the default is MONAI ``UNet``'s at these widths.
    """

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
        strides = list(strides or level_strides("unet", channels))
        if len(strides) != len(channels):
            raise ValueError(f"{len(channels)} levels need {len(channels)} strides: {strides}")
        if not upsampling:
            raise ValueError("at least one decoder (upsampling mode) is needed")
        stages = len(channels) - 1 + (strides[0] > 1)
        self.num_heads = max(1, min(deep_supervision, stages))
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


class MainOutput(nn.Module):
    """Image -> the first decoder's full-resolution logits, for sliding-window inference.

    Holds the network without registering it (it is already a submodule of the method).
    """

    def __init__(self, net: DecoderNet) -> None:
        super().__init__()
        self._net = [net]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._net[0].forward_main(x)


class MeanOutput(MainOutput):
    """Image -> the mean of all outputs' logits (MC-Net+'s "average of all decoders")."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack(self._net[0](x)).mean(dim=0)


def from_net_config(
    net: NetSettings, spatial_dims: int, in_channels: int, out_channels: int, **kw
) -> DecoderNet:
    """The network at the run's ``net`` widths, depth, norm and dropout, its levels at the
    resolutions of the ``net.name`` network ("unet" or "vnet"; the methods using it define their
    own decoders). ``ssl4mis_unet`` / ``ssl4mis_vnet``: the same decoders on that network's own
    encoder and blocks (``nets/ssl4mis.py``)."""
    if net.name in SSL4MIS_NETS:
        from medssl.nets.ssl4mis import multi_decoder_from_net_config

        return multi_decoder_from_net_config(net, spatial_dims, in_channels, out_channels, **kw)
    if net.name not in ("unet", "vnet"):
        raise ConfigError(
            f"net.name={net.name!r}: this method trains its own multi-decoder network; "
            "use net.name unet, vnet, ssl4mis_unet or ssl4mis_vnet and set its widths with "
            "net.channels"
        )
    options = getattr(net, "options", None)  # NetSettings fields plus, optionally, options
    if options:
        raise ConfigError(
            f"net.options {sorted(options)}: this method trains its own multi-decoder "
            "network, which takes only the shared net settings; remove net.options"
        )
    channels = list(net.channels or DEFAULT_CHANNELS)
    return MultiDecoderNet(
        spatial_dims,
        in_channels,
        out_channels,
        channels=channels,
        strides=level_strides(net.name, channels, net.strides),
        num_res_units=net.num_res_units,
        norm=net.norm,
        dropout=net.dropout,
        **kw,
    )
