"""UA-MT's uncertainty-aware consistency: the entropy of Monte-Carlo passes masks the voxels the
teacher is unsure about out of a softmax MSE (Yu et al., MICCAI 2019; official LA code)."""

from __future__ import annotations

import torch

from medssl.losses.consistency import softmax_mse

ENTROPY_EPS = 1e-6  # inside the log of the official uncertainty


def predictive_entropy(mean_probs: torch.Tensor) -> torch.Tensor:
    """Entropy per voxel of a mean softmax, ``(B, K, ...) -> (B, 1, ...)`` (nats)."""
    return -(mean_probs * torch.log(mean_probs + ENTROPY_EPS)).sum(dim=1, keepdim=True)


def uncertainty_mask(probs_passes: torch.Tensor, threshold: float) -> torch.Tensor:
    """1 where the entropy of the mean of the passes is below ``threshold``.

    ``probs_passes``: softmax maps of the T passes, ``(T, B, K, ...)``; returns ``(B, 1, ...)``.
    """
    return (predictive_entropy(probs_passes.mean(dim=0)) < threshold).float()


def masked_consistency(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """The official masked MSE: ``sum(mask * (s - t)^2) / (2 * sum(mask) + 1e-16)``.

    ``mask`` (B, 1, ...) broadcasts over the class axis; zero when every voxel is masked out.
    The 2 is the official normaliser, kept for every number of classes.
    """
    dist = softmax_mse(student_logits, teacher_logits)
    return (mask * dist).sum() / (2.0 * mask.sum() + 1e-16)
