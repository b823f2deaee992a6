"""UA-MT's predictive entropy, its mask and the masked consistency on hand-made maps."""

from __future__ import annotations

import math

import pytest
import torch

from medssl.losses.uncertainty import masked_consistency, predictive_entropy, uncertainty_mask

LN2 = math.log(2)


def test_entropy_of_the_mean_of_the_passes():
    # T=2 passes, B=1, K=2, 3 voxels: confident/agreeing, confident/disagreeing, uniform.
    probs = torch.tensor(
        [
            [[[0.99, 1.0, 0.5]], [[0.01, 0.0, 0.5]]],
            [[[0.99, 0.0, 0.5]], [[0.01, 1.0, 0.5]]],
        ]
    ).unsqueeze(1)  # (T, B, K, 1, 3)
    u = predictive_entropy(probs.mean(dim=0))
    assert u.shape == (1, 1, 1, 3)
    expected_confident = -(0.99 * math.log(0.99 + 1e-6) + 0.01 * math.log(0.01 + 1e-6))
    assert u[0, 0, 0, 0].item() == pytest.approx(expected_confident, rel=1e-5)
    # Two sure but contradicting passes average to 0.5/0.5: as uncertain as a uniform voxel.
    assert u[0, 0, 0, 1].item() == pytest.approx(LN2, abs=1e-5)
    assert u[0, 0, 0, 2].item() == pytest.approx(LN2, abs=1e-5)


def test_entropy_is_zero_for_one_hot_and_ln_k_for_uniform():
    one_hot = torch.tensor([[[1.0], [0.0], [0.0], [0.0]]])
    assert predictive_entropy(one_hot).item() == pytest.approx(0.0, abs=1e-5)
    assert predictive_entropy(torch.full((1, 4, 1), 0.25)).item() == pytest.approx(
        math.log(4), abs=1e-5
    )


def test_mask_keeps_the_confident_voxel_and_drops_the_uniform_one():
    probs = torch.tensor([[[[0.98, 0.5]], [[0.02, 0.5]]]]).unsqueeze(0).repeat(8, 1, 1, 1, 1)
    mask = uncertainty_mask(probs, 0.75 * LN2)
    assert mask.shape == (1, 1, 1, 2)
    assert mask.dtype == torch.float32
    assert mask.flatten().tolist() == [1.0, 0.0]
    # the threshold is strict: at exactly ln 2 a uniform voxel is still out
    assert uncertainty_mask(torch.full((1, 1, 2, 1), 0.5), LN2 + 1e-3).item() == 1.0


def test_masked_consistency_averages_over_kept_voxels_only():
    student = torch.tensor([[[[0.0, 0.0]], [[0.0, 5.0]]]])  # (B=1, K=2, 1, 2)
    teacher = torch.tensor([[[[math.log(3.0), 0.0]], [[0.0, -5.0]]]])
    mask = torch.tensor([[[[1.0, 0.0]]]])
    # Voxel 0: student softmax (0.5, 0.5), teacher (0.75, 0.25): squared diffs 1/16 each.
    expected = (1 / 16 + 1 / 16) / (2 * 1)
    assert masked_consistency(student, teacher, mask).item() == pytest.approx(expected, rel=1e-5)
    none = masked_consistency(student, teacher, torch.zeros_like(mask))
    assert none.item() == 0.0
