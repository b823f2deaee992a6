"""Supervised segmentation: the labelled-only baseline every semi-supervised method must beat.

Loss: Dice + cross-entropy on labelled patches (nnU-Net's default objective). Unlabelled data,
if any, are ignored.
"""

from __future__ import annotations

from typing import Any

import torch

from medssl.engine.module import register_method
from medssl.methods.segment.base import SegmentationMethod


@register_method("supervised")
class Supervised(SegmentationMethod):
    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        labeled = batch["labeled"]
        logits = self(labeled["image"])
        return {"loss": self.supervised_loss(logits, labeled["label"])}
