"""The classification networks of the factory: MONAI's ResNet-10/18/34/50 and DenseNet-121/169.

``(B, C, *image) -> (B, K)`` logits, 2D or 3D, registered into :data:`medssl.nets.factory.NETS`
(this module is imported by the factory, so ``create_net("resnet18", ...)`` always finds them).
Each takes a ``small_input`` option for MedMNIST-sized images (28 x 28 / 28^3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from monai.networks.layers.factories import Conv
from monai.networks.nets import DenseNet121, DenseNet169
from monai.networks.nets import resnet10 as monai_resnet10
from monai.networks.nets import resnet18 as monai_resnet18
from monai.networks.nets import resnet34 as monai_resnet34
from monai.networks.nets import resnet50 as monai_resnet50
from torch import nn

from medssl.nets.factory import NETS, Act


def _register_resnet(name: str, monai_factory: Callable[..., nn.Module]) -> None:
    def build(
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        *,
        small_input: bool = False,
        conv1_t_size: int | None = None,
        conv1_t_stride: int | None = None,
        no_max_pool: bool | None = None,
        shortcut_type: Literal["A", "B"] = "B",
        widen_factor: float = 1.0,
        bias_downsample: bool = True,
    ) -> nn.Module:
        # ``small_input`` only changes the defaults; explicit stem options win over it.
        return monai_factory(
            spatial_dims=spatial_dims,
            n_input_channels=in_channels,
            num_classes=out_channels,
            conv1_t_size=(3 if small_input else 7) if conv1_t_size is None else conv1_t_size,
            conv1_t_stride=1 if conv1_t_stride is None else conv1_t_stride,
            no_max_pool=small_input if no_max_pool is None else no_max_pool,
            shortcut_type=shortcut_type,
            widen_factor=widen_factor,
            bias_downsample=bias_downsample,
        )

    depth = name.removeprefix("resnet")
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"""MONAI ResNet-{depth} (He et al. 2016; Chen et al. 2019's 2D/3D layout).

    ``(B, C, *image) -> (B, out_channels)`` logits. MONAI's stem: a ``conv1_t_size`` (7) conv of
    stride ``conv1_t_stride`` (1; torchvision's ImageNet stem is 2) and a stride-2 max pool.
    ``small_input`` (MedMNIST's 28 x 28 / 28^3) makes the stem a 3 x 3 stride-1 conv without the
    pool, as CIFAR ResNets do. The shared ``net`` settings do not apply (norm is batch norm).
    """
    NETS.register(name)(build)


_register_resnet("resnet10", monai_resnet10)
_register_resnet("resnet18", monai_resnet18)
_register_resnet("resnet34", monai_resnet34)
_register_resnet("resnet50", monai_resnet50)


def _small_densenet_stem(net: nn.Module, spatial_dims: int, in_channels: int) -> None:
    """Replace DenseNet's 7x7 stride-2 conv + max pool by one 3x3 stride-1 conv."""
    features = net.features
    out = features.conv0.out_channels
    conv = Conv[Conv.CONV, spatial_dims](in_channels, out, kernel_size=3, padding=1, bias=False)
    nn.init.kaiming_normal_(conv.weight)  # as MONAI initialises its convolutions
    features.conv0 = conv
    features.pool0 = nn.Identity()


def _register_densenet(name: str, monai_class: type[nn.Module]) -> None:
    def build(
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        dropout: float = 0.0,
        *,
        small_input: bool = False,
        init_features: int = 64,
        growth_rate: int = 32,
        bn_size: int = 4,
        act: Act = ("relu", {"inplace": True}),
    ) -> nn.Module:
        net = monai_class(
            spatial_dims=spatial_dims,
            in_channels=in_channels,
            out_channels=out_channels,
            init_features=init_features,
            growth_rate=growth_rate,
            bn_size=bn_size,
            act=act,
            dropout_prob=dropout,
        )
        if small_input:
            _small_densenet_stem(net, spatial_dims, in_channels)
        return net

    depth = name.removeprefix("densenet")
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"""MONAI DenseNet-{depth} (Huang et al. 2017), 2D or 3D.

    ``(B, C, *image) -> (B, out_channels)`` logits; the shared ``dropout`` is the dropout after
    each dense layer. The stem (7x7 stride-2 conv, max pool) and three 2x transitions shrink the
    input 32 times: 28 x 28 inputs need ``small_input`` (a 3x3 stride-1 conv, no pool).
    Batch norm throughout (the shared ``norm`` does not apply).
    """
    NETS.register(name)(build)


_register_densenet("densenet121", DenseNet121)
_register_densenet("densenet169", DenseNet169)
