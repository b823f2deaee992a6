"""Supervised classification: cross-entropy on labelled images (optionally class-balanced).

The MedMNIST v2 baseline (ResNet-18 / ResNet-50, Adam 1e-3) every label-efficient classifier
must beat.
"""

from __future__ import annotations

from typing import Any

import torch

from medssl.engine.module import register_method
from medssl.methods.classify.base import ClassificationMethod


@register_method("supervised")
class SupervisedClassifier(ClassificationMethod):
    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        labeled = batch["labeled"]
        return {"loss": self.supervised_loss(self(labeled["image"]), labeled["label"])}
