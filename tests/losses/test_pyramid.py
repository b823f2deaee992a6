"""URPC: the uncertainty-rectified pyramid consistency on hand-made maps."""

from __future__ import annotations

import math

import pytest
import torch

from medssl.losses.pyramid import pyramid_consistency, rectified_consistency, scale_uncertainty


def test_agreeing_scales_have_zero_pyramid_consistency():
    logits = torch.randn(2, 3, 4, 4)
    assert pyramid_consistency([logits, logits.clone(), logits.clone()]).item() == pytest.approx(
        0.0, abs=1e-7
    )
    assert pyramid_consistency([logits, logits + torch.randn_like(logits)]) > 0


def test_the_order_of_the_scales_does_not_matter():
    torch.manual_seed(0)
    scales = [torch.randn(1, 3, 4, 4) for _ in range(3)]
    forward = pyramid_consistency(scales)
    assert pyramid_consistency(scales[::-1]).item() == pytest.approx(forward.item(), rel=1e-6)


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
