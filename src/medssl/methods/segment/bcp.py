"""Bidirectional Copy-Paste (BCP; Bai et al., CVPR 2023), after the official DeepMed-Lab-ECNU/BCP
code (``code/LA_BCP_train.py``, ``code/ACDC_BCP_train.py``, ``utils/BCP_utils.py``).

BCP trains one network in two stages; in medssl both run inside one schedule of ``max_steps``.

**Mask.** ``M`` is ones except for a zero cuboid whose sides are ``int(2/3 * side)`` of the patch
(3D: a box in the volume, LA; 2D: a rectangle in the slice, ACDC), at a random position, one mask
per step shared by the whole batch (``context_mask`` / ``generate_mask``). ``mix(a, b, M) =
a * M + b * (1 - M)`` keeps ``a`` outside the cuboid and pastes ``b`` into it.

**Stage 1, pre-training** (the first ``pretrain_fraction`` of the steps): labelled images only.
A labelled pair ``(a, b)`` (the two halves of the labelled batch) becomes ``mix(x_a, x_b, M)``
supervised by ``mix(y_a, y_b, M)`` with ``(Dice + CE) / 2`` over the whole patch (the LA
pre-training loss; ACDC's sums the two regions' losses, about twice the scale).

**Stage 2, self-training.** At the first stage-2 step the teacher is set to the stage-1 student
(exactly once; the flag is a buffer, so it survives checkpoints), then follows it by EMA (decay
0.99, the engine's update after every step; ``momentum_pairs`` is empty before the switch). The
teacher's argmax on the unlabelled images gives pseudo labels ``p``; by default each foreground
class keeps only its largest connected component (official: ``get_cut_mask(nms=1)`` on LA in 3D,
``get_ACDC_masks(nms=1)`` per class per slice on ACDC, so on in both dimensions). With a labelled
pair ``(a, b)`` and an unlabelled pair ``(a, b)``::

    X_in  = mix(x_l_a, x_u_a, M)   target mix(y_a, p_a, M)
    X_out = mix(x_u_b, x_l_b, M)   target mix(p_b, y_b, M)

Both go through the student; the loss of each is the official ``mix_loss``: the region from the
labelled image weighs 1 and the region from the unlabelled image ``u_weight = 0.5``, each region's
loss being ``(masked Dice + masked CE) / 2`` (Dice per sample and class over the region, background
included, smooth 1e-5; CE averaged over the region's voxels). ``loss = loss_in + loss_out``.

**Pairs.** As in the official code, pairs are the two halves of each stream (LA: 4 labelled + 4
unlabelled images = 2 pairs each). A stream with fewer than 2 images pairs each image with a rolled
copy of the batch (``torch.roll``; a batch of one pairs an image with itself); the stream with
more pairs is cut to the other's number. Without an unlabelled pool, stage 2 uses the labelled
images, rolled by one, as the unlabelled stream.

**Schedule.** LA: 2000 pre-training + 15000 self-training iterations, ACDC: 10000 + 30000, so the
default ``pretrain_fraction`` is 2/17 for 3D networks and 1/4 for 2D ones (resolved into
``RUN/config.yaml``). The student is evaluated (the official tests load the student).

Deliberate deviations: one optimiser and medssl's learning-rate schedule span both stages (the
official LA code restarts SGD for self-training with a x0.1 step decay every 2500 iterations, ACDC
keeps lr 0.01 constant); the teacher starts from the last stage-1 student, not the best-validated
checkpoint; the engine's EMA warm-up ``min(1 - 1/(step + 1), 0.99)`` equals 0.99 from step 99 on;
one Dice form is used in 2D and 3D (LA's ``mask_DiceLoss``; ACDC's ``DiceLoss`` pools the batch and
squares the denominators); the teacher runs once on all unlabelled images rather than per half;
the LA test-time largest-component post-processing is not applied (medssl scores the raw argmax of
every method; ``--largest-component`` applies the same helper as the pseudo labels,
:func:`medssl.metrics.postprocess.keep_largest_components`, to every method alike).

The mask, the mixing and the losses are pure functions in :mod:`medssl.losses.copy_paste`.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn

from medssl.engine.config import RunConfig
from medssl.engine.ema import make_teacher
from medssl.engine.module import MethodConfig, register_method
from medssl.losses.copy_paste import (
    bidirectional_mix,
    cuboid_mask,
    mix,
    mix_loss,
    pair_up,
    region_loss,
)
from medssl.methods.segment.semi import SemiSupervisedMethod
from medssl.metrics.postprocess import keep_largest_components

# Pre-training share of the official schedules: LA 2000 of 2000 + 15000, ACDC 10000 of 40000.
PRETRAIN_FRACTION = {3: 2000 / 17000, 2: 10000 / 40000}


class BCPConfig(MethodConfig):
    ema_decay: float = Field(0.99, gt=0, lt=1)
    pretrain_fraction: float | None = Field(None, ge=0, lt=1)  # None: 2/17 in 3D, 1/4 in 2D
    mask_ratio: float = Field(2 / 3, gt=0, lt=1)  # cuboid side / patch side
    u_weight: float = Field(0.5, ge=0)  # weight of the voxels pasted from unlabelled images
    largest_cc: bool = True  # keep each class's largest component in the pseudo labels
    evaluate: Literal["student", "teacher"] = "student"


def default_pretrain_fraction(spatial_dims: int) -> float:
    """The paper's pre-training share of all iterations for this network dimension."""
    return PRETRAIN_FRACTION[3 if spatial_dims == 3 else 2]


