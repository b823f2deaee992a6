"""MC-Net+: the three-decoder network, its official 2D defaults, training (the mutual-consistency
loss itself: tests/losses/test_consistency.py)."""

from __future__ import annotations

import copy
import csv
import math

import pytest
import torch

from medssl.methods.segment.mcnet_plus import OFFICIAL_2D, MCNetPlus
from tests.conftest import TINY_SEG_CONFIG, train_tiny


def _method(dims: int, **net) -> MCNetPlus:
    cfg = {
        "task": "segmentation",
        "net": {**TINY_SEG_CONFIG["net"], **net},
        "data": {"patch_size": [32] * dims},
    }
    return MCNetPlus(cfg, {"num_classes": 3, "spatial_dims": dims, "in_channels": 1})


@pytest.mark.parametrize("dims", [2, 3])
def test_the_network_has_three_differently_upsampled_decoders(dims: int):
    method = _method(dims)
    x = torch.randn((2, 1) + (32,) * dims)
    outputs = method.net(x)
    assert len(outputs) == 3 and all(o.shape == (2, 3) + (32,) * dims for o in outputs)
    ups = [type(d.ups[0]).__name__ + str(list(d.ups[0].children())) for d in method.net.decoders]
    assert "ConvTranspose" in ups[0] and "linear" in ups[1] and "nearest" in ups[2]
    method.eval()
    with torch.no_grad():  # evaluation: the first (transposed-convolution) decoder
        assert torch.allclose(method.inference_net()(x), method.net(x)[0])


@pytest.mark.parametrize("channels", [[16, 32, 64, 128], [32, 64, 128, 256, 320]])
def test_a_step_at_the_profile_widths_without_an_unlabelled_stream(channels: list[int]):
    method = _method(2, channels=channels, num_res_units=1)
    batch = {
        "labeled": {
            "image": torch.randn(2, 1, 32, 32),
            "label": torch.randint(0, 3, (2, 1, 32, 32)),
        }
    }
    losses = method.training_losses(batch)
    losses["loss"].backward()
    assert all(math.isfinite(v.item()) for v in losses.values())
    assert losses["consistency"] > 0  # the consistency needs no unlabelled images


@pytest.mark.parametrize("dims", [3, 2])
def test_mcnet_plus_trains_a_few_steps(seg_phantom, tmp_path, dims: int):
    cfg = copy.deepcopy(TINY_SEG_CONFIG)
    cfg["data"]["spatial_dims"] = dims
    cfg["train"].update(sw_batch_size=16, sw_overlap=0.0)  # a quick validation pass
    run = train_tiny(seg_phantom, tmp_path / "run", 2, method="mcnet_plus", config=cfg)
    rows = [r for r in csv.DictReader(open(run / "metrics.csv")) if r.get("train/loss")]
    assert rows
    for row in rows:
        assert all(math.isfinite(float(row[k])) for k in ("train/loss", "train/consistency"))
    assert float(rows[-1]["train/consistency"]) > 0


def test_a_2d_network_gets_the_official_2d_defaults(seg_phantom):
    from medssl.data.layouts import load_dataset
    from medssl.engine.profiles import resolve_config

    def resolve(dims: int, method_config: dict) -> dict:
        file_values = {"data": {"spatial_dims": dims}, "method_config": method_config}
        return resolve_config(
            task="segmentation",
            method_cls=MCNetPlus,
            dataset=load_dataset(seg_phantom),
            profile="cpu",
            file_values=file_values,
            flag_values={},
        ).method_config

    assert resolve(2, {}) == OFFICIAL_2D  # train_mcnet_2d.py: 2 decoders, 0.1 over all steps
    assert resolve(2, {"consistency": 0.5})["consistency"] == 0.5  # the user's value wins
    assert resolve(3, {}) == {}  # 3D keeps the class defaults (train_mcnet_3d.py)
    method = MCNetPlus(
        {"task": "segmentation", "net": TINY_SEG_CONFIG["net"], "method_config": resolve(2, {})},
        {"num_classes": 3, "spatial_dims": 2, "in_channels": 1},
    )
    assert len(method.net(torch.randn(1, 1, 32, 32))) == 2 and method.hp.consistency == 0.1


def _tiny_batch(dims: int, side: int = 16) -> dict:
    image = torch.randn((2, 1) + (side,) * dims)
    label = torch.randint(0, 3, (2, 1) + (side,) * dims)
    return {"labeled": {"image": image, "label": label}, "unlabeled": {"image": image.flip(0)}}


@pytest.mark.parametrize(
    ("name", "dims", "dropout"), [("ssl4mis_unet", 2, 0), ("ssl4mis_vnet", 3, 0.5)]
)
def test_a_step_on_the_papers_networks(name: str, dims: int, dropout: float):
    """mcnet2d_v2 / mcnet3d_v2 on their own encoders; the extra dropout only on the V-Net (the
    UNet's encoder carries SSL4MIS's own)."""
    from medssl.nets.ssl4mis import SSL4MISMultiDecoderNet

    method = _method(dims, name=name, channels=[4, 8, 16])
    net = method.net
    assert isinstance(net, SSL4MISMultiDecoderNet) and net.family == name
    assert len(net.decoders) == 3
    assert getattr(net.encoder.drop, "p", 0) == dropout
    losses = method.training_losses(_tiny_batch(dims))
    losses["loss"].backward()
    assert all(math.isfinite(v.item()) for v in losses.values()) and losses["consistency"] > 0
    assert all(p.grad is not None for p in net.encoder.parameters())


def test_the_dropout_setting_wins_on_the_ssl4mis_unet():
    cfg = {
        "task": "segmentation",
        "net": {"name": "ssl4mis_unet", "channels": [4, 8, 16]},
        "method_config": {"dropout": 0.2},
    }
    method = MCNetPlus(cfg, {"num_classes": 3, "spatial_dims": 2, "in_channels": 1})
    assert type(method.net.encoder.drop) is torch.nn.Dropout and method.net.encoder.drop.p == 0.2
