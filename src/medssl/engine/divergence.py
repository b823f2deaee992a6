"""Stop a run whose weights have gone NaN/inf, with a one-line error instead of hours of NaN.

A single non-finite loss is not fatal by itself (fp16 loss scaling skips such steps), but
weights that are no longer finite never recover: every later step and validation is NaN, and
the run would go on to its last iteration saving nothing better than what it had. So every
``every`` steps the guard checks the trainable weights (one device sync per check) and raises
:class:`TrainingError`, naming the run directory, the step, the loss and the settings to change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

from medssl.errors import TrainingError, file_error


def weights_finite(module: torch.nn.Module) -> bool:
    """Whether every trainable parameter of ``module`` is finite."""
    flags = [p.detach().isfinite().all() for p in module.parameters() if p.requires_grad]
    return bool(torch.stack(flags).all()) if flags else True


def loss_value(outputs: Any) -> float | None:
    """The step's loss as a float, from what ``training_step`` returned (tensor or dict)."""
    loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
    return float(loss.detach()) if isinstance(loss, torch.Tensor) else None


class DivergenceGuard(L.Callback):
    """Raises :class:`TrainingError` once the trainable weights stop being finite."""

    def __init__(self, run_dir: Path, lr: float, precision: str, every: int = 50) -> None:
        self.run_dir, self.lr, self.precision = run_dir, lr, precision
        self.every = max(1, every)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step % self.every or weights_finite(module):
            return
        loss = loss_value(outputs)
        fix = f"lower optim.lr (now {self.lr:g})"
        if not self.precision.startswith("32"):
            fix += f" or train in 32-bit (train.precision: 32, now {self.precision})"
        raise file_error(
            self.run_dir,
            f"training diverged by step {step}: the weights are no longer finite "
            f"(loss {loss if loss is not None else 'unknown'})",
            f"{fix} and rerun with --force; checkpoints/best.ckpt, if there, is from before it",
            cls=TrainingError,
        )
