"""Uncertainty-aware mean teacher, UA-MT (Yu et al., MICCAI 2019).

A mean teacher whose consistency term only counts the voxels the teacher is sure about. Per step:

* The student sees the whole batch (labelled then unlabelled images); (Dice + CE) / 2 on the
  labelled part. The teacher, an EMA of the student (decay 0.99, updated by the engine), sees the
  unlabelled images plus noise ``clamp(N(0, 0.1^2), -0.2, 0.2)``.
* Uncertainty: ``T = 8`` stochastic teacher passes over noisy copies of the unlabelled images
  (Monte Carlo dropout plus input noise; as in the official code the batch is repeated twice
  per forward, so ``T / 2`` forwards). With ``p`` the mean softmax over the passes, the voxel's
  uncertainty is the predictive entropy ``u = -sum_k p_k log(p_k + 1e-6)``.
* Threshold ``H = (0.75 + 0.25 * sigmoid_rampup(step, max_steps)) * ln 2``: early on only the
  most certain voxels count, by the end every voxel below the binary entropy maximum does. The
  official code (and SSL4MIS on 4-class ACDC) keeps ``ln 2`` for every number of classes; that
  is the default, ``threshold_entropy: lnK`` scales it by the K-class maximum instead.
* ``mask = u < H``; consistency ``sum(mask * (softmax s - softmax t)^2) / (2 sum(mask) + 1e-16)``
  over the unlabelled images (the 2 is the official normaliser, kept for every K).
* Loss ``(Dice + CE) / 2 + w(t) * consistency``, ``w(t) = 0.1 * sigmoid_rampup`` over the
  whole schedule (official: ramp length 40 "epochs" of 150 iterations = the 6000 iterations).

The student is evaluated, as in the official test script. Without an unlabelled pool the
labelled images are the unlabelled stream.

Deliberate deviations: medssl's network is a MONAI UNet (the official one is a V-Net with
dropout 0.5 at the bottleneck and before the classifier); MONAI's UNet applies its dropout in
every convolution block, so UA-MT defaults to ``net.dropout: 0.1`` (``default_overrides``) to
make the teacher's passes Monte-Carlo-dropout samples, as the paper's uncertainty requires.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator

from medssl.engine.module import register_method
from medssl.losses.uncertainty import masked_consistency, uncertainty_mask
from medssl.methods.segment.consistency import sigmoid_rampup
from medssl.methods.segment.mean_teacher import MeanTeacher, MeanTeacherConfig, noisy

THRESHOLD_START = 0.75  # share of the entropy maximum the threshold starts at


class UAMTConfig(MeanTeacherConfig):
    uncertainty_passes: int = Field(8, ge=1)  # T stochastic teacher passes
    copies_per_forward: int = Field(2, ge=1)  # the official code repeats the batch 2x per forward
    threshold_entropy: Literal["ln2", "lnK"] = "ln2"

    @model_validator(mode="after")
    def _passes_split_into_forwards(self) -> UAMTConfig:
        if self.uncertainty_passes % self.copies_per_forward:
            raise ValueError(
                f"uncertainty_passes ({self.uncertainty_passes}) must be a multiple of "
                f"copies_per_forward ({self.copies_per_forward})"
            )
        return self


def uncertainty_threshold(
    step: int, max_steps: int, num_classes: int = 2, entropy: str = "ln2"
) -> float:
    """``(0.75 + 0.25 * sigmoid_rampup(step, max_steps)) * H_max``, ``H_max = ln 2`` or ``ln K``."""
    h_max = math.log(2) if entropy == "ln2" else math.log(num_classes)
    ramp = sigmoid_rampup(step, max_steps)
    return (THRESHOLD_START + (1.0 - THRESHOLD_START) * ramp) * h_max


@register_method("ua_mt")
class UAMT(MeanTeacher):
    Config = UAMTConfig
    default_overrides: ClassVar[dict[str, Any]] = {"net": {"dropout": 0.1}}

    @torch.no_grad()
    def teacher_passes(self, images: torch.Tensor) -> torch.Tensor:
        """Softmax maps of T noisy teacher passes, ``(T, B, K, ...)``.

        Each forward holds ``copies_per_forward`` noisy copies of the batch, as in the official
        code, so the teacher's dropout draws differ between copies too.
        """
        copies = self.hp.copies_per_forward
        repeat = (copies,) + (1,) * (images.ndim - 1)
        batch = images.repeat(*repeat)
        passes = []
        for _ in range(self.hp.uncertainty_passes // copies):
            probs = torch.softmax(self.teacher(noisy(batch, self.hp.noise_std)), dim=1)
            passes.append(probs.reshape(copies, len(images), *probs.shape[1:]))
        return torch.cat(passes, dim=0)

    def threshold(self) -> float:
        return uncertainty_threshold(
            self.global_step,
            self.run_config.train.max_steps,
            self.num_classes,
            self.hp.threshold_entropy,
        )

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        x_l, y_l, x_u = self.split_batch(batch)
        logits = self(self.all_images(x_l, x_u))
        supervised = self.supervised_loss(logits[: len(x_l)], y_l)
        if x_u is None:  # no unlabelled pool: the labelled images are the unlabelled stream
            x_u, student_u = x_l, logits
        else:
            student_u = logits[len(x_l) :]
        threshold = self.threshold()
        mask = uncertainty_mask(self.teacher_passes(x_u), threshold)
        consistency = masked_consistency(student_u, self.teacher_logits(x_u), mask)
        return self.combine_losses(
            supervised, consistency, threshold=torch.tensor(threshold), certain_fraction=mask.mean()
        )
