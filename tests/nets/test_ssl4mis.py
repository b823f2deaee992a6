"""The papers' networks (``ssl4mis_vnet``, ``ssl4mis_unet``): parameter counts against the
published networks and against their description, shapes in 2D and 3D, dropout, options, the
multi-decoder variants and the encoder hand-off between all of them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medssl.engine.config import NetConfig
from medssl.engine.handoff import export_encoder, init_from
from medssl.errors import CheckpointError, ConfigError
from medssl.nets.encoder_keys import encoder_map, encoders_in
from medssl.nets.factory import create_net, downsample_factor, net_from_config, net_options
from medssl.nets.kpnet import KPNet, kpnet_from_net_config
from medssl.nets.multi_decoder import from_net_config
from medssl.nets.ssl4mis import SSL4MISMultiDecoderNet, SSL4MISNet
from medssl.nets.text_prompts import LearnedPrompts

# Counted by instantiating the reference code (HiLab-git/SSL4MIS code/networks/vnet.py
# VNet(1, 2, normalization="batchnorm"), unet.py UNet(1, 4) / UNet_URPC(1, 4); ycwu1997/MC-Net
# code/networks/VNet.py MCNet3d_v2(1, 2, normalization="batchnorm"), unet.py MCNet2d_v1/v2(1, 4)).
REFERENCE = {
    "vnet": 9_448_866,  # "9.45 M" of UA-MT / MC-Net+ / BCP
    "unet": 1_813_764,  # "1.81 M" of the ACDC tables
    "urpc": 1_831_060,  # UNet_URPC: also builds a 3x3 head on the bottleneck it never uses
    "mcnet3d_v2": 15_246_566,
    "mcnet2d_v1": 2_577_624,
    "mcnet2d_v2": 3_210_924,
}
SMALL = [4, 8, 16]


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# -- the parameter count from the papers' description ------------------------------------------
def _conv(cin: int, cout: int, k: int, dims: int = 3, norm: bool = True) -> int:
    return cin * cout * k**dims + cout + (2 * cout if norm else 0)


def vnet_count(classes: int, c=(16, 32, 64, 128, 256), dims: int = 3) -> int:
    """Stages of 1, 2, 3, 3, 3 conv3-BN; 2x2x2 strided convs down and transposed convs up (each
    with BN); decoder stages of 3, 3, 2, 1; a 1x1 head."""
    stages = [min(i + 1, 3) for i in range(len(c))]
    total = _conv(1, c[0], 3, dims)
    for i in range(1, len(c)):
        total += _conv(c[i - 1], c[i], 2, dims) + stages[i] * _conv(c[i], c[i], 3, dims)
    for i in range(len(c) - 1):  # up to level i, then its stage
        total += _conv(c[i + 1], c[i], 2, dims) + stages[i] * _conv(c[i], c[i], 3, dims)
    return total + _conv(c[0], classes, 1, dims, norm=False)


def unet_count(classes: int, transpose: bool = False, c=(16, 32, 64, 128, 256)) -> int:
    """ConvBlocks of two conv3-BN; up: a 1x1 conv (or a 2x2 transposed conv), then a ConvBlock
    on the concatenation; a 3x3 head."""

    def block(cin: int, cout: int) -> int:
        return _conv(cin, cout, 3, 2) + _conv(cout, cout, 3, 2)

    total = block(1, c[0]) + sum(block(c[i - 1], c[i]) for i in range(1, len(c)))
    for i in range(len(c) - 1):
        up = _conv(c[i + 1], c[i], 2 if transpose else 1, 2, norm=False)
        total += up + block(2 * c[i], c[i])
    return total + _conv(c[0], classes, 3, 2, norm=False)


def test_the_vnet_has_the_papers_9_45_million_parameters():
    net = create_net("ssl4mis_vnet", 3, 1, 2)
    assert n_params(net) == pytest.approx(9.45e6, rel=0.01)
    assert n_params(net) == REFERENCE["vnet"] == vnet_count(2)


@pytest.mark.parametrize("classes", [4, 14])
def test_the_vnet_count_at_other_class_numbers(classes: int):
    count = n_params(create_net("ssl4mis_vnet", 3, 1, classes))
    assert count == vnet_count(classes) == REFERENCE["vnet"] + 17 * (classes - 2)  # 1x1 head


@pytest.mark.parametrize("classes", [2, 4])
def test_the_unet_counts_as_ssl4mis_builds_it(classes: int):
    net = create_net("ssl4mis_unet", 2, 1, classes)
    assert n_params(net) == unet_count(classes)
    if classes == 4:
        assert n_params(net) == REFERENCE["unet"] == pytest.approx(1.81e6, rel=0.01)
    transposed = create_net("ssl4mis_unet", 2, 1, classes, upsampling="transpose")
    assert n_params(transposed) == unet_count(classes, transpose=True)


def test_the_multi_decoder_variants_count_as_the_official_networks():
    def multi(name: str, dims: int, classes: int, ups: list[str], **kw) -> int:
        return n_params(SSL4MISMultiDecoderNet(name, dims, 1, classes, upsampling=ups, **kw))

    mc3d = multi("ssl4mis_vnet", 3, 2, ["transpose", "linear", "nearest"])
    assert mc3d == REFERENCE["mcnet3d_v2"]
    assert multi("ssl4mis_unet", 2, 4, ["linear", "transpose"]) == REFERENCE["mcnet2d_v1"]
    assert (
        multi("ssl4mis_unet", 2, 4, ["linear", "transpose", "nearest"]) == (REFERENCE["mcnet2d_v2"])
    )
    urpc = multi("ssl4mis_unet", 2, 4, ["linear"], deep_supervision=4)
    assert urpc == REFERENCE["urpc"] - _conv(256, 4, 3, 2, norm=False)  # its unused head


# -- shapes, layout, dropout -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ssl4mis_unet", "ssl4mis_vnet"])
@pytest.mark.parametrize("dims", [2, 3])
def test_both_networks_keep_the_spatial_shape_in_2d_and_3d(name: str, dims: int):
    net = create_net(name, dims, 2, 3, channels=SMALL)
    x = torch.randn((2, 2) + (32,) * dims)
    assert net(x).shape == (2, 3) + (32,) * dims
    features = net.encoder(x)  # the first level at full resolution, then halving
    assert [(f.shape[1], f.shape[2]) for f in features] == [(4, 32), (8, 16), (16, 8)]
    assert downsample_factor(name, levels=len(SMALL)) == 4


def test_strides_are_the_downsampling_factors():
    net = create_net("ssl4mis_vnet", 3, 1, 2, channels=SMALL, strides=[2, 1])
    x = torch.randn(1, 1, 16, 16, 16)
    assert [f.shape[2] for f in net.encoder(x)] == [16, 8, 8]
    assert net(x).shape == (1, 2, 16, 16, 16)
    with pytest.raises(ConfigError, match="3 levels need 2 strides"):
        create_net("ssl4mis_unet", 2, 1, 2, channels=SMALL, strides=[2])


def test_the_vnet_stages_are_plain_convolutions_of_1_2_3_3_3():
    net = create_net("ssl4mis_vnet", 3, 1, 2, channels=[2] * 5)
    convs = [
        sum(isinstance(m, nn.Conv3d) and m.kernel_size == (3, 3, 3) for m in level.modules())
        for level in net.encoder.levels
    ]
    assert convs == [1, 2, 3, 3, 3]
    decoder = [sum(isinstance(m, nn.Conv3d) for m in b.modules()) for b in net.decoder.blocks]
    assert decoder == [3, 3, 2, 1]
    assert not any(isinstance(m, nn.PReLU | nn.InstanceNorm3d) for m in net.modules())


def test_a_seeded_forward_is_deterministic():
    def run(seed: int, train: bool) -> torch.Tensor:
        torch.manual_seed(seed)
        net = create_net("ssl4mis_unet", 2, 1, 2, channels=SMALL).train(train)
        return net(torch.randn(2, 1, 32, 32))

    assert torch.equal(run(0, False), run(0, False))
    assert torch.equal(run(0, True), run(0, True))  # dropout draws from the seeded generator
    assert not torch.equal(run(0, False), run(1, False))


@pytest.mark.parametrize("name", ["ssl4mis_unet", "ssl4mis_vnet"])
def test_dropout_acts_in_training_only(name: str):
    torch.manual_seed(0)
    net = create_net(name, 2, 1, 2, channels=SMALL)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert not torch.equal(net.train()(x), net(x))
        net.eval()
        assert torch.equal(net(x), net(x))
    drops = [m for m in net.modules() if isinstance(m, nn.Dropout | nn.Dropout2d)]
    if name == "ssl4mis_unet":  # element-wise, 0.05 ... 0.5 down the encoder levels
        assert [d.p for d in drops] == [0.05, 0.1, 0.2, 0.3, 0.5][-3:]
    else:  # channel dropout p = 0.5 on the bottleneck and before the head (has_dropout)
        assert [(type(d), d.p) for d in drops] == [(nn.Dropout2d, 0.5)] * 2


def test_has_dropout_off_makes_training_deterministic():
    net = create_net("ssl4mis_vnet", 3, 1, 2, channels=SMALL, has_dropout=False).train()
    x = torch.randn(2, 1, 16, 16, 16)
    assert torch.equal(net(x), net(x))


def test_upsampling_option_picks_the_decoder_layers():
    linear = create_net("ssl4mis_unet", 2, 1, 2, channels=SMALL).decoder.ups
    assert [type(m).__name__ for m in linear[0]] == ["Convolution", "Upsample"]  # 1x1, then up
    assert linear[0][1].mode == "bilinear" and linear[0][1].align_corners
    transposed = create_net("ssl4mis_unet", 2, 1, 2, channels=SMALL, upsampling="transpose")
    assert isinstance(transposed.decoder.ups[0].conv, nn.ConvTranspose2d)
    assert transposed.decoder.ups[0].conv.kernel_size == (2, 2)
    nearest = create_net("ssl4mis_vnet", 2, 1, 2, channels=SMALL, upsampling="nearest")
    assert [type(m).__name__ for m in nearest.decoder.ups[0]] == ["Upsample", "Convolution"]
    assert nearest.decoder.ups[0][0].mode == "nearest"  # then a 3x3 conv-BN-ReLU (MC-Net)


# -- options and the run's net settings ------------------------------------------------------
def test_options_and_shared_settings():
    assert list(net_options("ssl4mis_unet")) == [
        "channels",
        "strides",
        "dropout",
        "normalization",
        "encoder_dropout",
        "upsampling",
    ]
    assert list(net_options("ssl4mis_vnet")) == [
        "channels",
        "strides",
        "normalization",
        "has_dropout",
        "upsampling",
    ]
    # the run's norm (default instance) does not apply; the option does
    net = create_net("ssl4mis_vnet", 2, 1, 2, channels=SMALL, norm="instance", dropout=0.3)
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    cfg = NetConfig(name="ssl4mis_unet", channels=SMALL, options={"normalization": "instance"})
    net = net_from_config(cfg, 2, 1, 2)
    assert any(isinstance(m, nn.InstanceNorm2d) for m in net.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    bare = create_net("ssl4mis_vnet", 2, 1, 2, channels=SMALL, normalization="none")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in bare.modules())
    decoder_dropout = create_net("ssl4mis_unet", 2, 1, 2, channels=SMALL, dropout=0.25)
    assert {m.p for m in decoder_dropout.decoder.modules() if isinstance(m, nn.Dropout)} == {0.25}


def test_bad_settings_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="'ssl4mis_vnet' has no option 'encoder_dropout'"):
        create_net("ssl4mis_vnet", 3, 1, 2, encoder_dropout=[0.1])
    with pytest.raises(ConfigError, match="net.options.normalization='layer'"):
        NetConfig(name="ssl4mis_unet", options={"normalization": "layer"})
    with pytest.raises(ConfigError, match="needs one rate per level"):
        create_net("ssl4mis_unet", 2, 1, 2, channels=SMALL, encoder_dropout=[0.1, 0.2])
    with pytest.raises(ConfigError, match="at least 2 levels"):
        create_net("ssl4mis_unet", 2, 1, 2, channels=[8])


# -- the multi-decoder variants -----------------------------------------------------------------
@pytest.mark.parametrize(("name", "dims"), [("ssl4mis_unet", 2), ("ssl4mis_vnet", 3)])
def test_from_net_config_builds_the_multi_decoder_on_the_ssl4mis_encoder(name: str, dims: int):
    cfg = NetConfig(name=name, channels=SMALL)
    ups = ["transpose", "linear", "nearest"]
    net = from_net_config(cfg, dims, 1, 3, upsampling=ups, deep_supervision=4)
    assert isinstance(net, SSL4MISMultiDecoderNet) and net.num_heads == 2  # two decoder stages
    single = create_net(name, dims, 1, 3, channels=SMALL)
    enc = {k: v.shape for k, v in net.encoder.state_dict().items()}
    assert enc == {k: v.shape for k, v in single.encoder.state_dict().items()}
    x = torch.randn((2, 1) + (16,) * dims)
    outputs = net(x)
    assert [o.shape for o in outputs] == [(2, 3) + (16,) * dims] * 6  # 3 decoders x 2 heads
    ups0 = [type(d.ups[0]).__name__ + str(list(d.ups[0].modules())) for d in net.decoders]
    assert "ConvTranspose" in ups0[0] and "linear" in ups0[1] and "nearest" in ups0[2]
    net.eval()
    with torch.no_grad():
        assert torch.equal(net.forward_main(x), net(x)[0])


def test_the_multi_decoder_takes_only_the_encoder_options():
    cfg = NetConfig(name="ssl4mis_unet", channels=SMALL, options={"normalization": "group"})
    with pytest.raises(ConfigError, match="num_groups"):  # 16 groups do not divide 4 channels
        from_net_config(cfg, 2, 1, 2)
    cfg = NetConfig(name="ssl4mis_unet", options={"upsampling": "transpose"})
    with pytest.raises(ConfigError, match=r"net.options \['upsampling'\]: this method sets"):
        from_net_config(cfg, 2, 1, 2)


# -- the encoder hand-off -----------------------------------------------------------------------
def _kpnet(name: str, dims: int = 3) -> KPNet:
    cfg = NetConfig(name=name, channels=SMALL)
    return kpnet_from_net_config(
        cfg, dims, 1, 2, prompts=LearnedPrompts(2, 8), text_dim=8, patch_size=[16] * dims
    )


def test_kpnet_builds_on_the_ssl4mis_encoders():
    net = _kpnet("ssl4mis_vnet").eval()
    assert net.family == "ssl4mis_vnet"
    a, b = net(torch.randn(1, 2, 16, 16, 16))
    assert a.shape == b.shape == (1, 2, 16, 16, 16) and not torch.allclose(a, b)
    kinds = {type(m) for m in net.decoder_interp.modules()}
    assert nn.Upsample in kinds and nn.ConvTranspose3d not in kinds
    assert _kpnet("ssl4mis_unet", 2).family == "ssl4mis_unet"


@pytest.mark.parametrize("name", ["ssl4mis_unet", "ssl4mis_vnet"])
def test_an_encoder_moves_between_every_network_built_on_it(tmp_path, name: str):
    torch.manual_seed(0)
    info = {"in_channels": 1, "spatial_dims": 3}
    cfg = NetConfig(name=name, channels=SMALL)
    source = create_net(name, 3, 1, 2, channels=SMALL)
    with torch.no_grad():
        for p in source.parameters():
            p.normal_()
    export_encoder(source, tmp_path, info)
    targets = {
        "multi": from_net_config(cfg, 3, 1, 2, upsampling=["transpose", "linear"]),
        "kpnet": _kpnet(name),
        "single": create_net(name, 3, 1, 2, channels=SMALL),
    }
    expected = {k: v for k, v in source.state_dict().items() if k.startswith("encoder.levels.")}
    for kind, net in targets.items():
        holder = nn.ModuleDict({"net": net})
        report = init_from(holder, info, tmp_path)
        assert report.loaded == len(expected) and report.missing == 0, kind
        mapped = encoder_map(net)
        assert mapped.family == name
        state = net.state_dict()
        for key, tensor in expected.items():
            assert torch.equal(state[mapped.keys[key.removeprefix("encoder.")]], tensor), kind
    # and back: the multi-decoder's encoder into a fresh single network
    export_encoder(targets["multi"], tmp_path / "back", info)
    fresh = nn.ModuleDict({"net": create_net(name, 3, 1, 2, channels=SMALL)})
    assert init_from(fresh, info, tmp_path / "back").missing == 0


def test_families_do_not_mix(tmp_path):
    info = {"in_channels": 1, "spatial_dims": 2}
    export_encoder(create_net("ssl4mis_vnet", 2, 1, 2, channels=SMALL), tmp_path, info)
    monai_vnet = nn.ModuleDict({"net": create_net("vnet", 2, 1, 2)})
    with pytest.raises(CheckpointError, match="a ssl4mis_vnet encoder; this method's networks"):
        init_from(monai_vnet, info, tmp_path)
    unet = nn.ModuleDict({"net": create_net("ssl4mis_unet", 2, 1, 2, channels=SMALL)})
    with pytest.raises(CheckpointError, match="networks are ssl4mis_unet"):
        init_from(unet, info, tmp_path)
    assert [m.family for _, _, m in encoders_in(unet)] == ["ssl4mis_unet"]


def test_the_encoder_body_is_the_levels_under_their_handoff_names():
    net = create_net("ssl4mis_vnet", 2, 1, 2, channels=SMALL)
    assert isinstance(net, SSL4MISNet)
    body = net.encoder_body()
    keys = {f"levels.{k}" for k in body.state_dict()}
    assert keys == set(encoder_map(net).keys)
    x = torch.randn(1, 1, 16, 16)
    net.eval()
    with torch.no_grad():
        assert torch.equal(body(x), net.encoder(x)[-1])
