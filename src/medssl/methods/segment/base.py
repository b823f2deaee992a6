"""The segmentation family's base: one network, (Dice + CE) / 2, sliding-window inference, val Dice.

Every segmentation method (supervised, mean teacher, CPS, ...) inherits this and only adds its
extra networks and losses. Inference handles both 3D networks (MONAI sliding window over the
volume) and 2D networks on 3D volumes (slice by slice along the last axis).
"""

from __future__ import annotations

from typing import Any

import torch
from monai.inferers import sliding_window_inference
from monai.metrics import compute_dice
from monai.networks.utils import one_hot
from torch import nn

from medssl.data.derived import input_channels
from medssl.engine.module import MethodModule
from medssl.losses.segmentation import dice_ce_loss
from medssl.nets.factory import net_from_config


def as_plain(x: torch.Tensor) -> torch.Tensor:
    """Drop MONAI's MetaTensor wrapper: metadata is not needed past the data pipeline."""
    return x.as_tensor() if hasattr(x, "as_tensor") else x


class SegmentationMethod(MethodModule):
    task = "segmentation"

    def __init__(self, run_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
        super().__init__(run_config, dataset_info)
        self.num_classes = int(dataset_info["num_classes"])
        self.spatial_dims = int(dataset_info["spatial_dims"])
        self.data_dims = int(dataset_info.get("data_dims", self.spatial_dims))
        self.patch_size = list(self.run_config.data.patch_size or [])
        self.net = self.build_net()
        self.supervised_loss = dice_ce_loss()  # (Dice + CE) / 2, the papers' scale

    def build_net(self) -> nn.Module:
        """The family's network, built from ``run_config.net`` by the factory."""
        channels = input_channels(
            int(self.dataset_info["in_channels"]), self.run_config.data.derived_channels
        )
        return net_from_config(self.run_config.net, self.spatial_dims, channels, self.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def inference_net(self) -> nn.Module:
        """The network used at test time (a teacher for EMA methods, if they choose)."""
        return self.net

    # -- inference -------------------------------------------------------------------------
    @torch.no_grad()
    def predict_logits(self, image: torch.Tensor) -> torch.Tensor:
        """Logits (1, K, *spatial) for one whole preprocessed image (1, C, *spatial)."""
        net = self.inference_net()
        data = self.run_config.data  # the segmentation task's data settings
        if self.spatial_dims == 2 and image.ndim == 5:
            # 2D network on a 3D volume: the depth axis becomes the batch.
            slices = image[0].permute(3, 0, 1, 2)  # (D, C, H, W)
            logits = sliding_window_inference(
                slices,
                self.patch_size,
                data.sw_batch_size,
                net,
                overlap=data.sw_overlap,
                mode="gaussian",
            )
            return logits.permute(1, 2, 3, 0).unsqueeze(0)
        return sliding_window_inference(
            image,
            self.patch_size,
            data.sw_batch_size,
            net,
            overlap=data.sw_overlap,
            mode="gaussian",
        )

    def predict_labels(self, image: torch.Tensor) -> torch.Tensor:
        return self.predict_logits(image).argmax(dim=1, keepdim=True)

    # -- validation: mean foreground Dice per case -------------------------------------------
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        pred = self.predict_labels(as_plain(batch["image"]))
        label = as_plain(batch["label"]).long()
        dice = compute_dice(
            one_hot(pred, self.num_classes),
            one_hot(label, self.num_classes),
            include_background=False,
            ignore_empty=False,  # empty GT and empty prediction -> 1, as metrics' policy
        )
        self.log(
            "val/dice", dice.nanmean(), on_epoch=True, batch_size=1, sync_dist=True, prog_bar=True
        )
