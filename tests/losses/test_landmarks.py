"""Landmark targets and decoders round-trip to sub-pixel accuracy; missing points get no loss."""

from __future__ import annotations

import math

import pytest
import torch

from medssl.losses.landmarks import (
    cell_centres,
    coarse_losses,
    coarse_targets,
    coordinate_loss,
    decode_coarse,
    gaussian_heatmaps,
    heatmap_distribution_loss,
    read_at_cells,
    soft_argmax,
)

NAN = float("nan")


def random_points(n: int, size: tuple[int, int], margin: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.tensor([margin, margin])
    high = torch.tensor(size, dtype=torch.float32) - margin
    return (low + (high - low) * torch.rand(1, n, 2, generator=g)).float()


def test_cell_centres_are_at_half_pixels_along_x_then_y():
    centres = cell_centres((3, 2), stride=4.0)
    assert centres.shape == (2, 3, 2)
    assert centres[:, 0, 0].tolist() == [2.0, 2.0]
    assert centres[:, 2, 1].tolist() == [10.0, 6.0]  # x varies along axis 1, y along axis 2


def test_gaussian_peaks_at_the_point_and_is_zero_for_a_missing_one():
    points = torch.tensor([[[10.5, 3.5], [NAN, NAN]]])
    heat = gaussian_heatmaps(points, (20, 8), sigma=1.5)
    assert heat.shape == (1, 2, 20, 8)
    assert heat[0, 0, 10, 3].item() == pytest.approx(1.0)  # the pixel whose centre is the point
    assert heat[0, 0].flatten().argmax().item() == 10 * 8 + 3
    assert torch.count_nonzero(heat[0, 1]) == 0 and torch.isfinite(heat).all()


@pytest.mark.parametrize("sigma", [1.5, 3.0])
def test_soft_argmax_of_a_gaussian_log_heatmap_recovers_the_point(sigma: float):
    """Encoding a point as a Gaussian and decoding it by soft-argmax is exact to 1/100 px."""
    size = (48, 40)
    points = random_points(16, size, margin=4 * sigma)
    logits = torch.log(gaussian_heatmaps(points, size, sigma).clamp_min(1e-30))
    decoded = soft_argmax(logits)
    assert (decoded - points).abs().max().item() < 0.01


@pytest.mark.parametrize("size", [(4, 4), (32, 24)])
def test_coarse_heatmap_and_offsets_decode_back_to_the_point(size: tuple[int, int]):
    """The coarse target's peak cell plus its offset is the point itself (stride 16)."""
    stride = 16
    points = random_points(12, (size[0] * stride, size[1] * stride), margin=0.1)
    targets = coarse_targets(points, size, stride, sigma=16.0)
    assert targets.heat.shape == (1, 12, *size) and targets.offset.shape == (1, 12, 2, *size)
    assert targets.heat.flatten(2).amax(-1).allclose(torch.ones(1, 12))
    decoded, cells = decode_coarse(targets.heat, targets.offset, stride)
    assert (decoded - points).abs().max().item() < 1e-3
    assert torch.equal(cells, targets.cell)
    # the peak cell is the one that holds the point
    inside = (points / stride).floor().long()
    assert torch.equal(cells, inside[..., 0] * size[1] + inside[..., 1])


def test_offsets_are_trained_around_the_peak_and_only_there():
    points = torch.tensor([[[40.0, 40.0]]])  # the centre of cell (2, 2) at stride 16
    targets = coarse_targets(points, (6, 6), 16, sigma=16.0, offset_threshold=0.6)
    near = targets.near[0, 0]
    assert near[2, 2] and near[1, 2] and near[3, 2] and near[2, 1]  # exp(-1/2) = 0.61 >= 0.4
    assert not near[1, 1]  # exp(-1) = 0.37 < 0.4
    only_peak = coarse_targets(points, (6, 6), 16, sigma=16.0, offset_threshold=0.0)
    assert only_peak.near[0, 0].sum() == 1


def test_read_at_cells_picks_each_landmarks_cell():
    maps = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(1, 2, 3, 2, 2)
    cells = torch.tensor([[3, 0]])
    out = read_at_cells(maps, cells)
    assert out.shape == (1, 2, 3)
    assert out[0, 0].tolist() == maps[0, 0, :, 1, 1].tolist()
    assert out[0, 1].tolist() == maps[0, 1, :, 0, 0].tolist()


def grads_of(loss_fn, shape):
    prediction = torch.randn(*shape, requires_grad=True)
    loss = loss_fn(prediction)
    loss.backward()
    return loss, prediction.grad


def test_a_missing_landmark_gets_no_gradient_from_the_heatmap_losses():
    points = torch.tensor([[[5.5, 6.5], [NAN, NAN], [10.0, 3.0]]])
    for loss_fn in (
        lambda p: heatmap_distribution_loss(p, points, 1.5),
        lambda p: coordinate_loss(soft_argmax(p), points, 16.0),
    ):
        loss, grad = grads_of(loss_fn, (1, 3, 16, 12))
        assert torch.isfinite(loss) and loss > 0
        assert torch.count_nonzero(grad[0, 1]) == 0  # the null landmark: exactly zero
        assert torch.count_nonzero(grad[0, 0]) > 0 and torch.count_nonzero(grad[0, 2]) > 0


def test_a_missing_landmark_gets_no_gradient_from_the_coarse_losses():
    points = torch.tensor([[[20.0, 30.0], [NAN, NAN]]])
    targets = coarse_targets(points, (4, 4), 16, sigma=16.0)
    heat = torch.randn(1, 2, 4, 4, requires_grad=True)
    offset = torch.randn(1, 2, 2, 4, 4, requires_grad=True)
    losses = coarse_losses(heat, offset, targets)
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    assert torch.count_nonzero(heat.grad[0, 1]) == 0
    assert torch.count_nonzero(offset.grad[0, 1]) == 0
    assert torch.count_nonzero(heat.grad[0, 0]) > 0 and torch.count_nonzero(offset.grad[0, 0]) > 0


def test_a_missing_landmark_is_not_read_as_a_point_at_the_origin():
    """With the second landmark missing, the losses equal those of the first alone."""
    first = torch.tensor([[[20.0, 30.0]]])
    both = torch.tensor([[[20.0, 30.0], [NAN, NAN]]])
    heat, offset = torch.randn(1, 2, 4, 4), torch.randn(1, 2, 2, 4, 4)
    alone = coarse_losses(heat[:, :1], offset[:, :1], coarse_targets(first, (4, 4), 16, 16.0))
    with_null = coarse_losses(heat, offset, coarse_targets(both, (4, 4), 16, 16.0))
    for key, value in alone.items():
        assert with_null[key].item() == pytest.approx(value.item())
    logits = torch.randn(1, 2, 16, 16)
    assert heatmap_distribution_loss(logits, both, 2.0).item() == pytest.approx(
        heatmap_distribution_loss(logits[:, :1], first, 2.0).item()
    )


def test_all_missing_gives_zero_loss_not_nan():
    points = torch.full((2, 3, 2), NAN)
    logits = torch.randn(2, 3, 8, 8)
    assert heatmap_distribution_loss(logits, points, 1.0).item() == 0.0
    assert coordinate_loss(soft_argmax(logits), points, 8.0).item() == 0.0
    targets = coarse_targets(points, (2, 2), 16, 16.0)
    losses = coarse_losses(torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2, 2), targets)
    assert all(v.item() == 0.0 for v in losses.values())


def test_the_kl_is_zero_at_the_target_and_positive_elsewhere():
    points = torch.tensor([[[6.0, 6.0]]])
    target = gaussian_heatmaps(points, (12, 12), 2.0)
    exact = heatmap_distribution_loss(torch.log(target.clamp_min(1e-30)), points, 2.0)
    assert exact.item() == pytest.approx(0.0, abs=1e-4)
    shifted = torch.log(gaussian_heatmaps(points + 2.0, (12, 12), 2.0).clamp_min(1e-30))
    assert heatmap_distribution_loss(shifted, points, 2.0).item() > 0.1
    assert math.isfinite(heatmap_distribution_loss(torch.zeros(1, 1, 12, 12), points, 2.0).item())
