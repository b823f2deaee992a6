"""URPC: uncertainty rectified pyramid consistency (Luo et al., MICCAI 2021 / MedIA 2022;
SSL4MIS ``train_uncertainty_rectified_pyramid_consistency_2D.py`` / ``_3D.py``, net ``unet_urpc``).

A U-Net whose decoder predicts at several scales (a pyramid): the full-resolution output and
deep-supervision heads on the next coarser decoder levels, each upsampled to the input size
(4 scales, fewer when the network has fewer decoder levels). As in ``unet_urpc``, the auxiliary
heads see perturbed features in training: multiplicative uniform noise (+-0.3) at the first
coarser level, attention-based feature dropout at the second, channel dropout (p=0.5) at the
third (``nets/multi_decoder.py``). With ``p_s`` the softmax of scale ``s``:

- supervised, on the labelled images: the mean over scales and over {CE, Dice} of the terms,
  i.e. ``mean_s (CE_s + Dice_s) / 2``, the family's supervised loss averaged over scales (SSL4MIS
  divides the 2S terms by 2S);
- pyramid consistency, on the unlabelled images: ``p_mean = mean_s p_s``; per scale the voxel
  uncertainty ``D_s = KL(p_mean || p_s) = sum_k p_mean log(p_mean / p_s)`` (SSL4MIS computes
  ``KLDivLoss(log p_s, p_mean)``), the rectified distance
  ``L_s = mean((p_mean - p_s)^2 * exp(-D_s)) / (mean(exp(-D_s)) + 1e-8) + mean(D_s)``: voxels where
  a scale disagrees with the pyramid count less in its distance term, and ``mean(D_s)`` keeps the
  uncertainty itself small; ``L_c = mean_s L_s``. Gradients flow through ``p_mean`` and the
  weights, as in SSL4MIS. Computed from log-probabilities (``log p_mean`` by ``logsumexp``), so
  a softmax that underflows to 0 cannot turn the step into NaN as ``KLDivLoss``'s can;
- ``loss = supervised + w(t) * L_c``, ``w(t) = 0.1 * sigmoid_rampup`` over the whole schedule
  (SSL4MIS: 200 "epochs" of 150 of 30000 iterations in 2D, 400 x 150 of 60000 in 3D).

The full-resolution output is used at test time. Deliberate deviations: the network is medssl's
multi-decoder U-Net at the run's widths (transposed-convolution upsampling); its heads are 1x1
convolutions upsampled linearly (SSL4MIS 2D: 3x3 and nearest; 3D ``unet_3D_dv_semi``: 1x1 and
trilinear, with decoder-path dropout instead of the head perturbations). MONAI's Dice and CE
replace SSL4MIS's own. ``net.name: ssl4mis_unet`` builds ``unet_urpc`` itself (3x3 heads,
nearest, element-wise dropout on the coarsest; its unused bottleneck head left out) with
bilinear upsampling: ``unet_urpc`` sets ``bilinear=False`` but its decoder never passes it on,
so its up blocks interpolate (``upsampling`` unset: ``linear`` there, ``transpose`` elsewhere).
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from medssl.engine.module import register_method
from medssl.losses.pyramid import pyramid_consistency
from medssl.methods.segment.consistency import ConsistencyConfig
from medssl.methods.segment.semi import SemiSupervisedMethod
from medssl.nets.multi_decoder import MainOutput, PerturbationKind, Upsampling, from_net_config


class URPCConfig(ConsistencyConfig):
    scales: int = Field(4, ge=2)  # pyramid outputs, capped at the decoder's levels
    upsampling: Upsampling | None = None  # None: linear on ssl4mis_unet, else transpose
    aux_perturbations: list[PerturbationKind] = Field(
        default_factory=lambda: ["noise", "feature_dropout", "dropout"]  # finest aux head first
    )


@register_method("urpc")
class URPC(SemiSupervisedMethod):
    Config = URPCConfig

    def build_net(self):
        upsampling = self.hp.upsampling
        if upsampling is None:
            upsampling = "linear" if self.run_config.net.name == "ssl4mis_unet" else "transpose"
        return from_net_config(
            self.run_config.net,
            self.spatial_dims,
            int(self.dataset_info["in_channels"]),
            self.num_classes,
            upsampling=[upsampling],
            deep_supervision=self.hp.scales,
            head_perturbations=["none", *self.hp.aux_perturbations],
        )

    def inference_net(self):
        return MainOutput(self.net)

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        x_l, y_l, x_u = self.split_batch(batch)
        outputs = self(self.all_images(x_l, x_u))
        n = len(x_l)
        supervised = torch.stack([self.supervised_loss(x[:n], y_l) for x in outputs]).mean()
        if x_u is None:
            consistency = torch.zeros((), device=supervised.device)
        else:
            consistency = pyramid_consistency([x[n:] for x in outputs])
        return self.combine_losses(supervised, consistency)
