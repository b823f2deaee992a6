"""Landmark targets, decoders and losses: Gaussian heatmaps, soft-argmax, coarse heatmap + offsets.

Pure functions on tensors, usable without the engine. Conventions shared by all of them:

* images and maps are ``(B, C, X, Y)``: axis 2 is x (image columns), axis 3 is y (rows), as
  MONAI loads 2D files; a landmark is ``[x, y]`` in continuous pixel coordinates, where pixel
  ``(i, j)`` covers ``[i, i + 1) x [j, j + 1)`` and has its centre at ``(i + 0.5, j + 0.5)``;
* ``points`` are ``(B, L, 2)`` with NaN rows for missing landmarks. A missing landmark is masked
  out of every loss (its targets are zero, its weight is zero, it is never in a denominator):
  it contributes no gradient at all, and is never read as a point at the origin;
* a coarse map of stride ``s`` has cell ``(i, j)`` centred at ``((i + 0.5) s, (j + 0.5) s)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "CoarseTargets",
    "cell_centres",
    "coarse_losses",
    "coarse_targets",
    "coordinate_loss",
    "decode_coarse",
    "gaussian_heatmaps",
    "heatmap_distribution_loss",
    "present",
    "read_at_cells",
    "soft_argmax",
]


def present(points: torch.Tensor) -> torch.Tensor:
    """``(B, L)`` bool: the landmarks whose coordinates are all finite."""
    return torch.isfinite(points).all(dim=-1)


def _filled(points: torch.Tensor) -> torch.Tensor:
    """``points`` with missing rows set to 0, so that arithmetic on them stays finite (their
    results are masked out; 0 * NaN would be NaN and poison the gradient)."""
    return torch.where(present(points)[..., None], points, torch.zeros_like(points))


def cell_centres(size: Sequence[int], stride: float = 1.0, device=None) -> torch.Tensor:
    """``(2, X, Y)``: the continuous ``[x, y]`` coordinates of every cell centre of a map of
    ``size`` cells at ``stride`` pixels per cell."""
    axes = [(torch.arange(n, device=device, dtype=torch.float32) + 0.5) * stride for n in size]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"))


def gaussian_heatmaps(
    points: torch.Tensor, size: Sequence[int], sigma: float, stride: float = 1.0
) -> torch.Tensor:
    """``(B, L, X, Y)`` Gaussians ``exp(-d^2 / (2 sigma^2))`` around each point (``d`` and
    ``sigma`` in pixels), sampled at the cell centres of a map of ``size`` cells at ``stride``;
    zero for missing points."""
    centres = cell_centres(size, stride, points.device)  # (2, X, Y)
    diff = _filled(points)[..., None, None] - centres  # (B, L, 2, X, Y)
    heat = torch.exp(-(diff**2).sum(dim=2) / (2.0 * sigma**2))
    return heat * present(points)[..., None, None]


def soft_argmax(logits: torch.Tensor) -> torch.Tensor:
    """``(B, L, 2)``: the expected ``[x, y]`` under the spatial softmax of ``(B, L, X, Y)``
    logits (the integral regression of Sun et al. 2018, DSNT of Nibali et al. 2018)."""
    b, n, *size = logits.shape
    prob = torch.softmax(logits.float().flatten(2), dim=-1)  # (B, L, X*Y)
    centres = cell_centres(size, 1.0, logits.device).flatten(1)  # (2, X*Y)
    return torch.einsum("blk,ck->blc", prob, centres)


def heatmap_distribution_loss(
    logits: torch.Tensor, points: torch.Tensor, sigma: float
) -> torch.Tensor:
    """KL divergence from the normalised Gaussian target to the spatial softmax of ``logits``
    ``(B, L, X, Y)``, averaged over the landmarks present (0 when none is)."""
    mask = present(points)
    target = gaussian_heatmaps(points, logits.shape[2:], sigma).flatten(2)
    target = target / target.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    log_prob = torch.log_softmax(logits.float().flatten(2), dim=-1)
    entropy_term = torch.where(target > 0, target * torch.log(target.clamp_min(1e-12)), 0.0)
    kl = (entropy_term - target * log_prob).sum(dim=-1)  # (B, L)
    return _masked_mean(kl, mask)


def coordinate_loss(pred: torch.Tensor, points: torch.Tensor, scale: float) -> torch.Tensor:
    """Mean L1 distance between predicted and true ``[x, y]`` over present landmarks, divided
    by ``scale`` (the longer image side: a loss that does not grow with the image)."""
    mask = present(points)
    error = (pred.float() - _filled(points)).abs().sum(dim=-1) / scale  # (B, L)
    return _masked_mean(error, mask)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``mask``; 0 (with a graph) when nothing is masked in."""
    weights = mask.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


