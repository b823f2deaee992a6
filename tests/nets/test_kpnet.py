"""KP-Net's network: prompt sentences and encoders, the Token Joint Gate, fusion and decoders."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medssl.errors import ConfigError
from medssl.nets.kpnet import KPNet, TokenJointGate
from medssl.nets.multi_decoder import level_strides
from medssl.nets.text_prompts import (
    ENCODERS,
    FrozenPrompts,
    LearnedPrompts,
    build_prompts,
    class_prompts,
    resolve_text_encoder,
)
from tests.nets.conv_outputs import conv_output_shapes


def _net(dims: int, prompt_levels: int = 2, net_name: str = "unet") -> KPNet:
    torch.manual_seed(0)
    patch = [16] * dims
    prompts = LearnedPrompts(3, 8)
    net = KPNet(
        dims,
        1,
        3,
        prompts,
        8,
        patch,
        channels=[4, 8, 16],
        strides=level_strides(net_name, [4, 8, 16]),
        num_res_units=0,
        prompt_levels=prompt_levels,
    )
    return net.eval()


def test_class_prompts_follow_the_modality():
    names = ["background", "left_atrium"]
    assert class_prompts(names, {"0": "CT"}) == [
        "A computerized tomography of a background",
        "A computerized tomography of a left atrium",
    ]
    assert (
        class_prompts(names, {"0": "LGE-MRI"})[1] == "A magnetic resonance image of a left atrium"
    )
    assert class_prompts(names, {"0": "T2"})[0].startswith("A magnetic resonance image")
    assert class_prompts(names, {"0": "R", "1": "G"})[1] == "A medical image of a left atrium"


def test_text_encoder_resolution():
    assert resolve_text_encoder("learned") == "learned"
    installed = [n for n, enc in ENCODERS.items() if enc.available()]
    assert resolve_text_encoder("auto") == (installed[0] if installed else "learned")
    with pytest.raises(ConfigError, match="unknown"):
        resolve_text_encoder("bert-from-the-hub")


def test_a_missing_encoder_is_an_error_not_a_fallback(monkeypatch):
    from medssl.nets.text_prompts import TextEncoder

    fake = TextEncoder("medssl_no_such_package", 4, lambda s: torch.zeros(len(s), 4))
    monkeypatch.setitem(ENCODERS, "fake", fake)
    with pytest.raises(ConfigError, match="not installed"):
        resolve_text_encoder("fake")


def test_frozen_embeddings_come_back_from_a_checkpoint_without_the_encoder(monkeypatch):
    from medssl.nets.text_prompts import TextEncoder

    table = torch.arange(12.0).reshape(3, 4)
    monkeypatch.setitem(ENCODERS, "here", TextEncoder("torch", 4, lambda s: table[: len(s)]))
    monkeypatch.setitem(ENCODERS, "gone", TextEncoder("medssl_no_such_package", 4, None))
    trained = build_prompts("here", ["a", "b", "c"])
    assert trained.ready and torch.equal(trained.embeddings, table)
    assert not trained.embeddings.requires_grad and trained.offset.requires_grad

    elsewhere = build_prompts("gone", ["a", "b", "c"])  # same shapes, no encoder to run
    assert isinstance(elsewhere, FrozenPrompts) and not elsewhere.ready
    elsewhere.load_state_dict(trained.state_dict())
    assert elsewhere.ready and torch.equal(elsewhere(), trained())


def test_wordllama_embeds_the_prompts_offline():
    pytest.importorskip("wordllama")
    sentences = class_prompts(["background", "liver", "kidney"], {"0": "CT"})
    prompts = build_prompts("wordllama", sentences)
    emb = prompts.embeddings
    assert emb.shape == (3, 256)
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-4)
    assert (emb[1] - emb[2]).abs().max() > 1e-3  # different organs, different embeddings


@pytest.mark.parametrize("dims", [2, 3])
def test_token_joint_gate_shapes(dims: int):
    torch.manual_seed(0)
    grid = [4] * dims
    gate = TokenJointGate(dims, num_classes=3, text_dim=8, channels=16, grid=grid, norm="instance")
    text = torch.randn(3, 8)
    visual = torch.randn(2, 16, *grid)
    t = gate.text_map(text, visual)
    assert t.shape == (2, 16, *grid)
    psi = gate.gate(visual, t)
    assert psi.shape == (2, 1, *grid) and psi.min() >= 0 and psi.max() <= 1
    assert gate(text, visual).shape == (2, 16, *grid)
    assert gate.to_tokens.out_features == 4**dims  # one value per bottleneck token
    bigger = torch.randn(1, 16, *[6] * dims)  # another input size: the text map is resized
    assert gate(text, bigger).shape == (1, 16, *[6] * dims)


@pytest.mark.parametrize("dims", [2, 3])
def test_both_decoders_differ_in_upsampling(dims: int):
    net = _net(dims)
    kinds = {
        name: {type(m) for m in getattr(net, name).modules()}
        for name in ("decoder_deconv", "decoder_interp")
    }
    transposed = nn.ConvTranspose3d if dims == 3 else nn.ConvTranspose2d
    assert transposed in kinds["decoder_deconv"] and nn.Upsample not in kinds["decoder_deconv"]
    assert transposed not in kinds["decoder_interp"] and nn.Upsample in kinds["decoder_interp"]
    ups = [m for m in net.decoder_interp.modules() if isinstance(m, nn.Upsample)]
    assert {m.mode for m in ups} == {"trilinear" if dims == 3 else "bilinear"}
    x = torch.randn(2, 2, *[16] * dims)
    a, b = net(x)
    assert a.shape == b.shape == (2, 3, *[16] * dims)
    assert (a - b).abs().mean() > 1e-4


@pytest.mark.parametrize(("net_name", "sides"), [("unet", [8, 4, 4]), ("vnet", [16, 8, 4])])
def test_levels_follow_the_run_network_and_the_output_is_full_size(net_name, sides):
    """unet: MONAI's levels (first one strided, a last stage back to full size); vnet: V-Net's."""
    net = _net(2, net_name=net_name)
    x = torch.randn(1, 2, 16, 16)
    with torch.no_grad():
        assert [f.shape[2] for f in net.features(x)] == sides
        assert all(o.shape == (1, 3, 16, 16) for o in net(x))
    assert len(net.decoder_deconv.ups) == 2 + (net_name == "unet")


def test_the_stage_back_to_full_resolution_upsamples_then_convolves():
    """Strided first level: the last upsampling has no skip but is followed by a conv block, as
    every stage of the official decoder (whose last block runs at full resolution); the
    interpolating decoder's upsampling has its own 3x3 convolution first (official up_type 1)."""
    net = _net(2)
    x = torch.randn(1, 2, 16, 16)
    decoders = nn.ModuleList([net.decoder_deconv, net.decoder_interp])  # in forward's order
    widths = [shape[1] for shape in conv_output_shapes(decoders, lambda: net(x)) if shape[2] == 16]
    assert widths == [4, 3, 4, 4, 3]  # deconv: block, head; interp: upsampling conv, block, head


def test_edge_prompt_joins_only_the_deepest_scales():
    net = _net(3, prompt_levels=2)
    x = torch.randn(1, 2, 16, 16, 16)
    changed = x.clone()
    changed[:, 1] = torch.randn(16, 16, 16)  # a different edge prompt, the same image
    with torch.no_grad():
        before, after = net.features(x), net.features(changed)
    assert torch.equal(before[0], after[0])  # finest level: image encoder only
    assert not torch.allclose(before[1], after[1])  # the two deepest scales carry the prompt
    assert not torch.allclose(before[2], after[2])


def test_the_net_refuses_an_image_without_its_prompt():
    with pytest.raises(ValueError, match="derived_channels"):
        _net(2)(torch.randn(1, 1, 16, 16))
