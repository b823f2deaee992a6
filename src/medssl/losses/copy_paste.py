"""Bidirectional copy-paste (BCP; Bai et al., CVPR 2023): the cuboid mask, the mixing of images
and label maps, and the region-weighted ``mix_loss`` of the official DeepMed-Lab-ECNU/BCP code.

``mix(a, b, M) = a * M + b * (1 - M)`` keeps ``a`` outside the zero cuboid of ``M`` and pastes
``b`` into it; labels are mixed with the same mask as the images they belong to.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cuboid_mask(
    spatial_shape: tuple[int, ...] | list[int],
    ratio: float = 2 / 3,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """BCP's mask ``M`` (1, 1, *spatial): ones with a zero box of ``int(ratio * side)`` per axis
    at a uniformly random position (the same box for every image of the batch)."""
    mask = torch.ones((1, 1, *spatial_shape), device=device)
    box = []
    for side in spatial_shape:
        size = int(side * ratio)
        start = int(torch.randint(0, side - size + 1, (1,), generator=generator))
        box.append(slice(start, start + size))
    mask[(slice(None), slice(None), *box)] = 0
    return mask


def mix(outside: torch.Tensor, inside: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``outside * M + inside * (1 - M)``, exact and dtype-preserving (images and label maps)."""
    return torch.where(mask.bool(), outside, inside)


def pair_up(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The official pairs: first and second half of the batch. A batch of fewer than 2 images
    pairs each image with a rolled copy of the batch (so batch size 1 works)."""
    if len(x) < 2:
        return x, torch.roll(x, 1, dims=0)
    half = len(x) // 2
    return x[:half], x[half : 2 * half]


def bidirectional_mix(
    x_l: tuple[torch.Tensor, torch.Tensor],
    y_l: tuple[torch.Tensor, torch.Tensor],
    x_u: tuple[torch.Tensor, torch.Tensor],
    p_u: tuple[torch.Tensor, torch.Tensor],
    mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(X_in, target_in, X_out, target_out)`` from labelled pairs ``(a, b)`` and unlabelled
    pairs ``(a, b)`` with their pseudo labels: unlabelled into labelled, and labelled into
    unlabelled."""
    x_in, y_in = mix(x_l[0], x_u[0], mask), mix(y_l[0], p_u[0], mask)
    x_out, y_out = mix(x_u[1], x_l[1], mask), mix(p_u[1], y_l[1], mask)
    return x_in, y_in, x_out, y_out


def region_loss(logits: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """``(Dice + CE) / 2`` restricted to ``region`` (the official masked ``mask_DiceLoss`` and CE):
    Dice per sample and class over the region, background included, smooth 1e-5; CE averaged
    over the region's voxels.

    Shapes: logits (B, K, *S), target (B, 1, *S) int, region broadcastable to (B, 1, *S).
    """
    region = region.to(logits.dtype).expand(target.shape)
    probs = torch.softmax(logits, dim=1)
    onehot = F.one_hot(target[:, 0].long(), logits.shape[1]).movedim(-1, 1).to(logits.dtype)
    inter = (probs * onehot * region).flatten(2).sum(-1)
    union = ((probs + onehot) * region).flatten(2).sum(-1)
    dice = 1.0 - ((2.0 * inter + 1e-5) / (union + 1e-5)).mean()
    ce_map = F.cross_entropy(logits, target[:, 0].long(), reduction="none")
    ce = (ce_map * region[:, 0]).sum() / (region.sum() + 1e-16)
    return (dice + ce) / 2.0


def mix_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    weight_outside: float,
    weight_inside: float,
) -> torch.Tensor:
    """The official ``mix_loss``: the region where ``M = 1`` weighs ``weight_outside``, the pasted
    cuboid ``weight_inside`` (1 for voxels of a labelled image, ``u_weight`` for pseudo labels)."""
    return weight_outside * region_loss(logits, target, mask) + weight_inside * region_loss(
        logits, target, 1 - mask
    )