@register_method("bcp")
class BCP(SemiSupervisedMethod):
    Config = BCPConfig

    def __init__(self, run_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
        super().__init__(run_config, dataset_info)
        self.teacher = make_teacher(self.net)
        # Set once, at the first self-training step; a buffer so that resumed runs keep it.
        self.register_buffer("teacher_ready", torch.tensor(False))
        fraction = self.hp.pretrain_fraction
        if fraction is None:
            fraction = default_pretrain_fraction(self.spatial_dims)
        self.switch_step = round(fraction * self.run_config.train.max_steps)

    @classmethod
    def finalize_config(cls, cfg: RunConfig) -> RunConfig:
        """Write the per-dimension pre-training share into ``RUN/config.yaml``."""
        cfg = super().finalize_config(cfg)
        if cfg.method_config.get("pretrain_fraction") is None:
            dims = cfg.data.spatial_dims or 3
            cfg.method_config = {
                **cfg.method_config,
                "pretrain_fraction": default_pretrain_fraction(dims),
            }
        return cfg

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return [(self.net, self.teacher)] if bool(self.teacher_ready) else []

    def inference_net(self) -> nn.Module:
        return self.teacher if self.hp.evaluate == "teacher" else self.net

    def in_self_training(self) -> bool:
        return self.global_step >= self.switch_step

    @torch.no_grad()
    def start_self_training(self) -> None:
        """Initialise the teacher from the pre-trained student (exactly once)."""
        self.teacher.load_state_dict(self.net.state_dict())
        self.teacher_ready.fill_(True)

    def new_mask(self, like: torch.Tensor) -> torch.Tensor:
        return cuboid_mask(like.shape[2:], self.hp.mask_ratio, device=like.device)

    @torch.no_grad()
    def pseudo_labels(self, images: torch.Tensor) -> torch.Tensor:
        """The teacher's argmax (B, 1, *S), reduced to each class's largest component."""
        labels = self.teacher(images).argmax(dim=1, keepdim=True)
        if self.hp.largest_cc:
            labels = keep_largest_components(labels, self.num_classes, batch_dims=2)
        return labels

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        x_l, y_l, x_u = self.split_batch(batch)
        if not self.in_self_training():
            return self.pretrain_losses(x_l, y_l)
        if not bool(self.teacher_ready):
            self.start_self_training()
        if x_u is None:
            x_u = torch.roll(x_l, 1, dims=0)
        return self.self_train_losses(x_l, y_l, x_u)

    def pretrain_losses(self, x_l: torch.Tensor, y_l: torch.Tensor) -> dict[str, torch.Tensor]:
        """Stage 1: copy-paste between labelled images, supervised by the mixed labels."""
        (x_a, x_b), (y_a, y_b) = pair_up(x_l), pair_up(y_l)
        mask = self.new_mask(x_a)
        logits = self(mix(x_a, x_b, mask))
        loss = region_loss(logits, mix(y_a, y_b, mask), torch.ones_like(mask))
        return {"loss": loss, "copy_paste": loss.detach(), "stage": torch.tensor(1.0)}

    def self_train_losses(
        self, x_l: torch.Tensor, y_l: torch.Tensor, x_u: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Stage 2: bidirectional copy-paste between labelled and pseudo-labelled images."""
        p_u = self.pseudo_labels(x_u)
        x_l_pair, y_l_pair, x_u_pair, p_u_pair = (pair_up(t) for t in (x_l, y_l, x_u, p_u))
        pairs = min(len(x_l_pair[0]), len(x_u_pair[0]))
        x_l_pair, y_l_pair, x_u_pair, p_u_pair = (
            (a[:pairs], b[:pairs]) for a, b in (x_l_pair, y_l_pair, x_u_pair, p_u_pair)
        )
        mask = self.new_mask(x_l)
        x_in, y_in, x_out, y_out = bidirectional_mix(x_l_pair, y_l_pair, x_u_pair, p_u_pair, mask)
        logits_in, logits_out = self(x_in), self(x_out)
        u = self.hp.u_weight
        loss_in = mix_loss(logits_in, y_in, mask, weight_outside=1.0, weight_inside=u)
        loss_out = mix_loss(logits_out, y_out, mask, weight_outside=u, weight_inside=1.0)
        return {
            "loss": loss_in + loss_out,
            "loss_in": loss_in.detach(),
            "loss_out": loss_out.detach(),
            "pseudo_foreground": (p_u > 0).float().mean(),
            "stage": torch.tensor(2.0),
        }
