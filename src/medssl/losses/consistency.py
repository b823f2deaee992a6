"""Consistency between predictions: softmax distances and sharpened targets.

The SSL4MIS / MC-Net+ conventions, so that mean teacher, UA-MT, MC-Net+ and KP-Net compute the
same quantities the same way. Inputs are (B, K, ...) logits or softmax maps, K on axis 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def softmax_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Per-voxel squared distance of the two softmax maps, (B, K, ...) -> (B, K, ...)."""
    return (torch.softmax(student_logits, 1) - torch.softmax(teacher_logits, 1)) ** 2


def sharpen(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """MC-Net+'s sharpening ``p^(1/T) / sum_k p_k^(1/T)`` over the class axis.

    ``T = 1`` leaves a softmax map as it is; ``T -> 0`` tends to its one-hot argmax.
    """
    powered = probs.clamp_min(1e-12) ** (1.0 / temperature)
    return powered / powered.sum(dim=1, keepdim=True)


def mutual_consistency(
    probs: Sequence[torch.Tensor], temperature: float, detach_targets: bool = True
) -> torch.Tensor:
    """MC-Net+: ``sum_{i != j} mean((p_i - sharpen(p_j, T))^2)`` over ordered pairs of decoders.

    ``probs``: each decoder's softmax (B, K, *spatial). Zero when the decoders agree on one-hot
    predictions (a one-hot map is its own sharpening).
    """
    targets = [sharpen(p, temperature) for p in probs]
    if detach_targets:
        targets = [t.detach() for t in targets]
    terms = [
        torch.mean((p - t) ** 2)
        for i, p in enumerate(probs)
        for j, t in enumerate(targets)
        if i != j
    ]
    return torch.stack(terms).sum()


def decoder_consistency(p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
    """KP-Net's agreement of two decoding branches: ``mean((p1 - p2)^2)`` over voxels and
    classes, gradients to both."""
    return ((p1 - p2) ** 2).mean()


def branch_distinctiveness(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """KP-Net's distinctiveness within one branch: ``mean((p - sharpen(p, T))^2)``, the target
    detached, so the branch is pulled towards its own class-distinct prediction."""
    target = sharpen(probs.detach(), temperature)
    return ((probs - target) ** 2).mean()
