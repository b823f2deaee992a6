"""A test-only pretext method (denoise a noisy patch with the run's UNet) for the pretrain task's
tests; the real pretext methods (VoCo, Rubik's cube+, C2L) come with their own issue."""

from __future__ import annotations

from typing import Any

import torch

from medssl.engine.module import METHODS, MethodModule, register_method
from medssl.nets.factory import create_net

NAME = "toy_denoise"


class Denoise(MethodModule):
    task = "pretrain"
    streams = ("unlabeled",)

    def __init__(self, run_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
        super().__init__(run_config, dataset_info)
        net, channels = self.run_config.net, int(dataset_info["in_channels"])
        self.net = create_net(
            net.name,
            int(dataset_info["spatial_dims"]),
            channels,
            channels,
            channels=net.channels,
            strides=net.strides,
            num_res_units=net.num_res_units,
        )

    def pretext_loss(self, image: torch.Tensor) -> torch.Tensor:
        noisy = image + 0.5 * torch.randn_like(image)
        return torch.nn.functional.mse_loss(self.net(noisy), image)

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"loss": self.pretext_loss(batch["unlabeled"]["image"])}

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        generator = torch.Generator().manual_seed(batch_idx)  # the same noise at every check
        image = batch["image"]
        noise = torch.randn(image.shape, generator=generator).to(image)
        loss = torch.nn.functional.mse_loss(self.net(image + 0.5 * noise), image)
        self.log("val/pretext_loss", loss, on_epoch=True, batch_size=image.shape[0])


if f"pretrain/{NAME}" not in METHODS:
    register_method(NAME)(Denoise)
