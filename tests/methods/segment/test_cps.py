"""CPS: two differently initialised networks in one optimiser, the loss of a step, ensemble
inference, training (the cross pseudo loss itself: tests/losses/test_pseudo_label.py)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from medssl.losses.pseudo_label import cross_pseudo_loss
from medssl.methods.segment.cps import CrossPseudoSupervision, SoftmaxEnsemble
from tests.conftest import TINY_SEG_CONFIG, train_tiny


def _module(**method_config) -> CrossPseudoSupervision:
    cfg = {
        "task": "segmentation",
        "method": "cps",
        "net": {"channels": [8, 16], "num_res_units": 0},
        "data": {"patch_size": [16, 16]},
        "train": {"max_steps": 10},
        "method_config": method_config,
    }
    return CrossPseudoSupervision(cfg, {"num_classes": 3, "spatial_dims": 2, "in_channels": 1})


def _batch() -> dict:
    torch.manual_seed(0)
    return {
        "labeled": {
            "image": torch.randn(2, 1, 16, 16),
            "label": torch.randint(0, 3, (2, 1, 16, 16)),
        },
        "unlabeled": {"image": torch.randn(2, 1, 16, 16)},
    }


@pytest.mark.parametrize("init", ["kaiming_xavier", "default"])
def test_the_two_networks_start_different_and_share_the_optimiser(init: str):
    module = _module(init=init)
    p1, p2 = list(module.net.parameters()), list(module.net2.parameters())
    assert len(p1) == len(p2)
    assert any(not torch.equal(a, b) for a, b in zip(p1, p2, strict=True))
    optimiser = module.configure_optimizers()["optimizer"]
    in_optimiser = {id(p) for group in optimiser.param_groups for p in group["params"]}
    assert {id(p) for p in p1 + p2} == in_optimiser


@pytest.mark.parametrize("pseudo_on", ["all", "unlabeled"])
def test_training_losses_follow_the_definition(pseudo_on: str):
    module = _module(pseudo_on=pseudo_on)
    batch = _batch()
    losses = module.training_losses(batch)
    assert all(torch.isfinite(v) for v in losses.values())
    images = torch.cat([batch["labeled"]["image"], batch["unlabeled"]["image"]])
    if pseudo_on == "unlabeled":
        images = batch["unlabeled"]["image"]
    with torch.no_grad():  # instance norm: per-image, so the slice gives the same logits
        expected = cross_pseudo_loss(module.net(images), module.net2(images))
    assert losses["cps"].item() == pytest.approx(expected.item(), rel=1e-4)
    total = losses["supervised1"] + losses["supervised2"] + losses["cps_weight"] * losses["cps"]
    assert losses["loss"].item() == pytest.approx(total.item(), rel=1e-5)
    losses["loss"].backward()
    assert all(p.grad is not None for p in module.net2.parameters())


def test_inference_is_net1_or_the_softmax_ensemble():
    single = _module()
    assert single.inference_net() is single.net
    module = _module(evaluate="ensemble")
    ensemble = module.inference_net()
    assert isinstance(ensemble, SoftmaxEnsemble)
    x = torch.randn(1, 1, 16, 16)
    with torch.no_grad():
        out = ensemble(x)
        mean = (torch.softmax(module.net(x), 1) + torch.softmax(module.net2(x), 1)) / 2
    assert torch.allclose(out.exp(), mean, atol=1e-6)
    assert torch.allclose(out.exp().sum(1), torch.ones(1, 16, 16), atol=1e-5)
    assert torch.equal(out.argmax(1), mean.argmax(1))
    # Built per call: the ensemble adds no second copy of the weights to the checkpoint.
    assert not any(k.startswith("nets.") for k in module.state_dict())


@pytest.mark.parametrize("dims", [3, 2])
def test_cps_trains_a_few_steps(seg_phantom: Path, tmp_path: Path, dims: int):
    # 3D validates with the ensemble (one volume); 2D skips validation to stay fast.
    data = {**TINY_SEG_CONFIG["data"], "spatial_dims": dims}
    method_config = {}
    if dims == 2:
        data["val_cases"] = 0
    else:
        method_config["evaluate"] = "ensemble"
    config = {**TINY_SEG_CONFIG, "data": data, "method_config": method_config}
    run = train_tiny(seg_phantom, tmp_path / "run", 2, method="cps", config=config)
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    train_rows = [r for r in rows if r.get("train/loss")]
    assert len(train_rows) == 2
    for row in train_rows:
        for key in ("loss", "supervised1", "supervised2", "cps", "pseudo_agreement"):
            assert math.isfinite(float(row[f"train/{key}"])), key
    if dims == 3:
        dice = [float(r["val/dice"]) for r in rows if r.get("val/dice")]
        assert dice and all(0.0 <= d <= 1.0 for d in dice)
