"""VoCo's losses (CVPR 2024): overlap prediction from crop and base-crop features, the position
loss against the true overlap fractions, and the regulariser that pushes base crops apart."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def predict_overlaps(crops: torch.Tensor, bases: torch.Tensor) -> torch.Tensor:
    """``p = ReLU(cos(crop, base))``: crops ``(B, N, D)``, bases ``(B, K, D)`` -> ``(B, N, K)``."""
    return F.relu(F.normalize(crops, dim=-1) @ F.normalize(bases, dim=-1).transpose(1, 2))


def prediction_loss(
    predicted: torch.Tensor, target: torch.Tensor, eps: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """VoCo's position loss and negative term of ``(B, N, K)`` predictions and targets.

    Per volume, as the released code: ``pos = sum(-y log(1 - |y - p|)) / sum(y)`` (the sum over
    base crops averaged over the volume's crops, since each crop's targets sum to 1) and
    ``neg = mean of p^2`` over the entries with ``y = 0`` (0 if there is none); both averaged
    over the batch. ``1 - |y - p|`` is clamped at ``eps``; both are 0 when ``p == y``.
    """
    dims = tuple(range(1, predicted.ndim))
    close = (1 - (target - predicted).abs()).clamp(min=eps)
    pos = (-target * torch.log(close)).sum(dims) / target.sum(dims).clamp(min=eps)
    untouched = (target == 0).to(predicted.dtype)
    neg = (untouched * predicted**2).sum(dims) / untouched.sum(dims).clamp(min=1)
    return pos.mean(), neg.mean()


def base_regularizer(bases: torch.Tensor) -> torch.Tensor:
    """``mean_{k < l} ReLU(cos(b_k, b_l))^2`` over each volume's ``(B, K, D)`` base features,
    averaged over volumes: 0 when a volume's base crops are pairwise orthogonal (or opposed)."""
    unit = F.normalize(bases, dim=-1)
    cos = unit @ unit.transpose(1, 2)  # (B, K, K)
    k = bases.shape[1]
    upper = torch.triu(torch.ones(k, k, dtype=torch.bool, device=bases.device), diagonal=1)
    return (F.relu(cos[:, upper]) ** 2).mean()
