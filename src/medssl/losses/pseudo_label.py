"""Hard pseudo labels and CPS's cross pseudo supervision (Chen et al., CVPR 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pseudo_labels(logits: torch.Tensor) -> torch.Tensor:
    """Hard labels ``argmax softmax(logits)`` without gradient, ``(B, K, ...) -> (B, ...)``."""
    return torch.softmax(logits.detach(), dim=1).argmax(dim=1)


def cross_pseudo_loss(logits1: torch.Tensor, logits2: torch.Tensor) -> torch.Tensor:
    """``CE(logits1, argmax logits2) + CE(logits2, argmax logits1)``, mean over voxels: each
    network learns from the other's labels, and no gradient reaches the network that made them."""
    return F.cross_entropy(logits1, pseudo_labels(logits2)) + F.cross_entropy(
        logits2, pseudo_labels(logits1)
    )
