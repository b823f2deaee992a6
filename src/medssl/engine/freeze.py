"""Fine-tuning from a pretrained encoder with the encoder frozen: for the first K steps (the new
decoder or head first learns to read the pretrained features) or for the whole run (a linear
probe when the rest is a linear head).

Frozen means no gradient (``requires_grad`` off, so the optimiser, which holds every parameter
from the start, skips them: no update, no weight decay) and batch-norm statistics left as
pretrained (the encoder's modules in eval mode). Every backbone of the method is frozen alike,
a student and the networks it is copied to, so an EMA teacher sees the same encoder. Unfreezing
gives gradients back only to the parameters that had them (an EMA teacher's stay without).
"""

from __future__ import annotations

from typing import Any

import lightning as L
from torch import nn

from medssl.nets.encoder_keys import encoders_in
from medssl.nets.encoders import encoder_of


def encoder_modules(module: nn.Module) -> list[nn.Module]:
    """The encoder of every backbone in ``module`` (shared modules, not copies)."""
    return [encoder_of(net) for _, net, _ in encoders_in(module)]


class EncoderFreeze(L.Callback):
    """Keeps the encoders frozen while ``global_step < steps`` (``steps`` None: always)."""

    def __init__(self, steps: int | None) -> None:
        self.steps = steps
        self.encoders: list[nn.Module] = []  # found once, at the start of training
        self.frozen: list[nn.Parameter] = []  # what this callback took the gradient from

    def _active(self, step: int) -> bool:
        return self.steps is None or step < self.steps

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._active(trainer.global_step):  # resumed past the frozen steps
            return
        self.encoders = encoder_modules(pl_module)  # after the optimiser took every parameter
        self.frozen = [
            p for encoder in self.encoders for p in encoder.parameters() if p.requires_grad
        ]
        for parameter in self.frozen:
            parameter.requires_grad_(False)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if not self.encoders:
            return
        if not self._active(trainer.global_step):
            for parameter in self.frozen:
                parameter.requires_grad_(True)
            for encoder in self.encoders:  # batch norm learns again from here, not next epoch
                encoder.train(pl_module.training)
            self.encoders, self.frozen = [], []
            return
        for encoder in self.encoders:  # Lightning puts the module in train mode every epoch
            encoder.eval()
