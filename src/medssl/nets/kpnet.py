"""KP-Net's network: two encoders (image, edge prompt), a text gate, two different decoders.

Built from MONAI blocks for 2D and 3D, following the official ``newNet3d``
(Lry777/Universal-Medical-SSL, ``code/networks/newModel.py``):

- **Two encoders** of the same shape with separate weights: one reads the image, one the
  edge-enhanced image prompt. The input carries both, ``(B, 2C, ...)``: first ``C`` channels the
  image, last ``C`` the prompt (the data pipeline appends it, ``data.edge_prompt``).
- **Multi-scale selective fusion**: the prompt encoder's features are added to the image
  encoder's at the deepest ``prompt_levels`` scales only (official ``rate = [0, 0, 0, 1, 1]``:
  the two deepest of five).
- **Token Joint Gate** at the bottleneck: the class text embeddings ``(K, D)`` are projected to
  one value per bottleneck token ``(K, N)`` (``N`` = voxels of the training patch's bottleneck
  grid), each token's K values are mapped to the bottleneck width by Linear + LayerNorm +
  LeakyReLU, giving a text feature map ``T``. With the visual tokens ``V``:
  ``psi = sigmoid(norm(conv1x1(leaky(W V + W T))))`` (one shared ``W`` = conv1x1 + norm) and the
  output is ``mix([V, T]) * psi``, ``mix`` = conv1x1 + norm + LeakyReLU over the concatenation.
  Deviation: when an input's bottleneck differs from the training grid, ``T`` is resized to it
  (the official code only runs on training-sized patches).
- **Two decoders** with the same skips (added, as the official decoder does) but different
  upsampling: transposed convolution (``up_type 0``) vs trilinear / bilinear interpolation and a
  3x3 convolution (``up_type 1``).
- **Levels** where the run's network puts them (``level_strides``: ``vnet`` is the official
  full-resolution-first V-Net layout; ``unet`` MONAI's, whose first level is strided, so a last
  upsampling stage without a skip, followed by a conv block as every official stage is, brings
  each decoder back to full resolution).
- Channel dropout (the official ``has_dropout``, p = 0.5 in training) on each encoder's
  bottleneck and before each decoder's 1x1 head. The official decoders' extra deep-supervision
  heads are not built (the official test code reads only the full-resolution output).
- **On the papers' networks** (``blocks``, :func:`kpnet_from_net_config` for ``net.name``
  ``ssl4mis_vnet`` / ``ssl4mis_unet``): both encoders and both decoders are that network's
  (``nets/ssl4mis_blocks.py``): on ``ssl4mis_vnet`` the official V-Net layout itself (plain conv
  stages, additive skips, a 1x1 head); on ``ssl4mis_unet`` concatenated skips and a 3x3 head. The
  gate uses the network's norm (``net.options.normalization``, batch by default).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from monai.networks.blocks import Convolution, UpSample
from monai.networks.layers.factories import Dropout
from monai.networks.layers.utils import get_norm_layer
from torch import nn

from medssl.errors import ConfigError
from medssl.nets import ssl4mis_blocks as ssl4mis
from medssl.nets.multi_decoder import DEFAULT_CHANNELS, SSL4MIS_NETS, conv_block, level_strides

if TYPE_CHECKING:
    from medssl.nets.factory import NetSettings

ACT = ("leakyrelu", {"negative_slope": 0.01, "inplace": False})


class Encoder(nn.Module):
    """A plain conv encoder: one feature map per scale, ``channels[i]`` wide."""

    def __init__(
        self,
        dims: int,
        in_channels: int,
        channels: Sequence[int],
        strides: Sequence[int],
        res_units: int,
        norm,
        dropout: float,
        feature_dropout: float,
    ) -> None:
        super().__init__()
        widths = [in_channels, *channels]
        self.levels = nn.ModuleList(
            conv_block(dims, widths[i], widths[i + 1], res_units, norm, dropout, strides[i], ACT)
            for i in range(len(channels))
        )
        self.drop = Dropout[Dropout.DROPOUT, dims](feature_dropout)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        features[-1] = self.drop(features[-1])
        return features


def _upsample(dims: int, cin: int, cout: int, stride: int, mode: str, norm) -> nn.Module:
    """``deconv``: transposed conv (kernel = stride); ``interp``: (tri|bi)linear + 3x3 conv."""
    if mode == "deconv":
        return Convolution(
            dims,
            cin,
            cout,
            strides=stride,
            kernel_size=stride,
            padding=0,
            output_padding=0,
            act=ACT,
            norm=norm,
            is_transposed=True,
        )
    interp = "trilinear" if dims == 3 else "bilinear"
    return nn.Sequential(
        UpSample(
            dims,
            scale_factor=stride,
            mode="nontrainable",
            pre_conv=None,
            interp_mode=interp,
            align_corners=True,
        ),
        Convolution(dims, cin, cout, act=ACT, norm=norm),
    )


class Decoder(nn.Module):
    """Upsample, add the skip, conv; a 1x1 head to ``out_channels`` at full resolution (a strided
    first level gets one more upsample + conv, with no skip, to reach it)."""

    def __init__(
        self,
        dims: int,
        out_channels: int,
        channels: Sequence[int],
        strides: Sequence[int],
        res_units: int,
        norm,
        dropout: float,
        feature_dropout: float,
        upsample: str,
    ) -> None:
        super().__init__()
        self.upsample = upsample
        # (from width, to width, stride) per stage, deepest first
        stages = [
            (channels[i], channels[i - 1], strides[i]) for i in range(len(channels) - 1, 0, -1)
        ]
        if strides[0] > 1:
            stages.append((channels[0], channels[0], strides[0]))
        self.ups = nn.ModuleList(
            _upsample(dims, cin, cout, s, upsample, norm) for cin, cout, s in stages
        )
        # Every upsampling is followed by a conv block, as in the official decoder (whose last
        # block runs at full resolution), also the stage without a skip after a strided first
        # level: without it KP-Net trained far worse (docs/RESULTS.md, acdc-7).
        self.convs = nn.ModuleList(
            conv_block(dims, cout, cout, res_units, norm, dropout, 1, ACT) for _, cout, _ in stages
        )
        self.drop = Dropout[Dropout.DROPOUT, dims](feature_dropout)
        self.head = Convolution(dims, channels[0], out_channels, kernel_size=1, conv_only=True)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        skips = reversed(features[:-1])
        for up, conv in zip(self.ups, self.convs, strict=True):
            x = up(x)
            skip = next(skips, None)
            x = conv(x if skip is None else x + skip)
        return self.head(self.drop(x))


class TokenJointGate(nn.Module):
    """KP-Net's Token Joint Gate: class text embeddings gate and join the bottleneck tokens."""

    def __init__(
        self,
        dims: int,
        num_classes: int,
        text_dim: int,
        channels: int,
        grid: Sequence[int],
        norm,
    ) -> None:
        super().__init__()
        self.grid = tuple(int(g) for g in grid)
        tokens = math.prod(self.grid)
        self.to_tokens = nn.Linear(text_dim, tokens, bias=False)  # (K, D) -> (K, N)
        self.text_t = nn.Sequential(
            nn.Linear(num_classes, channels), nn.LayerNorm(channels), nn.LeakyReLU()
        )
        self.w = nn.Sequential(
            Convolution(dims, channels, channels, kernel_size=1, conv_only=True),
            get_norm_layer(norm, dims, channels) if norm else nn.Identity(),
        )
        self.psi = nn.Sequential(
            Convolution(dims, channels, 1, kernel_size=1, conv_only=True),
            get_norm_layer(norm, dims, 1) if norm else nn.Identity(),
            nn.Sigmoid(),
        )
        self.mix = Convolution(dims, 2 * channels, channels, kernel_size=1, act=ACT, norm=norm)

    def text_map(self, text: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """``(K, D)`` embeddings -> a ``(B, C, *grid)`` text feature map, resized to ``visual``."""
        tokens = self.to_tokens(text).transpose(0, 1)  # (N, K)
        mapped = self.text_t(tokens).transpose(0, 1)  # (C, N)
        t = mapped.reshape(1, -1, *self.grid)
        if tuple(visual.shape[2:]) != self.grid:
            mode = "trilinear" if visual.ndim == 5 else "bilinear"
            t = F.interpolate(t, size=visual.shape[2:], mode=mode, align_corners=False)
        return t.expand(visual.shape[0], *t.shape[1:])

    def gate(self, visual: torch.Tensor, text_map: torch.Tensor) -> torch.Tensor:
        """The attention map ``psi`` in [0, 1], ``(B, 1, *spatial)``."""
        return self.psi(F.leaky_relu(self.w(visual) + self.w(text_map)))

    def forward(self, text: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        t = self.text_map(text, visual)
        return self.mix(torch.cat([visual, t], dim=1)) * self.gate(visual, t)


class KPNet(nn.Module):
    """``(B, 2C, *patch)`` image + edge prompt -> the two decoders' logits ``(B, K, *patch)``."""

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        prompts: nn.Module,
        text_dim: int,
        patch_size: Sequence[int],
        channels: Sequence[int] = (16, 32, 64, 128, 256),
        strides: Sequence[int] | None = None,
        num_res_units: int = 2,
        norm: str = "instance",
        dropout: float = 0.0,
        feature_dropout: float = 0.5,
        prompt_levels: int = 2,
        blocks: ssl4mis.Blocks | None = None,
    ) -> None:
        """``blocks``: build on an SSL4MIS network's blocks (``num_res_units``, ``norm`` and
        ``dropout`` are then the blocks'; ``strides`` start with 1, full resolution)."""
        super().__init__()
        channels = list(channels)
        strides = list(strides or level_strides("unet", channels))
        if len(strides) != len(channels):
            raise ValueError(f"KP-Net: {len(channels)} widths need {len(channels)} level strides")
        factor = math.prod(strides)
        if any(p % factor for p in patch_size):
            raise ValueError(f"KP-Net: patch {list(patch_size)} must be divisible by {factor}")
        self.in_channels = in_channels
        self.prompt_levels = min(prompt_levels, len(channels))
        self.family = "unet" if blocks is None else blocks.family  # the encoder hand-off's
        grid = [p // factor for p in patch_size]
        if blocks is not None:
            enc = (blocks, in_channels, channels, strides, feature_dropout)
            self.image_encoder = ssl4mis.Encoder(*enc)
            self.prompt_encoder = ssl4mis.Encoder(*enc)
            self.prompts = prompts
            gate = (spatial_dims, out_channels, text_dim, channels[-1], grid, blocks.norm)
            self.gate = TokenJointGate(*gate)
            dec = (blocks, out_channels, channels, strides)
            heads = {"head_perturbations": ["dropout"], "head_dropout": feature_dropout}
            self.decoder_deconv = ssl4mis.SingleDecoder(*dec, "transpose", **heads)
            self.decoder_interp = ssl4mis.SingleDecoder(*dec, "linear", **heads)
            return
        enc = (spatial_dims, in_channels, channels, strides, num_res_units, norm, dropout)
        self.image_encoder = Encoder(*enc, feature_dropout)
        self.prompt_encoder = Encoder(*enc, feature_dropout)
        self.prompts = prompts
        self.gate = TokenJointGate(spatial_dims, out_channels, text_dim, channels[-1], grid, norm)
        dec = (spatial_dims, out_channels, channels, strides, num_res_units, norm, dropout)
        self.decoder_deconv = Decoder(*dec, feature_dropout, upsample="deconv")
        self.decoder_interp = Decoder(*dec, feature_dropout, upsample="interp")

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """First ``C`` channels: the image; last ``C``: its edge prompt."""
        c = self.in_channels
        if x.shape[1] != 2 * c:
            raise ValueError(
                f"KP-Net expects {2 * c} input channels (image + edge prompt), got {x.shape[1]}; "
                "the data pipeline adds the prompt with data.derived_channels: [edge]"
            )
        return x[:, :c], x[:, c:]

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Fused encoder features, the bottleneck joined with the text prompts."""
        image, prompt = self.split(x)
        fused = self.image_encoder(image)
        edges = self.prompt_encoder(prompt)
        first = len(fused) - self.prompt_levels
        pairs = enumerate(zip(fused, edges, strict=True))
        fused = [f + e if i >= first else f for i, (f, e) in pairs]
        fused[-1] = self.gate(self.prompts(), fused[-1])
        return fused

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(x)
        return self.decoder_deconv(feats), self.decoder_interp(feats)


def kpnet_from_net_config(
    net: NetSettings,
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    *,
    prompts: nn.Module,
    text_dim: int,
    patch_size: Sequence[int],
    feature_dropout: float = 0.5,
    prompt_levels: int = 2,
) -> KPNet:
    """KP-Net at the run's ``net``: MONAI blocks at the ``unet`` / ``vnet`` layout, or the blocks
    of ``ssl4mis_vnet`` / ``ssl4mis_unet`` (of ``net.options`` only their ``normalization`` and
    ``encoder_dropout`` apply; ``net.dropout`` is the UNet decoder blocks' dropout)."""
    channels = list(net.channels or DEFAULT_CHANNELS)
    kw = {"feature_dropout": feature_dropout, "prompt_levels": prompt_levels}
    head = (spatial_dims, in_channels, out_channels, prompts, text_dim, patch_size)
    if net.name in SSL4MIS_NETS:
        from medssl.nets.ssl4mis import kpnet_parts

        try:
            blocks, channels, strides = kpnet_parts(net, spatial_dims)
            return KPNet(*head, channels=channels, strides=strides, blocks=blocks, **kw)
        except ValueError as err:
            raise ConfigError(f"kpnet on {net.name}: {err}") from err
    return KPNet(
        *head,
        channels=channels,
        strides=level_strides(net.name, channels, net.strides),
        num_res_units=net.num_res_units,
        norm=net.norm,
        dropout=net.dropout,
        **kw,
    )
