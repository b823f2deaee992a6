"""Network factory over MONAI networks: one registry, ``create_net(name, ...)``.

Methods never import a MONAI class directly: they ask the factory, so that every method of a
family trains the same network under the same settings, and ``--config net.name=...`` swaps it.

Registered networks (``NETS.names()``):

- segmentation, ``(B, C, *patch) -> (B, K, *patch)``: ``unet`` (MONAI residual UNet),
  ``vnet`` (V-Net; patch sides multiples of 16), ``swin_unetr`` (Swin UNETR; 2D or 3D, patch sides
  multiples of 32), ``ssl4mis_vnet`` and ``ssl4mis_unet`` (the V-Net and 2D UNet the LA / ACDC
  semi-supervised papers report on; ``nets/ssl4mis.py``, batch norm by default);
- classification, ``(B, C, *image) -> (B, K)`` logits, ``out_channels`` = number of classes:
  ``resnet10``, ``resnet18``, ``resnet34``, ``resnet50`` (MONAI ``ResNet``), ``densenet121``,
  ``densenet169`` (MONAI ``DenseNet``), each 2D or 3D.

Two kinds of keyword settings reach a network:

- the **shared** ones, ``SHARED_KEYS`` (the run's ``net`` widths, strides, residual units, norm and
  dropout): every network accepts them and takes only those its builder has a parameter for
  (V-Net takes ``dropout`` only; ResNet none), so one run config can swap networks;
- its **options**: any other keyword, or an entry of the ``options`` mapping. Options are
  checked against the builder's signature (``net_options(name)``): an option the network does not
  have, or a value of the wrong type, is a one-line :class:`~medssl.errors.ConfigError` naming
  the network and its valid options. An option overrides a shared key of the same name.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, get_type_hints

from monai.networks.nets import SwinUNETR, UNet, VNet
from pydantic import TypeAdapter, ValidationError
from torch import nn

from medssl.errors import ConfigError
from medssl.registry import Registry

NETS: Registry = Registry("network")

# The run's ``net`` settings every network accepts (each uses those it has a parameter for).
SHARED_KEYS: tuple[str, ...] = ("channels", "strides", "num_res_units", "norm", "dropout")
_POSITIONAL = ("spatial_dims", "in_channels", "out_channels")

# Networks whose input sides must be multiples of a fixed factor (others: the product of strides).
_FIXED_FACTORS = {"vnet": 16, "swin_unetr": 32}
# Image -> logits networks: any input size that survives their downsampling works.
CLASSIFIERS: tuple[str, ...] = (
    "resnet10",
    "resnet18",
    "resnet34",
    "resnet50",
    "densenet121",
    "densenet169",
)

Act = str | tuple[str, dict[str, Any]]


class NetSettings(Protocol):
    """What the factory reads from a run's ``net`` config (the engine's ``NetConfig``)."""

    name: str
    channels: Sequence[int] | None
    strides: Sequence[int] | None
    num_res_units: int
    norm: str
    dropout: float


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
    act: Act = ("elu", {"inplace": True}),
    bias: bool = False,
) -> nn.Module:
    """MONAI V-Net (Milletari et al. 2016), the network of the UA-MT / MC-Net LA protocol.

    V-Net downsamples four times: patch sides must be multiples of 16. Its widths are fixed
    (16-256): the shared UNet settings (channels, strides, residual units, norm) do not apply.
    """
    return VNet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=out_channels,
        act=act,
        dropout_prob_down=dropout,
        dropout_prob_up=(dropout, dropout),
        dropout_dim=spatial_dims,
        bias=bias,
    )


@NETS.register("swin_unetr")
def swin_unetr(
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    norm: str = "instance",
    dropout: float = 0.0,
    *,
    feature_size: int = 48,
    depths: Sequence[int] = (2, 2, 2, 2),
    num_heads: Sequence[int] = (3, 6, 12, 24),
    window_size: int | Sequence[int] = 7,
    mlp_ratio: float = 4.0,
    qkv_bias: bool = True,
    drop_rate: float | None = None,
    attn_drop_rate: float = 0.0,
    dropout_path_rate: float = 0.0,
    normalize: bool = True,
    patch_norm: bool = False,
    use_checkpoint: bool = False,
    use_v2: bool = False,
    downsample: Literal["merging", "mergingv2"] = "merging",
    use_flash_attention: bool = False,
) -> nn.Module:
    """MONAI Swin UNETR (Hatamizadeh et al. 2022), the backbone of VoCo.

    Patch sides must be multiples of 32 (patch tokens of 2, then four 2x merges); with instance
    norm (the default) at least 64, so that the 1/32 bottleneck has more than one voxel. The shared
    ``norm`` is the conv blocks' norm (``norm_name``), the shared ``dropout`` the transformer's
    ``drop_rate`` unless that option is given. ``feature_size`` defaults to 48, the Swin UNETR
    paper's and VoCo-B's width (MONAI's signature default is 24); it must be a multiple of 12.
    """
    if importlib.util.find_spec("einops") is None:  # MONAI imports it only in the forward pass
        raise ConfigError("swin_unetr needs the einops package; pip install einops")
    if spatial_dims not in (2, 3):
        raise ConfigError(f"swin_unetr is 2D or 3D, not {spatial_dims}D; set data.spatial_dims")
    if feature_size <= 0 or feature_size % 12:
        raise ConfigError(
            f"swin_unetr: feature_size={feature_size} must be a positive multiple of 12 "
            "(e.g. 12, 24, 48)"
        )
    if len(depths) != 4 or len(num_heads) != 4:
        raise ConfigError(
            f"swin_unetr: depths {list(depths)} and num_heads {list(num_heads)} need one entry "
            "per stage, 4 each"
        )
    for stage, heads in enumerate(num_heads):
        width = feature_size * 2**stage
        if heads <= 0 or width % heads:
            raise ConfigError(
                f"swin_unetr: stage {stage + 1} is {width} wide, not divisible by "
                f"num_heads[{stage}]={heads}; choose heads that divide feature_size * 2**stage"
            )
    return SwinUNETR(
        in_channels=in_channels,
        out_channels=out_channels,
        depths=tuple(depths),
        num_heads=tuple(num_heads),
        window_size=window_size if isinstance(window_size, int) else tuple(window_size),
        qkv_bias=qkv_bias,
        mlp_ratio=mlp_ratio,
        feature_size=feature_size,
        norm_name=norm,
        drop_rate=dropout if drop_rate is None else drop_rate,
        attn_drop_rate=attn_drop_rate,
        dropout_path_rate=dropout_path_rate,
        normalize=normalize,
        patch_norm=patch_norm,
        use_checkpoint=use_checkpoint,
        spatial_dims=spatial_dims,
        downsample=downsample,
        use_v2=use_v2,
        use_flash_attention=use_flash_attention,
    )


# -- options -------------------------------------------------------------------------------
def net_options(name: str) -> dict[str, inspect.Parameter]:
    """The options of network ``name``: its builder's parameters after the three positional
    ones (shared keys included where the network uses them), in signature order."""
    params = inspect.signature(NETS.get(name)).parameters
    return {
        key: p
        for key, p in params.items()
        if key not in _POSITIONAL and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def check_net_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` validated against network ``name``: unknown names and wrongly typed values are
    a one-line ConfigError; values are converted to the parameter's type (``"3"`` -> ``3``)."""
    valid = net_options(name)
    hints = get_type_hints(NETS.get(name))
    checked: dict[str, Any] = {}
    for key, value in options.items():
        if key not in valid:
            close = difflib.get_close_matches(key, list(valid), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"net.options: network {name!r} has no option {key!r}{hint}; "
                f"valid options of {name}: {', '.join(valid) or 'none'}"
            )
        try:
            checked[key] = TypeAdapter(hints[key]).validate_python(value)
        except ValidationError as err:
            raise ConfigError(
                f"net.options.{key}={value!r}: {err.errors()[0]['msg']} "
                f"(network {name!r} expects {inspect.formatannotation(hints[key])})"
            ) from None
    return checked


def create_net(
    name: str,
    spatial_dims: int,
    in_channels: int,
    out_channels: int,
    options: Mapping[str, Any] | None = None,
    **kw: Any,
) -> nn.Module:
    """Build network ``name``: ``(B, in_channels, *spatial) -> (B, out_channels, ...)``.

    Keywords in ``SHARED_KEYS`` are taken where the network has them and dropped elsewhere; any
    other keyword, and each entry of ``options``, must be one of the network's options
    (``net_options``), else ConfigError. A name given both ways is an error.
    """
    builder = NETS.get(name)
    accepted = net_options(name)
    explicit = {k: v for k, v in kw.items() if k not in SHARED_KEYS}
    options = dict(options or {})
    twice = sorted(explicit.keys() & options.keys())
    if twice:
        raise ConfigError(f"net {name}: {twice[0]!r} is given both as a keyword and in options")
    args = {k: v for k, v in kw.items() if k in SHARED_KEYS and k in accepted}
    args.update(check_net_options(name, {**explicit, **options}))
    try:
        return builder(spatial_dims, in_channels, out_channels, **args)
    except (ValueError, AssertionError) as err:  # MONAI's own argument checks
        message = " ".join(str(err).split())
        raise ConfigError(f"net {name}: {message}; fix net.options") from err


def net_from_config(
    net: NetSettings, spatial_dims: int, in_channels: int, out_channels: int
) -> nn.Module:
    """``create_net`` from a run's ``net`` config: its shared settings and its ``options``."""
    return create_net(
        net.name,
        spatial_dims,
        in_channels,
        out_channels,
        options=getattr(net, "options", None),
        channels=net.channels,
        strides=net.strides,
        num_res_units=net.num_res_units,
        norm=net.norm,
        dropout=net.dropout,
    )


def downsample_factor(name: str, strides: Sequence[int] | None = None, levels: int = 5) -> int:
    """The factor patch sides must be divisible by for this network (1: any size)."""
    if name in _FIXED_FACTORS:
        return _FIXED_FACTORS[name]
    if name in CLASSIFIERS:
        return 1
    factor = 1
    for s in strides or [2] * (levels - 1):
        factor *= s
    return factor


# The classifiers and the papers' networks register themselves into NETS; imported last, as
# they need NETS and Act.
from medssl.nets import classifiers, ssl4mis  # noqa: E402, F401
