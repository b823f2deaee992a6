"""Base of the semi-supervised segmentation methods: a labelled and an unlabelled stream.

Every batch holds ``labeled`` (image, label) and, when the run has an unlabelled pool,
``unlabeled`` (image). Methods compute their unsupervised term on both streams, as the SSL4MIS
/ UA-MT code does (the labelled images are also "unlabelled" for consistency purposes).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from medssl.methods.segment.base import SegmentationMethod
from medssl.methods.segment.consistency import ConsistencyConfig, consistency_weight


class SemiSupervisedMethod(SegmentationMethod):
    streams: ClassVar[tuple[str, ...]] = ("labeled", "unlabeled")
    Config: ClassVar[type[ConsistencyConfig]] = ConsistencyConfig

    def split_batch(
        self, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(labelled images, labels, unlabelled images or None)``."""
        labeled = batch["labeled"]
        unlabeled = batch.get("unlabeled")
        x_u = unlabeled["image"] if unlabeled is not None else None
        return labeled["image"], labeled["label"], x_u

    @staticmethod
    def all_images(x_l: torch.Tensor, x_u: torch.Tensor | None) -> torch.Tensor:
        """Labelled then unlabelled images in one batch (the consistency terms' input)."""
        return x_l if x_u is None else torch.cat([x_l, x_u], dim=0)

    def unsup_weight(self) -> float:
        """The ramped weight of the unsupervised term at the current step."""
        return consistency_weight(self.hp, self.global_step, self.run_config.train.max_steps)

    def combine_losses(
        self, supervised: torch.Tensor, consistency: torch.Tensor, **logged: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``supervised + ramped weight * consistency``, with both terms and the weight logged
        (and any ``logged`` extras): the objective shared by the consistency methods."""
        weight = self.unsup_weight()
        return {
            "loss": supervised + weight * consistency,
            "supervised": supervised,
            "consistency": consistency,
            "consistency_weight": torch.tensor(weight),
            **logged,
        }
