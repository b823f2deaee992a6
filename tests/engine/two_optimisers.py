"""A toy method with two optimisers (a segmenter and an adversarial critic), for the engine's
tests of manual optimisation; imported by tests and by a subprocess that is killed mid-run."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medssl.engine.module import METHODS, ManualStep, register_method
from medssl.methods.segment.base import SegmentationMethod

NAME = "toy_two_optimisers"


class TwoOptimisers(SegmentationMethod):
    """Segmenter (SGD, ``optim``) and a 1x1 critic on its softmax (Adam, ``optimizers.critic``)."""

    optimizer_names = ("segmenter", "critic")

    def __init__(self, run_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
        super().__init__(run_config, dataset_info)
        conv = nn.Conv3d if self.spatial_dims == 3 else nn.Conv2d
        self.critic = conv(self.num_classes, 1, kernel_size=1)

    def optimizer_params(self, name: str):
        return self.net.parameters() if name == "segmenter" else self.critic.parameters()

    def manual_step(self, batch: dict[str, Any], step: ManualStep) -> dict[str, torch.Tensor]:
        labeled = batch["labeled"]
        logits = self(labeled["image"])
        seg = self.supervised_loss(logits, labeled["label"])
        fooled = self.critic(torch.softmax(logits, 1)).mean()
        step("segmenter", seg - 0.01 * fooled)
        critic = self.critic(torch.softmax(logits.detach(), 1)).mean().pow(2)
        step("critic", critic)
        return {"loss": seg.detach(), "critic": critic.detach()}


if f"segmentation/{NAME}" not in METHODS:
    register_method(NAME)(TwoOptimisers)
