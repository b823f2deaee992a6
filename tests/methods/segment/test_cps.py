"""CPS: each network learns from the other's hard labels, gradients stop at the pseudo label."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from medssl.methods.segment.cps import (
    CrossPseudoSupervision,
    SoftmaxEnsemble,
    cross_pseudo_loss,
    pseudo_labels,
)
from tests.conftest import TINY_SEG_CONFIG, train_tiny


def _module(**method_config) -> CrossPseudoSupervision:
    cfg = {
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


def test_pseudo_labels_are_the_detached_argmax():
    logits = torch.tensor([[[0.1, 2.0, -1.0]], [[0.3, 0.0, 4.0]], [[0.2, 1.0, 0.0]]])
    logits = logits.unsqueeze(0).requires_grad_(True)  # (B=1, K=3, 1, 3)
    labels = pseudo_labels(logits)
    assert labels.shape == (1, 1, 3)
    assert labels.dtype == torch.long
    assert labels.flatten().tolist() == [1, 0, 1]
    assert not labels.requires_grad


def test_cps_loss_uses_the_other_networks_label():
    logits1 = torch.tensor([[[0.0], [3.0]]])  # one voxel, argmax 1
    logits2 = torch.tensor([[[2.0], [0.0]]])  # argmax 0
    # CE(net1, y2 = 0) + CE(net2, y1 = 1)
    expected = math.log(1 + math.exp(3.0)) + math.log(1 + math.exp(2.0))
    assert cross_pseudo_loss(logits1, logits2).item() == pytest.approx(expected, rel=1e-6)
    own = math.log(1 + math.exp(-3.0)) + math.log(1 + math.exp(-2.0))  # each on its own label
    assert cross_pseudo_loss(logits1, logits2).item() != pytest.approx(own)


def test_cps_gradients_do_not_flow_into_the_pseudo_labeller():
    torch.manual_seed(0)
    logits1 = torch.randn(2, 3, 4, 4, requires_grad=True)
    logits2 = torch.randn(2, 3, 4, 4, requires_grad=True)
    term = F.cross_entropy(logits1, pseudo_labels(logits2))  # net1 taught by net2's labels
    (grad_on_labeller,) = torch.autograd.grad(term, logits2, allow_unused=True)
    assert grad_on_labeller is None
    # The full loss's gradient on net2's logits is that of net2's own CE term only.
    g1, g2 = torch.autograd.grad(cross_pseudo_loss(logits1, logits2), (logits1, logits2))
    only1 = torch.autograd.grad(F.cross_entropy(logits1, logits2.argmax(1)), logits1)[0]
    only2 = torch.autograd.grad(F.cross_entropy(logits2, logits1.argmax(1)), logits2)[0]
    assert torch.allclose(g1, only1) and torch.allclose(g2, only2)


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
