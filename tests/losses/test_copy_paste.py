"""BCP's pure pieces: the copy-paste mask, the (bidirectional) mixing, the region-weighted loss
and the pairing of a batch."""

from __future__ import annotations

import math

import pytest
import torch

from medssl.losses.copy_paste import (
    bidirectional_mix,
    cuboid_mask,
    mix,
    mix_loss,
    pair_up,
    region_loss,
)


@pytest.mark.parametrize("shape", [(12, 9, 6), (30, 33)])
def test_mask_is_ones_with_one_zero_box_of_two_thirds_each_side(shape):
    generator = torch.Generator().manual_seed(0)
    expected = [int(s * 2 / 3) for s in shape]
    for _ in range(5):
        mask = cuboid_mask(shape, 2 / 3, generator=generator)
        assert mask.shape == (1, 1, *shape)
        assert set(mask.unique().tolist()) == {0.0, 1.0}
        zeros = (mask[0, 0] == 0).nonzero()
        sides = (zeros.max(0).values - zeros.min(0).values + 1).tolist()
        assert sides == expected  # a box of exactly these sides ...
        assert len(zeros) == math.prod(expected)  # ... and nothing else is zero


def test_mask_position_varies():
    generator = torch.Generator().manual_seed(1)
    masks = {
        tuple(cuboid_mask((32, 32, 32), generator=generator).flatten().tolist()) for _ in range(6)
    }
    assert len(masks) > 1


def test_mix_keeps_the_first_outside_the_box_and_pastes_the_second_into_it():
    mask = cuboid_mask((8, 8), generator=torch.Generator().manual_seed(2))
    a, b = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8) + 2.0
    mixed = mix(a, b, mask)
    outside = mask.bool().expand_as(a)
    assert torch.equal(mixed[outside], a[outside])
    assert torch.equal(mixed[~outside], b[~outside])
    labels = mix(torch.ones(2, 1, 8, 8, dtype=torch.long), torch.full((2, 1, 8, 8), 3), mask)
    assert labels.dtype == torch.long
    assert torch.equal(labels, torch.where(outside, 1, 3))


def test_bidirectional_mix_pastes_unlabelled_into_labelled_and_back():
    mask = cuboid_mask((6, 6, 6), generator=torch.Generator().manual_seed(3))
    x_la, x_lb, x_ua, x_ub = (torch.full((1, 1, 6, 6, 6), float(v)) for v in (1, 2, 3, 4))
    y_la, y_lb, p_ua, p_ub = (torch.full((1, 1, 6, 6, 6), v) for v in (1, 2, 3, 4))
    x_in, y_in, x_out, y_out = bidirectional_mix(
        (x_la, x_lb), (y_la, y_lb), (x_ua, x_ub), (p_ua, p_ub), mask
    )
    m = mask.bool()
    # X_in = x_l_a * M + x_u_a * (1 - M); X_out = x_u_b * M + x_l_b * (1 - M); targets alike.
    assert torch.equal(x_in, torch.where(m, 1.0, 3.0)) and torch.equal(y_in, torch.where(m, 1, 3))
    assert torch.equal(x_out, torch.where(m, 4.0, 2.0))
    assert torch.equal(y_out, torch.where(m, 4, 2))


def _uniform_region_loss(n: int) -> float:
    """``(Dice + CE) / 2`` of zero logits (p = 1/2, K = 2) on ``n`` background voxels, by hand."""
    s = 1e-5
    dice_bg = (2 * 0.5 * n + s) / (0.5 * n + n + s)
    dice_fg = s / (0.5 * n + s)
    return ((1 - (dice_bg + dice_fg) / 2) + math.log(2)) / 2


def test_mix_loss_weights_the_pasted_unlabelled_region_by_half():
    mask = torch.ones(1, 1, 4, 4)
    mask[..., :2, :] = 0
    mask[..., 2, :2] = 0  # 10 pasted voxels, 6 outside: unequal regions expose a wrong weighting
    logits = torch.zeros(1, 2, 4, 4)
    target = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    inside, outside = _uniform_region_loss(10), _uniform_region_loss(6)
    loss = mix_loss(logits, target, mask, weight_outside=1.0, weight_inside=0.5)
    assert loss.item() == pytest.approx(outside + 0.5 * inside, rel=1e-5)
    flipped = mix_loss(logits, target, mask, weight_outside=0.5, weight_inside=1.0)
    assert flipped.item() == pytest.approx(0.5 * outside + inside, rel=1e-5)


def test_region_loss_only_sees_its_region():
    region = torch.zeros(1, 1, 4, 4)
    region[..., :2] = 1
    target = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    logits = torch.zeros(1, 2, 4, 4)
    logits[:, 0, :, :2] = 20.0  # confident and right inside the region
    before = region_loss(logits, target, region)
    logits[:, 1, :, 2:] = 20.0  # confidently wrong outside it
    assert region_loss(logits, target, region).item() == pytest.approx(before.item())
    assert before.item() < 1e-2


def test_pairs_are_batch_halves_or_a_rolled_copy():
    x = torch.arange(4.0).view(4, 1)
    a, b = pair_up(x)
    assert a.flatten().tolist() == [0, 1] and b.flatten().tolist() == [2, 3]
    a, b = pair_up(x[:1])
    assert a.flatten().tolist() == [0] and b.flatten().tolist() == [0]
