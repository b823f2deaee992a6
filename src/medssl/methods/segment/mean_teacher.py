"""Mean Teacher (Tarvainen & Valpola, NeurIPS 2017) as used for LA by UA-MT (Yu et al. 2019).

The teacher is an exponential moving average of the student (decay 0.99, engine-updated). Both
see every image of the batch; the teacher's input gets Gaussian noise (sigma 0.1, clipped to
+-0.2). Loss: (Dice + CE) / 2 on the labelled images plus ``w(t) * mean((softmax s - softmax t)^2)``
over all images, with ``w(t) = 0.1 * sigmoid_rampup``. The student is evaluated (as in UA-MT).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from medssl.engine.ema import make_teacher
from medssl.engine.module import register_method
from medssl.losses.consistency import softmax_mse
from medssl.methods.segment.consistency import ConsistencyConfig
from medssl.methods.segment.semi import SemiSupervisedMethod


class MeanTeacherConfig(ConsistencyConfig):
    ema_decay: float = Field(0.99, gt=0, lt=1)
    noise_std: float = Field(0.1, ge=0)  # teacher input noise, clipped to +-2 sigma
    evaluate: str = Field("student", pattern="^(student|teacher)$")


def noisy(x: torch.Tensor, std: float) -> torch.Tensor:
    """UA-MT's input perturbation: ``x + clamp(N(0, std^2), -2 std, 2 std)``."""
    if std == 0:
        return x
    return x + torch.clamp(torch.randn_like(x) * std, -2 * std, 2 * std)


@register_method("mean_teacher")
class MeanTeacher(SemiSupervisedMethod):
    Config = MeanTeacherConfig

    def __init__(self, run_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
        super().__init__(run_config, dataset_info)
        self.teacher = make_teacher(self.net)

    def momentum_pairs(self):
        return [(self.net, self.teacher)]

    def inference_net(self):
        return self.teacher if self.hp.evaluate == "teacher" else self.net

    def teacher_logits(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.teacher(noisy(images, self.hp.noise_std))

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        x_l, y_l, x_u = self.split_batch(batch)
        images = self.all_images(x_l, x_u)
        logits = self(images)
        supervised = self.supervised_loss(logits[: len(x_l)], y_l)
        consistency = softmax_mse(logits, self.teacher_logits(images)).mean()
        return self.combine_losses(supervised, consistency)
