"""The segmentation family's supervised loss."""

from __future__ import annotations

from monai.losses import DiceCELoss


def dice_ce_loss() -> DiceCELoss:
    """``(Dice + CE) / 2`` on logits and integer label maps (B, 1, ...).

    Half of each, the scale of SSL4MIS, UA-MT, CPS and BCP: the papers' learning rates and
    consistency weights are relative to it (MONAI's default sum is twice as large).
    """
    return DiceCELoss(to_onehot_y=True, softmax=True, lambda_dice=0.5, lambda_ce=0.5)
