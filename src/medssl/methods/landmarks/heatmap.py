"""Heatmap regression: a UNet draws one heatmap per landmark, read out by soft-argmax.

The plain baseline every landmark method is measured against (Payer et al. 2019's family, in
its integral-regression form). The network is the factory's UNet (``net.name``, default
``unet``) giving ``features`` maps at full resolution, then a PReLU and a 1x1 convolution that
reads one heatmap per landmark from them: ``(B, C, X, Y) -> (B, L, X, Y)`` logits (the UNet's
own last layer drawing all L maps would cost the 166 chest contour points ten times the rest of
the network). Each landmark's map is a spatial softmax:

* heatmap loss: the KL divergence from a Gaussian of ``sigma`` pixels around the true point
  (normalised to sum 1) to that softmax, so that the map is one sharp, unimodal peak (DSNT's
  regulariser, Nibali et al. 2018, with KL in place of their JS divergence);
* coordinate loss: the L1 distance between the map's expectation (soft-argmax, Sun et al.'s
  integral regression) and the true point, in units of the longer input side, so that the
  read-out is trained where it is used;
* decoding: the soft-argmax itself, sub-pixel and differentiable.

Decisions where no paper is the reference: ``sigma`` 2 input pixels (a peak narrower than the
landmarks' spacing on a 256-pixel input), both losses weighted 1, 32 feature maps. A missing
landmark (null in ``landmarks.json``) has neither loss: its map gets no gradient at all.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from pydantic import Field
from torch import nn

from medssl.engine.module import MethodConfig, register_method
from medssl.errors import ConfigError
from medssl.losses.landmarks import coordinate_loss, heatmap_distribution_loss, soft_argmax
from medssl.methods.landmarks.base import LandmarkMethod
from medssl.nets.factory import CLASSIFIERS, downsample_factor, net_from_config


class HeatmapConfig(MethodConfig):
    #: the target Gaussian's standard deviation, in network input pixels
    sigma: float = Field(2.0, gt=0)
    heat_weight: float = Field(1.0, ge=0)
    coord_weight: float = Field(1.0, ge=0)
    #: maps the UNet gives at full resolution, read by the per-landmark 1x1 convolution
    features: int = Field(32, gt=0)


@register_method("heatmap")
class HeatmapLandmarks(LandmarkMethod):
    Config = HeatmapConfig
    default_overrides = {"net": {"name": "unet"}}

    def __init__(self, run_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
        super().__init__(run_config, dataset_info)
        net = self.run_config.net
        if net.name in CLASSIFIERS:
            raise ConfigError(
                f"method 'heatmap' draws maps: net.name {net.name!r} is a classifier; use a "
                "segmentation network (unet), or method 'ccf' for a ResNet"
            )
        self.check_input_size(downsample_factor(net.name, net.strides), net.name)
        self.net = nn.Sequential(
            OrderedDict(
                unet=net_from_config(net, 2, self.in_channels, self.hp.features),
                act=nn.PReLU(),
                head=nn.Conv2d(self.hp.features, self.num_landmarks, 1),
            )
        )

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        labeled = batch["labeled"]
        points = labeled["landmarks"].float()
        logits = self(labeled["image"])
        heat = heatmap_distribution_loss(logits, points, self.hp.sigma)
        coord = coordinate_loss(soft_argmax(logits), points, float(max(self.image_size)))
        loss = self.hp.heat_weight * heat + self.hp.coord_weight * coord
        return {"loss": loss, "heat": heat, "coord": coord}

    @torch.no_grad()
    def predict_landmarks(self, batch: dict[str, Any]) -> dict[str, torch.Tensor | None]:
        return {"points": soft_argmax(self(batch["image"]))}
