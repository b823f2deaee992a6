"""The base of every pretext method: a backbone from the run's ``net``, its encoder, the pretext
loss trained on the unlabelled stream and monitored on fixed validation patches.

A method says only what its paper says: ``pretext_losses(image, generator)``, the losses of one
batch of patches (``"loss"`` is optimised, the others are logged); ``generator`` is None in
training and a seeded ``torch.Generator`` in validation, so that every check draws the same
crops, permutations or augmentations and the monitored ``val/pretext_loss`` compares like with
like. The backbone is the downstream network itself (``self.backbone``): training its encoder
(``self.encoder``, :func:`medssl.nets.encoders.encoder_of`, shared weights) trains the network
whose encoder the run exports for ``train --init``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from medssl.engine.module import MethodModule
from medssl.nets.encoders import Encoder, encoder_of
from medssl.nets.factory import net_from_config


class PretrainMethod(MethodModule):
    task = "pretrain"
    streams = ("unlabeled",)

    def __init__(self, run_config: dict[str, Any], dataset_info: dict[str, Any]) -> None:
        super().__init__(run_config, dataset_info)
        self.spatial_dims = int(dataset_info["spatial_dims"])
        self.in_channels = int(dataset_info["in_channels"])
        self.backbone = self.build_backbone()
        self.encoder: Encoder = encoder_of(self.backbone)
        # the rest of the downstream network (decoder, output layer) gets no gradient from a
        # pretext loss: frozen, so that DDP does not wait for gradients that never come
        trained = {id(p) for p in self.encoder.parameters()}
        for parameter in self.backbone.parameters():
            if id(parameter) not in trained:
                parameter.requires_grad_(False)

    def build_backbone(self) -> nn.Module:
        """The downstream network (the run's ``net``; its output layer is not trained here)."""
        return net_from_config(self.run_config.net, self.spatial_dims, self.in_channels, 2)

    def pretext_losses(
        self, image: torch.Tensor, generator: torch.Generator | None
    ) -> dict[str, torch.Tensor]:
        """The pretext losses of ``image`` ``(B, C, *patch)``; ``"loss"`` is optimised."""
        raise NotImplementedError

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return self.pretext_losses(batch["unlabeled"]["image"], None)

    #: validation images kept for :meth:`pretext_summary` (the first batch's, at most this many)
    summary_volumes: int = 3

    def pretext_summary(self) -> dict[str, np.ndarray] | None:
        """What the encoder learned, as arrays the report plots (``RUN/pretext_summary.npz``);
        computed after training on :attr:`summary_images`. None: nothing beyond the losses."""
        return None

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        image = batch["image"]
        if batch_idx == 0:  # the same fixed validation patches at every check
            self.summary_images = image[: self.summary_volumes].detach().cpu()
        generator = torch.Generator().manual_seed(int(batch_idx))  # same draws at every check
        losses = self.pretext_losses(image, generator)
        size = int(image.shape[0])
        self.log("val/pretext_loss", losses["loss"], on_epoch=True, batch_size=size)
        for name, value in losses.items():
            if name != "loss":
                self.log(f"val/{name}", value, on_epoch=True, batch_size=size)


def draw(generator: torch.Generator | None, *size: int) -> torch.Tensor:
    """Uniform [0, 1) numbers from ``generator`` (validation) or the global seeded stream."""
    return torch.rand(size, generator=generator) if generator is not None else torch.rand(size)


def draw_int(generator: torch.Generator | None, high: int, *size: int) -> torch.Tensor:
    """Integers in [0, high) from ``generator`` or the global stream (CPU tensors)."""
    if generator is not None:
        return torch.randint(high, size, generator=generator)
    return torch.randint(high, size)