# ------------------------------------------------------------------------------------------
# coarse heatmap + offsets (CCF-Net)
# ------------------------------------------------------------------------------------------


class CoarseTargets:
    """What a coarse heatmap-and-offset head is trained against, for one batch.

    ``heat`` ``(B, L, X, Y)``: Gaussians of ``sigma`` pixels at the cell centres, each divided by
    its maximum (1 at the cell holding the point); ``offset`` ``(B, L, 2, X, Y)``: the point
    minus each cell's centre, in cells (``[dx, dy] / stride``); ``near`` ``(B, L, X, Y)``: the
    cells whose target heat is at least ``1 - offset_threshold`` (always the point's own cell),
    where the offsets are supervised; ``present`` ``(B, L)``.
    """

    def __init__(
        self,
        points: torch.Tensor,
        size: Sequence[int],
        stride: float,
        sigma: float,
        offset_threshold: float,
    ) -> None:
        self.present = present(points)
        heat = gaussian_heatmaps(points, size, sigma, stride)
        peak = heat.flatten(2).amax(dim=-1)[..., None, None]
        self.heat = heat / peak.clamp_min(1e-12)
        centres = cell_centres(size, stride, points.device)  # (2, X, Y)
        self.offset = (_filled(points)[..., None, None] - centres) / stride
        self.near = (self.heat >= 1.0 - offset_threshold - 1e-6) & self.present[..., None, None]
        self.cell = self.heat.flatten(2).argmax(dim=-1)  # (B, L): the point's own cell


def coarse_targets(
    points: torch.Tensor,
    size: Sequence[int],
    stride: float,
    sigma: float,
    offset_threshold: float = 0.6,
) -> CoarseTargets:
    """:class:`CoarseTargets` of ``points`` on a map of ``size`` cells at ``stride`` pixels."""
    return CoarseTargets(points, size, stride, sigma, offset_threshold)


def coarse_losses(
    heat: torch.Tensor, offset: torch.Tensor, targets: CoarseTargets
) -> dict[str, torch.Tensor]:
    """``heat`` (MSE over every cell of each present landmark's map) and ``offset_x`` /
    ``offset_y`` (smooth L1 at the cells ``targets.near``, summed there and divided by the same
    cell count as the heat loss, as CCF-Net's code weighs them); missing landmarks add nothing.

    ``heat`` is ``(B, L, X, Y)``, ``offset`` ``(B, L, 2, X, Y)`` (x then y, in cells).
    """
    cells = heat.shape[2] * heat.shape[3]
    maps = targets.present.sum().clamp_min(1).float() * cells
    mask = targets.present[..., None, None].float()
    heat_loss = (((heat.float() - targets.heat) ** 2) * mask).sum() / maps
    near = targets.near.float()
    out = {"heat": heat_loss}
    for axis, name in enumerate(("offset_x", "offset_y")):
        error = F.smooth_l1_loss(
            offset[:, :, axis].float(), targets.offset[:, :, axis], reduction="none"
        )
        out[name] = (error * near).sum() / maps
    return out


def read_at_cells(maps: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """``maps`` ``(B, L, K, X, Y)`` read at one flat cell index per landmark ``cells``
    ``(B, L)``: ``(B, L, K)``."""
    b, n, k = maps.shape[:3]
    flat = maps.flatten(3)  # (B, L, K, X*Y)
    index = cells[..., None, None].expand(b, n, k, 1)
    return flat.gather(-1, index).squeeze(-1)


def decode_coarse(
    heat: torch.Tensor, offset: torch.Tensor, stride: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, L, 2)`` points and ``(B, L)`` flat cells: each landmark's highest cell plus the
    offset predicted there, ``((i + 0.5 + dx) s, (j + 0.5 + dy) s)``."""
    y_cells = heat.shape[3]
    cell = heat.flatten(2).argmax(dim=-1)  # (B, L)
    at = read_at_cells(offset, cell)  # (B, L, 2)
    index = torch.stack([cell // y_cells, cell % y_cells], dim=-1).to(at.dtype)
    return (index + 0.5 + at) * stride, cell
