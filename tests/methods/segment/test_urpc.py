"""URPC: the uncertainty-rectified pyramid consistency on hand-made maps, the deep-supervision
pyramid, and training in 2D and 3D."""

from __future__ import annotations

import copy
import csv
import math

import pytest
import torch

from medssl.methods.segment.urpc import (
    URPC,
    pyramid_consistency,
    rectified_consistency,
    scale_uncertainty,
)
from tests.conftest import TINY_SEG_CONFIG, train_tiny


def test_agreeing_scales_have_zero_pyramid_consistency():
    logits = torch.randn(2, 3, 4, 4)
    assert pyramid_consistency([logits, logits.clone(), logits.clone()]).item() == pytest.approx(
        0.0, abs=1e-7
    )
    assert pyramid_consistency([logits, logits + torch.randn_like(logits)]) > 0


def test_the_uncertainty_is_ssl4mis_kl_of_the_pyramid_mean_to_each_scale():
    p_s = torch.tensor([[[0.9], [0.1]]])  # (B=1, K=2, N=1)
    p_mean = torch.tensor([[[0.6], [0.4]]])
    expected = 0.6 * math.log(0.6 / 0.9) + 0.4 * math.log(0.4 / 0.1)
    assert scale_uncertainty(p_s.log(), p_mean.log()).item() == pytest.approx(expected, rel=1e-5)
    kl = torch.nn.KLDivLoss(reduction="none")(p_s.log(), p_mean).sum(dim=1, keepdim=True)
    assert torch.allclose(scale_uncertainty(p_s.log(), p_mean.log()), kl)


def test_an_underflowing_softmax_leaves_the_gradient_finite():
    # A logit gap of 200 makes softmax probabilities exactly 0 in float32; ``xlogy(p, p)``'s
    # gradient there is -inf, and even a zero consistency weight then gives NaN weights.
    confident = torch.tensor([[[200.0], [0.0], [-10.0]]], requires_grad=True)  # (1, K=3, 1)
    other = torch.tensor([[[150.0], [0.0], [-300.0]]], requires_grad=True)
    assert torch.softmax(confident, 1).min() == 0 and torch.softmax(other, 1).min() == 0
    for weight in (0.0, 0.1):
        loss = weight * pyramid_consistency([confident, other])
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(confident.grad).all()
        assert torch.isfinite(other.grad).all()


def test_the_rectification_weight_lowers_where_a_scale_disagrees():
    # Two voxels: the scales agree on the first, scale 2 disagrees on the second.
    agree = torch.tensor([0.9, 0.1])
    s1 = torch.stack([agree, torch.tensor([0.9, 0.1])], dim=-1).unsqueeze(0)  # (1, 2, 2)
    s2 = torch.stack([agree, torch.tensor([0.1, 0.9])], dim=-1).unsqueeze(0)
    p_mean = (s1 + s2) / 2
    uncertainty = scale_uncertainty(s2.log(), p_mean.log())[0, 0]
    weight = torch.exp(-uncertainty)
    assert weight[0] == pytest.approx(1.0) and weight[1] < 0.8  # exp(-KL) < 1 where it disagrees
    distance = (p_mean - s2) ** 2
    rectified = rectified_consistency(s2.log(), p_mean.log()) - uncertainty.mean()
    assert rectified < distance.mean()  # the disagreeing voxel counts less than unweighted
    expected = (distance * weight).mean() / (weight.mean() + 1e-8)
    assert rectified.item() == pytest.approx(expected.item(), rel=1e-5)


def _method(dims: int, channels: list[int], **hp) -> URPC:
    cfg = {
        "net": {"channels": channels, "num_res_units": 0},
        "data": {"patch_size": [32] * dims},
        "method_config": hp,
    }
    return URPC(cfg, {"num_classes": 3, "spatial_dims": dims, "in_channels": 1})


@pytest.mark.parametrize(
    ("channels", "scales"), [([8, 16], 2), ([8, 16, 32], 3), ([4, 4, 4, 4, 4, 4], 4)]
)
def test_the_pyramid_has_four_scales_or_one_per_decoder_stage(channels: list[int], scales: int):
    """A net of L levels whose first is strided (the default) decodes in L stages, the last one
    back to full resolution."""
    method = _method(2, channels)
    x = torch.randn(2, 1, 64, 64)
    outputs = method.net(x)
    assert [o.shape for o in outputs] == [(2, 3, 64, 64)] * scales
    perturbs = [p.kind for p in method.net.decoders[0].perturb]
    assert perturbs == ["none", "noise", "feature_dropout", "dropout"][:scales]
    method.eval()
    with torch.no_grad():  # test time: the full-resolution output
        assert torch.allclose(method.inference_net()(x), method.net(x)[0])


@pytest.mark.parametrize("channels", [[16, 32, 64, 128], [32, 64, 128, 256, 320]])
def test_a_step_at_the_profile_widths(channels: list[int]):
    method = _method(2, channels)
    labeled = {"image": torch.randn(2, 1, 32, 32), "label": torch.randint(0, 3, (2, 1, 32, 32))}
    losses = method.training_losses({"labeled": labeled, "unlabeled": {"image": labeled["image"]}})
    losses["loss"].backward()
    assert all(math.isfinite(v.item()) for v in losses.values())
    alone = method.training_losses({"labeled": labeled})  # no unlabelled pool: no consistency
    assert alone["consistency"] == 0 and math.isfinite(alone["loss"].item())


@pytest.mark.parametrize("dims", [3, 2])
def test_urpc_trains_a_few_steps(seg_phantom, tmp_path, dims: int):
    cfg = copy.deepcopy(TINY_SEG_CONFIG)
    cfg["data"]["spatial_dims"] = dims
    cfg["train"].update(sw_batch_size=16, sw_overlap=0.0)  # a quick validation pass
    run = train_tiny(seg_phantom, tmp_path / "run", 2, method="urpc", config=cfg)
    rows = [r for r in csv.DictReader(open(run / "metrics.csv")) if r.get("train/loss")]
    assert rows
    for row in rows:
        assert all(math.isfinite(float(row[k])) for k in ("train/loss", "train/consistency"))
    assert float(rows[-1]["train/consistency"]) > 0
