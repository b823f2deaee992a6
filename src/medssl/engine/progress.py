"""Plain progress lines for non-interactive runs (CI logs, pipes), where no rich bar renders."""

from __future__ import annotations

import sys
import time

import lightning as L


class LineProgress(L.Callback):
    """Print ``step N/M  loss  val/dice  it/s`` every ``every`` steps to stderr (rank 0 only)."""

    def __init__(self, every: int = 50) -> None:
        self.every = max(1, every)
        self._start = 0.0
        self._first_step = 0

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._start, self._first_step = time.perf_counter(), trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if not trainer.is_global_zero or (step % self.every and step != trainer.max_steps):
            return
        metrics = trainer.callback_metrics
        parts = [f"step {step}/{trainer.max_steps}"]
        for key in ("loss", "val/dice"):
            if key in metrics:
                parts.append(f"{key} {float(metrics[key]):.4f}")
        elapsed = time.perf_counter() - self._start
        if elapsed > 0:
            parts.append(f"{(step - self._first_step) / elapsed:.2f} it/s")
        print("  ".join(parts), file=sys.stderr, flush=True)
