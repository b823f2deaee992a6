"""The multi-decoder network: decoders differing in upsampling, the deep-supervision pyramid,
training-only feature perturbations, and the test-time single output."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from medssl.engine.config import NetConfig
from medssl.errors import ConfigError
from medssl.nets.factory import create_net
from medssl.nets.multi_decoder import (
    MainOutput,
    MeanOutput,
    MultiDecoderNet,
    Perturbation,
    from_net_config,
    level_strides,
)
from tests.nets.conv_outputs import conv_output_shapes

TINY = {"channels": [8, 16, 32], "num_res_units": 0}


def _upsampling_layers(net: MultiDecoderNet) -> list[set[str]]:
    """Per decoder: the kinds of upsampling layers it contains."""
    kinds = []
    for decoder in net.decoders:
        found = set()
        for m in decoder.ups.modules():
            if isinstance(m, nn.ConvTranspose2d | nn.ConvTranspose3d):
                found.add("transpose")
            elif isinstance(m, nn.Upsample):
                found.add(m.mode)
        kinds.append(found)
    return kinds


@pytest.mark.parametrize("dims", [2, 3])
def test_three_decoders_upsample_differently_and_keep_the_input_shape(dims: int):
    net = MultiDecoderNet(dims, 1, 3, upsampling=("transpose", "linear", "nearest"), **TINY)
    x = torch.randn((2, 1) + (32,) * dims)
    outputs = net(x)
    assert len(outputs) == 3
    assert all(o.shape == (2, 3) + (32,) * dims for o in outputs)
    linear = "bilinear" if dims == 2 else "trilinear"
    assert _upsampling_layers(net) == [{"transpose"}, {linear}, {"nearest"}]
    assert not torch.allclose(outputs[0], outputs[1])


@pytest.mark.parametrize("dims", [2, 3])
def test_deep_supervision_gives_one_full_size_output_per_decoder_stage(dims: int):
    x = torch.randn((1, 1) + (32,) * dims)
    full_res_first = level_strides("vnet", [4, 8, 8, 8])
    net = MultiDecoderNet(
        dims, 1, 2, [4, 8, 8, 8], full_res_first, num_res_units=0, deep_supervision=5
    )
    assert net.num_heads == 3  # capped at the three decoder stages of a four-level net
    outputs = net(x)
    assert [o.shape for o in outputs] == [(1, 2) + (32,) * dims] * 3
    strided_first = MultiDecoderNet(dims, 1, 2, [4, 8, 8, 8], num_res_units=0, deep_supervision=5)
    assert strided_first.num_heads == 4  # plus the stage back to full resolution
    assert [o.shape for o in strided_first(x)] == [(1, 2) + (32,) * dims] * 4


@pytest.mark.parametrize("strides", [None, [1, 2, 2], [2, 1, 2]])
def test_levels_sit_where_monai_unet_puts_them_at_the_same_net_config(strides):
    """Same widths at the same resolutions as the factory's UNet, so methods compare on one
    topology; the output is still full size."""
    cfg = NetConfig(name="unet", channels=[4, 8, 16, 32], strides=strides, num_res_units=0)
    x = torch.randn(1, 1, 32, 32)
    unet = create_net("unet", 2, 1, 2, channels=cfg.channels, strides=strides, num_res_units=0)
    net = from_net_config(cfg, 2, 1, 2)
    features = net.encoder(x)
    expected = _monai_down_path(unet, x)
    assert [(f.shape[1], f.shape[2]) for f in features] == expected
    assert net(x)[0].shape == (1, 2, 32, 32)


def test_a_strided_first_level_adds_no_convolution_block_at_full_resolution():
    """As MONAI's UNet ends: the last stage only upsamples (no skip to merge there), so at full
    resolution each decoder runs nothing but its upsampling and its 1x1 head."""
    net = MultiDecoderNet(
        3, 1, 2, [4, 8, 16], num_res_units=1, upsampling=("transpose", "linear", "nearest")
    )
    x = torch.randn(1, 1, 16, 16, 16)
    shapes = conv_output_shapes(net.decoders, lambda: net(x))
    full = [shape[1] for shape in shapes if shape[2:] == x.shape[2:]]
    assert full == [2, 2, 2]  # the three heads


def test_vnet_levels_start_at_full_resolution():
    net = from_net_config(NetConfig(name="vnet", channels=[4, 8, 16]), 2, 1, 2)
    assert [f.shape[2] for f in net.encoder(torch.randn(1, 1, 32, 32))] == [32, 16, 8]
    assert level_strides("vnet", [4, 8, 16]) == [1, 2, 2]
    assert level_strides("unet", [4, 8, 16]) == [2, 2, 1]


def test_the_gpu_patch_and_five_levels_fit():
    """112x112x80 (the LA protocol) through four downsamplings, as the GPU profile's widths."""
    strides = level_strides("vnet", [2] * 5)
    net = MultiDecoderNet(3, 1, 2, [2] * 5, strides, num_res_units=0, deep_supervision=4).eval()
    with torch.no_grad():
        outputs = net(torch.randn(1, 1, 112, 112, 80))
    assert [o.shape for o in outputs] == [(1, 2, 112, 112, 80)] * 4


