"""MC-Net+ (Wu et al., MedIA 2022, "Mutual consistency learning for semi-supervised medical image
segmentation"; official code ycwu1997/MC-Net, ``train_mcnet_3d.py``, net ``mcnet3d_v2``).

One shared encoder feeds three decoders that differ only in their upsampling: transposed
convolution, (tri)linear interpolation and nearest interpolation (``nets/multi_decoder.py``).
Their disagreement marks the hard, uncertain regions; MC-Net+ trains each decoder's probabilities
towards the *sharpened* probabilities of every other decoder, so that the decoders agree there
with low-entropy outputs:

- supervised, on the labelled images: ``beta * sum_d Dice(p_d, y)`` over the decoders, with
  ``beta = 0.5``. The official script optimises only this Dice term (its cross-entropy is computed
  and logged, never added to the loss); ``supervised="dice_ce"`` uses the family's
  (Dice + CE) / 2 instead.
  The Dice is batch-wise over the foreground classes (the official binary LA Dice, generalised);
- mutual consistency, on all images (labelled and unlabelled):
  ``L_c = sum_{i != j} mean((p_i - sharpen(p_j, T))^2)`` over the ordered decoder pairs, with
  ``sharpen(p, T) = p^(1/T) / sum_k p_k^(1/T)`` and ``T = 0.1``;
- ``loss = supervised + w(t) * L_c`` with ``w(t) = 1.0 * sigmoid_rampup`` over 40 "epochs" of
  150 iterations of the 15000-iteration LA schedule: ``rampup_fraction = 0.4``. (The official
  2D ACDC script, ``train_mcnet_2d.py``, uses ``consistency = 0.1`` ramped over its whole 30000
  iterations, with two decoders (bilinear, transposed convolution): a 2D network gets these
  defaults, see ``OFFICIAL_2D``.)

Dropout as in ``mcnet3d_v2`` training mode: channel dropout (p=0.5) on the bottleneck features
and on each decoder's last features before its output convolution (``dropout``; unset, 0.5, but
0 on ``net.name: ssl4mis_unet``, whose encoder carries SSL4MIS's own per-level dropout, as
``mcnet2d_v1`` / ``mcnet2d_v2`` add none). At test time the official
script reports the first decoder (transposed convolution) as its main result, and also the
average of all decoders' outputs: ``evaluate="first"`` (default) or ``"mean"``.

Deliberate deviations: (1) the sharpened targets are detached (pseudo labels); the official
script lets gradients flow through them (``detach_targets=False`` restores that). (2) ``sharpen``
normalises over the classes; the official ``P^(1/T) / (P^(1/T) + (1-P)^(1/T))`` sharpens each
class channel on its own, which is the same for the two-class LA/Pancreas tasks. (3) The V-Net
encoder/decoders (additive skips, 16-256 filters) are medssl's residual-unit U-Net blocks at the
run's ``net.channels``; ``net.name="vnet"`` selects the same network. ``net.name: ssl4mis_vnet``
builds the official ``mcnet3d_v2`` itself (15.25 M parameters at one channel, two classes),
``ssl4mis_unet`` the official 2D networks (``mcnet2d_v1``: 2.58 M at four classes); see
``nets/ssl4mis.py``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from monai.losses import DiceLoss
from pydantic import Field

from medssl.engine.config import RunConfig
from medssl.engine.module import register_method
from medssl.losses.consistency import mutual_consistency
from medssl.methods.segment.consistency import ConsistencyConfig
from medssl.methods.segment.semi import SemiSupervisedMethod
from medssl.nets.multi_decoder import MainOutput, MeanOutput, Upsampling, from_net_config


class MCNetPlusConfig(ConsistencyConfig):
    consistency: float = Field(1.0, ge=0)  # official 3D default (LA / Pancreas)
    rampup_fraction: float = Field(0.4, ge=0, le=1)  # 40 x 150 of 15000 iterations
    temperature: float = Field(0.1, gt=0)
    beta: float = Field(0.5, ge=0)  # weight of the supervised sum over decoders
    supervised: Literal["dice", "dice_ce"] = "dice"
    upsampling: list[Upsampling] = Field(
        default_factory=lambda: ["transpose", "linear", "nearest"], min_length=2
    )
    # bottleneck and last decoder features; None: 0.5, or 0 on ssl4mis_unet (see above)
    dropout: float | None = Field(None, ge=0, lt=1)
    detach_targets: bool = True
    evaluate: Literal["first", "mean"] = "first"


# ``train_mcnet_2d.py`` (ACDC): net ``mcnet2d_v1``, two decoders (bilinear, transposed conv),
# consistency 0.1 ramped over all 200 x 150 = 30000 iterations; the same Dice-only supervision.
OFFICIAL_2D: dict[str, Any] = {
    "consistency": 0.1,
    "rampup_fraction": 1.0,
    "upsampling": ["linear", "transpose"],
}


@register_method("mcnet_plus")
class MCNetPlus(SemiSupervisedMethod):
    Config = MCNetPlusConfig

    @classmethod
    def finalize_config(cls, cfg: RunConfig) -> RunConfig:
        """A 2D network gets the official 2D script's defaults (what the user set still wins);
        they are written into ``RUN/config.yaml`` like any other value."""
        cfg = super().finalize_config(cfg)
        if cfg.data.spatial_dims == 2:
            cfg.method_config = {**OFFICIAL_2D, **cfg.method_config}
        return cfg

    def __init__(self, run_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
        super().__init__(run_config, dataset_info)
        self.dice = DiceLoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)

    def build_net(self):
        dropout = self.hp.dropout
        if dropout is None:
            dropout = 0.0 if self.run_config.net.name == "ssl4mis_unet" else 0.5
        return from_net_config(
            self.run_config.net,
            self.spatial_dims,
            int(self.dataset_info["in_channels"]),
            self.num_classes,
            upsampling=self.hp.upsampling,
            head_perturbations=["dropout"],
            head_dropout=dropout,
            bottleneck_dropout=dropout,
        )

    def inference_net(self):
        return MainOutput(self.net) if self.hp.evaluate == "first" else MeanOutput(self.net)

    def decoder_supervised(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        if self.hp.supervised == "dice":
            return self.dice(logits, label)
        return self.supervised_loss(logits, label)

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        x_l, y_l, x_u = self.split_batch(batch)
        outputs = self(self.all_images(x_l, x_u))
        n = len(x_l)
        supervised = (
            self.hp.beta
            * torch.stack([self.decoder_supervised(logits[:n], y_l) for logits in outputs]).sum()
        )
        probs = [torch.softmax(logits.float(), dim=1) for logits in outputs]
        consistency = mutual_consistency(probs, self.hp.temperature, self.hp.detach_targets)
        return self.combine_losses(supervised, consistency)
