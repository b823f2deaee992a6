"""The network factory: every registered network in 2D and 3D, its options, and clear errors."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from medssl.errors import ConfigError
from medssl.nets import factory
from medssl.nets.factory import (
    CLASSIFIERS,
    NETS,
    check_net_options,
    create_net,
    downsample_factor,
    net_from_config,
    net_options,
)

# MedMNIST-sized tiny classifiers: 1/8 of the ResNet widths, 8-wide DenseNets growing by 4.
TINY_CLASSIFIER = {
    "resnet": {"small_input": True, "widen_factor": 0.125},
    "densenet": {"small_input": True, "init_features": 8, "growth_rate": 4, "bn_size": 2},
}
K = 3


def _logits(net: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    net.eval()
    with torch.no_grad():
        return net(torch.randn(shape))


def _n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("name", ["unet", "vnet"])
@pytest.mark.parametrize("dims", [2, 3])
def test_networks_keep_the_spatial_shape(name: str, dims: int):
    net = create_net(name, dims, 1, 4, channels=[8, 16, 32], num_res_units=0)
    x = torch.randn((2, 1) + (32,) * dims)
    assert net(x).shape == (2, 4) + (32,) * dims


def test_every_network_is_registered():
    papers = ["ssl4mis_unet", "ssl4mis_vnet"]  # tests/nets/test_ssl4mis.py
    assert NETS.names() == sorted(["unet", "vnet", "swin_unetr", *papers, *CLASSIFIERS])


@pytest.mark.parametrize("name", CLASSIFIERS)
@pytest.mark.parametrize("dims", [2, 3])
def test_classifiers_map_a_medmnist_image_to_class_logits(name: str, dims: int):
    options = TINY_CLASSIFIER[name.rstrip("0123456789")]
    net = create_net(name, dims, 1, K, options=options)
    assert _logits(net, (1, 1) + (28,) * dims).shape == (1, K)


@pytest.mark.parametrize("dims", [2, 3])
def test_resnet18_at_monai_stem_takes_28_pixel_inputs(dims: int):
    net = create_net("resnet18", dims, 2, K, widen_factor=0.125)
    assert _logits(net, (1, 2) + (28,) * dims).shape == (1, K)


def test_parameter_counts_match_monai():
    # torchvision's ResNet-18 (11,689,512) with a 1-channel conv1 (-6,272), a 7-class fc
    # (-513,000 + 3,591) and MONAI's biased downsample convs (+896); likewise DenseNet-121.
    assert _n_params(create_net("resnet18", 2, 1, 7)) == pytest.approx(11_174_727, rel=0.01)
    assert _n_params(create_net("densenet121", 2, 1, 7)) == pytest.approx(6_954_759, rel=0.01)


def test_small_input_gives_resnet_a_3x3_stride_1_stem_without_max_pool():
    net = create_net("resnet18", 2, 1, K, small_input=True, widen_factor=0.125)
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1) and net.no_max_pool
    wide = create_net("resnet18", 2, 1, K, small_input=True, conv1_t_size=5, widen_factor=0.125)
    assert wide.conv1.kernel_size == (5, 5)  # an explicit stem option wins over small_input
    plain = create_net("resnet18", 2, 1, K, widen_factor=0.125)
    assert plain.conv1.kernel_size == (7, 7) and not plain.no_max_pool


def test_small_input_gives_densenet_a_3x3_stride_1_stem_without_pool():
    net = create_net("densenet121", 3, 1, K, **TINY_CLASSIFIER["densenet"])
    assert net.features.conv0.kernel_size == (3, 3, 3) and net.features.conv0.stride == (1, 1, 1)
    assert isinstance(net.features.pool0, nn.Identity)


def test_swin_unetr_segments_a_32_patch_in_3d_and_a_64_patch_in_2d():
    pytest.importorskip("einops", reason="MONAI's SwinUNETR needs einops")
    net = create_net("swin_unetr", 3, 1, K, norm="batch", options={"feature_size": 12})
    assert _logits(net, (1, 1, 32, 32, 32)).shape == (1, K, 32, 32, 32)
    # instance norm (the default) needs a bottleneck of more than one pixel: 64 = 2 x 32
    net = create_net("swin_unetr", 2, 2, K, options={"feature_size": 12})
    assert _logits(net, (1, 2, 64, 64)).shape == (1, K, 64, 64)


def test_swin_unetr_takes_the_shared_dropout_unless_its_drop_rate_is_given():
    pytest.importorskip("einops", reason="MONAI's SwinUNETR needs einops")
    tiny = {"feature_size": 12, "depths": [1, 1, 1, 1]}
    net = create_net("swin_unetr", 3, 1, K, dropout=0.2, options=tiny)
    assert net.swinViT.pos_drop.p == 0.2
    net = create_net("swin_unetr", 3, 1, K, dropout=0.2, options={**tiny, "drop_rate": 0.0})
    assert net.swinViT.pos_drop.p == 0.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"feature_size": 16}, "feature_size=16 must be a positive multiple of 12"),
        ({"depths": [2, 2]}, "need one entry per stage, 4 each"),
        ({"feature_size": 12, "num_heads": [5, 6, 12, 24]}, r"num_heads\[0\]=5"),
        ({"feature_size": 12, "dropout_path_rate": 2.0}, "net swin_unetr: drop path rate"),
    ],
)
def test_swin_unetr_settings_are_checked_with_one_line_errors(options, message):
    pytest.importorskip("einops", reason="MONAI's SwinUNETR needs einops")
    with pytest.raises(ConfigError, match=message) as err:
        create_net("swin_unetr", 3, 1, K, options=options)
    assert "\n" not in str(err.value)


def test_swin_unetr_without_einops_says_what_to_install(monkeypatch):
    real = factory.importlib.util.find_spec
    monkeypatch.setattr(
        factory.importlib.util, "find_spec", lambda n, *a: None if n == "einops" else real(n, *a)
    )
    with pytest.raises(ConfigError, match="pip install einops"):
        create_net("swin_unetr", 3, 1, K, options={"feature_size": 12})


def test_an_unknown_option_names_the_network_and_its_valid_options():
    with pytest.raises(ConfigError) as err:
        create_net("resnet18", 2, 1, K, options={"conv1_size": 3})
    message = str(err.value)
    assert "'resnet18' has no option 'conv1_size'" in message
    assert "did you mean 'conv1_t_size'" in message
    assert "small_input, conv1_t_size, conv1_t_stride, no_max_pool" in message
    assert "\n" not in message


def test_an_unknown_keyword_is_an_option_and_checked_too():
    with pytest.raises(ConfigError, match="'vnet' has no option 'feature_size'"):
        create_net("vnet", 3, 1, K, feature_size=12)


def test_shared_keys_reach_only_the_networks_that_use_them():
    net = create_net("resnet18", 2, 1, K, channels=[8, 16], norm="instance", dropout=0.5)
    assert isinstance(net.bn1, nn.BatchNorm2d)  # ResNet keeps its batch norm
    net = create_net("densenet121", 2, 1, K, dropout=0.25, **TINY_CLASSIFIER["densenet"])
    assert net.features.denseblock1.denselayer1.layers.dropout.p == 0.25


def test_shared_keys_given_as_options_are_checked():
    with pytest.raises(ConfigError, match="'vnet' has no option 'channels'"):
        create_net("vnet", 3, 1, K, options={"channels": [8, 16]})
    # ... and override the shared value where the network has them
    net = create_net("unet", 2, 1, K, channels=[4, 8], options={"channels": [8, 16]})
    assert list(net.channels) == [8, 16]


def test_an_option_given_twice_is_an_error():
    with pytest.raises(ConfigError, match="'small_input' is given both"):
        create_net("resnet18", 2, 1, K, small_input=True, options={"small_input": False})


def test_option_values_are_converted_or_rejected_by_type():
    assert check_net_options("resnet18", {"small_input": "true", "widen_factor": "0.5"}) == {
        "small_input": True,
        "widen_factor": 0.5,
    }
    with pytest.raises(ConfigError, match=r"net.options.shortcut_type='C'.*'resnet18' expects"):
        check_net_options("resnet18", {"shortcut_type": "C"})
    with pytest.raises(ConfigError, match="net.options.feature_size='big'"):
        check_net_options("swin_unetr", {"feature_size": "big"})


def test_net_options_lists_each_networks_own_settings():
    assert list(net_options("unet")) == ["channels", "strides", "num_res_units", "norm", "dropout"]
    assert list(net_options("vnet")) == ["dropout", "act", "bias"]
    assert {"feature_size", "depths", "num_heads", "use_checkpoint"} <= set(
        net_options("swin_unetr")
    )


def test_net_from_config_passes_the_shared_settings_and_the_options():
    cfg = SimpleNamespace(
        name="resnet18",
        channels=None,
        strides=None,
        num_res_units=2,
        norm="instance",
        dropout=0.0,
        options={"small_input": True, "widen_factor": 0.125},
    )
    net = net_from_config(cfg, 2, 1, K)
    assert net.no_max_pool and _logits(net, (1, 1, 28, 28)).shape == (1, K)
    del cfg.options  # a config without options (today's NetConfig) still works
    cfg.name, cfg.channels = "unet", [4, 8]
    assert list(net_from_config(cfg, 2, 1, K).channels) == [4, 8]


def test_downsample_factor():
    assert downsample_factor("vnet") == 16
    assert downsample_factor("swin_unetr") == 32
    assert downsample_factor("resnet18") == 1
    assert downsample_factor("unet", levels=5) == 16
    assert downsample_factor("unet", strides=[2, 2]) == 4


def test_unknown_network_suggests_the_close_name():
    with pytest.raises(ConfigError, match="did you mean 'unet'"):
        NETS.get("uent")
    with pytest.raises(ConfigError, match="did you mean 'resnet18'"):
        create_net("resnet19", 2, 1, K)