def test_perturbations_act_in_training_only():
    torch.manual_seed(0)
    x = torch.rand(2, 4, 8, 8) + 0.1
    for kind in ("dropout", "feature_dropout", "noise"):
        layer = Perturbation(kind, dims=2)
        assert not torch.equal(layer.train()(x), x), kind
        assert torch.equal(layer.eval()(x), x), kind
    assert torch.equal(Perturbation("none", dims=2).train()(x), x)


def test_feature_dropout_zeroes_the_most_active_locations():
    x = torch.ones(1, 2, 4, 4)
    x[:, :, 0, 0] = 10.0  # channel mean 10 >= 0.9 * max: dropped; the rest (1 < 7) kept
    out = Perturbation("feature_dropout", dims=2).train()(x)
    assert torch.all(out[:, :, 0, 0] == 0)
    assert torch.all(out.flatten(2)[:, :, 1:] == 1)


def _monai_down_path(unet: nn.Module, x: torch.Tensor) -> list[tuple[int, int]]:
    """(width, side) after each down-path convolution of a MONAI UNet without residual units
    (its up path is transposed convolutions only, so the plain convolutions are the down path)."""
    return [(shape[1], shape[2]) for shape in conv_output_shapes(unet, lambda: unet(x))]


def test_heads_get_their_own_perturbation_and_main_output_is_the_first_decoder():
    net = MultiDecoderNet(
        2, 1, 2, upsampling=("transpose", "nearest"), head_perturbations=["none", "noise"], **TINY
    )
    assert [p.kind for p in net.decoders[0].perturb] == ["none"]
    pyramid = MultiDecoderNet(
        2, 1, 2, channels=[4, 8, 8], deep_supervision=2, head_perturbations=["none", "noise"]
    )
    assert [p.kind for p in pyramid.decoders[0].perturb] == ["none", "noise"]
    x = torch.randn(1, 1, 32, 32)
    net.eval()
    with torch.no_grad():
        outputs = net(x)
        assert torch.allclose(MainOutput(net)(x), outputs[0])
        assert torch.allclose(MeanOutput(net)(x), (outputs[0] + outputs[1]) / 2)
    assert not list(MainOutput(net).parameters())  # the wrapper does not re-register the net


def test_from_net_config_uses_the_run_widths_and_refuses_other_networks():
    net = from_net_config(NetConfig(name="vnet", **TINY), 2, 1, 2)
    assert len(net.encoder.levels) == 3  # one per width
    with pytest.raises(ConfigError, match="multi-decoder"):
        from_net_config(NetConfig(name="swin_unetr"), 2, 1, 2)


def test_from_net_config_refuses_network_options():
    net = SimpleNamespace(**{**NetConfig(name="unet", **TINY).model_dump(), "options": {"foo": 1}})
    with pytest.raises(ConfigError, match=r"net.options \['foo'\]"):
        from_net_config(net, 2, 1, 2)


def test_element_wise_dropout_for_the_ssl4mis_unet_heads():
    torch.manual_seed(0)
    layer = Perturbation("dropout", dims=2, channelwise=False).train()
    assert isinstance(layer.dropout, nn.Dropout)
    out = layer(torch.ones(1, 64, 4, 4))
    kept = (out != 0).flatten(2).float().mean(dim=2)
    assert ((kept > 0) & (kept < 1)).any()  # some channels partly dropped: not whole channels
    assert isinstance(Perturbation("dropout", dims=3).dropout, nn.Dropout3d)  # the default


def test_the_monai_block_layouts_refuse_the_ssl4mis_networks():
    """Their own blocks are built by from_net_config; a MONAI-block network at their layout
    would silently be another network (a method building one, e.g. KP-Net, says so)."""
    with pytest.raises(ConfigError, match="net.name='ssl4mis_vnet'.*use net.name unet or vnet"):
        level_strides("ssl4mis_vnet", [4, 8, 16])
    net = from_net_config(NetConfig(name="ssl4mis_vnet", **TINY), 2, 1, 2)
    assert [f.shape[2] for f in net.encoder(torch.randn(1, 1, 16, 16))] == [16, 8, 4]
