"""The family's supervised loss is (Dice + CE) / 2, half of MONAI's default sum."""

from __future__ import annotations

import torch
from monai.losses import DiceCELoss

from medssl.losses.segmentation import dice_ce_loss


def test_half_of_monai_dice_plus_ce():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 6, 6)
    labels = torch.randint(0, 3, (2, 1, 6, 6))
    full = DiceCELoss(to_onehot_y=True, softmax=True)(logits, labels)
    assert torch.allclose(dice_ce_loss()(logits, labels), full / 2)


def test_near_zero_for_a_confident_right_prediction():
    labels = torch.randint(0, 2, (1, 1, 4, 4))
    logits = torch.nn.functional.one_hot(labels[:, 0], 2).movedim(-1, 1).float() * 30.0
    assert dice_ce_loss()(logits, labels).item() < 1e-4
