"""Fine-tuning from a pretrained encoder with the encoder frozen: for the first K steps (the new
decoder or head first learns to read the pretrained features) or for the whole run (a linear
probe when the rest is a linear head).

Frozen means no gradient (``requires_grad`` off, so the optimiser, which holds every parameter
from the start, skips them: no update, no weight decay) and batch-norm statistics left as
pretrained (the encoder's modules in eval mode). Every backbone of the method is frozen alike,
a student and the networks it is copied to, so an EMA teacher sees the same encoder.
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
        self.frozen = False

    def _active(self, step: int) -> bool:
        return self.steps is None or step < self.steps

    def _set(self, module: nn.Module, frozen: bool) -> None:
        for encoder in encoder_modules(module):
            for parameter in encoder.parameters():
                parameter.requires_grad_(not frozen)
        self.frozen = frozen

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._active(trainer.global_step):  # after the optimiser took every parameter
            self._set(pl_module, True)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.frozen and not self._active(trainer.global_step):
            self._set(pl_module, False)
        if self.frozen:  # Lightning puts the module in train mode at every epoch start
            for encoder in encoder_modules(pl_module):
                encoder.eval()
