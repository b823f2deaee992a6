"""Softmax MSE, sharpening, MC-Net+'s mutual consistency, KP-Net's two terms, on small maps."""

from __future__ import annotations

import math

import pytest
import torch

from medssl.losses.consistency import (
    branch_distinctiveness,
    decoder_consistency,
    mutual_consistency,
    sharpen,
    softmax_mse,
)


def _one_hot(labels: list[int], k: int = 3) -> torch.Tensor:
    """(1, K, N) one-hot probabilities of the voxel labels."""
    return torch.nn.functional.one_hot(torch.tensor(labels), k).T.float().unsqueeze(0)


def test_softmax_mse_is_zero_for_equal_logits_and_ignores_a_shift_per_voxel():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4)
    assert torch.equal(softmax_mse(logits, logits), torch.zeros_like(logits))
    shifted = logits + torch.randn(2, 1, 4, 4)  # softmax is invariant to a per-voxel constant
    assert torch.allclose(softmax_mse(logits, shifted), torch.zeros_like(logits), atol=1e-12)


def test_softmax_mse_by_hand_and_symmetric():
    student = torch.tensor([[[0.0], [0.0]]])  # softmax (1/2, 1/2)
    teacher = torch.tensor([[[math.log(3.0)], [0.0]]])  # softmax (3/4, 1/4)
    dist = softmax_mse(student, teacher)
    assert dist.shape == (1, 2, 1)
    assert dist.flatten().tolist() == pytest.approx([1 / 16, 1 / 16])
    assert torch.equal(dist, softmax_mse(teacher, student))


def test_sharpen_at_temperature_one_is_the_identity():
    probs = torch.softmax(torch.randn(2, 4, 3, 3), dim=1)
    assert torch.allclose(sharpen(probs, 1.0), probs, atol=1e-7)


def test_sharpen_by_hand_and_towards_one_hot_as_the_temperature_falls():
    probs = torch.tensor([[[0.6], [0.3], [0.1]]])  # (B=1, K=3, 1 voxel)
    squared = torch.tensor([0.36, 0.09, 0.01])
    assert torch.allclose(sharpen(probs, 0.5).flatten(), squared / squared.sum())
    peaks = [sharpen(probs, t)[0, 0, 0].item() for t in (1.0, 0.5, 0.1, 0.02)]
    assert peaks == sorted(peaks) and peaks[-1] == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(sharpen(probs, 0.02), _one_hot([0]), atol=1e-6)


def test_sharpen_keeps_a_distribution_and_its_argmax():
    probs = torch.softmax(torch.randn(2, 4, 5), dim=1)
    sharp = sharpen(probs, 0.1)
    assert torch.allclose(sharp.sum(dim=1), torch.ones(2, 5), atol=1e-6)
    assert torch.equal(sharp.argmax(dim=1), probs.argmax(dim=1))
    one_hot = _one_hot([2, 0, 1])
    assert torch.allclose(sharpen(one_hot, 0.1), one_hot)  # a one-hot map is its own sharpening


def test_agreeing_one_hot_decoders_have_zero_mutual_consistency():
    p = _one_hot([0, 2, 1, 1])
    assert mutual_consistency([p, p.clone(), p.clone()], temperature=0.1) == 0


def test_mutual_consistency_sums_the_ordered_pairs_against_sharpened_targets():
    p1 = torch.tensor([[[0.8], [0.2]]])  # (B=1, K=2, N=1)
    p2 = torch.tensor([[[0.4], [0.6]]])
    value = mutual_consistency([p1, p2], temperature=0.1)

    def sharp(a: float) -> float:
        return a**10 / (a**10 + (1 - a) ** 10)  # the official two-class sharpening

    s1, s2 = sharp(0.8), sharp(0.4)
    expected = ((0.8 - s2) ** 2 + (0.2 - (1 - s2)) ** 2) / 2  # p1 against sharpen(p2)
    expected += ((0.4 - s1) ** 2 + (0.6 - (1 - s1)) ** 2) / 2  # p2 against sharpen(p1)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    assert value > 0
    # Disagreeing one-hot decoders are penalised too.
    assert mutual_consistency([_one_hot([0, 1]), _one_hot([0, 2])], 0.1) > 0


def test_no_gradient_flows_through_the_sharpened_targets():
    torch.manual_seed(0)
    probs = [torch.softmax(torch.randn(1, 3, 5), dim=1).requires_grad_() for _ in range(3)]
    mutual_consistency(probs, 0.1).backward()
    targets = [sharpen(p.detach(), 0.1) for p in probs]
    n = probs[0].numel()
    for i, p in enumerate(probs):  # d/dp_i of sum_{j != i} mean((p_i - t_j)^2), t_j constant
        expected = sum(2 * (p.detach() - t) / n for j, t in enumerate(targets) if j != i)
        assert torch.allclose(p.grad, expected, atol=1e-6)
    # The official script's behaviour (gradients through the targets) is an option.
    live = [p.detach().clone().requires_grad_() for p in probs]
    mutual_consistency(live, 0.1, detach_targets=False).backward()
    assert not torch.allclose(live[0].grad, probs[0].grad)


def test_decoder_consistency_is_the_mean_squared_softmax_gap():
    p1 = torch.tensor([[[0.7], [0.3]]])  # (B=1, K=2, 1 voxel)
    p2 = torch.tensor([[[0.4], [0.6]]])
    assert decoder_consistency(p1, p2).item() == pytest.approx(0.09)
    assert decoder_consistency(p1, p1) == 0
    assert decoder_consistency(p1, p2) == decoder_consistency(p2, p1)


def test_distinctiveness_pulls_a_branch_to_its_own_sharpened_prediction():
    probs = torch.tensor([[[0.8, 0.5], [0.2, 0.5]]], requires_grad=True)  # two voxels
    sharp = 0.64 / (0.64 + 0.04)  # T = 0.5: p^2 / sum p^2 at the first voxel
    gap = 0.8 - sharp
    loss = branch_distinctiveness(probs, temperature=0.5)
    assert loss.item() == pytest.approx(2 * gap**2 / 4)  # the tied voxel is already distinct
    loss.backward()  # the sharpened target is detached: d/dp = 2 (p - s) / n
    expected = torch.tensor([[[2 * gap / 4, 0.0], [-2 * gap / 4, 0.0]]])
    assert torch.allclose(probs.grad, expected, atol=1e-6)
