"""Plain progress lines for non-interactive runs (CI logs, pipes), where no rich bar renders."""

from __future__ import annotations

import sys
import time

import lightning as L


class LineProgress(L.Callback):
    """Print ``step N/M  loss  <monitor>  it/s`` every ``every`` steps to stderr (rank 0 only);
    the monitor is the run's (segmentation: ``val/dice``), so the engine names no task's metric."""

    def __init__(self, every: int = 50, monitor: str | None = None) -> None:
        self.every = max(1, every)
        self.keys = ("loss", monitor) if monitor else ("loss",)
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
        for key in self.keys:
            if key in metrics:
                parts.append(f"{key} {float(metrics[key]):.4f}")
        elapsed = time.perf_counter() - self._start
        if elapsed > 0:
            parts.append(f"{(step - self._first_step) / elapsed:.2f} it/s")
        print("  ".join(parts), file=sys.stderr, flush=True)


class DataWaitMonitor(L.Callback):
    """Logs the share of training time spent waiting for data (``perf/data_wait``) and it/s.

    The gap between the end of one training batch and the start of the next is the loader's
    fetch (validation runs in that gap too and is left out); the rest is compute. A share near
    0 means data loading is not the bottleneck. Benchmarks report it beside throughput.
    """

    def __init__(self, every: int = 50) -> None:
        self.every = max(1, every)
        self._last_end: float | None = None
        self._start = 0.0
        self._validation = 0.0
        self._reset()

    def _reset(self) -> None:
        self.wait, self.compute, self.steps = 0.0, 0.0, 0

    def on_validation_start(self, trainer, module) -> None:
        self._validation = time.perf_counter()

    def on_validation_end(self, trainer, module) -> None:
        if self._last_end is not None:  # shift the gap's start past the validation
            self._last_end += time.perf_counter() - self._validation

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self._start = time.perf_counter()
        if self._last_end is not None:
            self.wait += self._start - self._last_end

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self._last_end = time.perf_counter()
        self.compute += self._last_end - self._start
        self.steps += 1
        total = self.wait + self.compute
        if self.steps >= self.every and total > 0:
            module.log("perf/data_wait", self.wait / total, on_step=True, batch_size=1)
            module.log("perf/it_per_s", self.steps / total, on_step=True, batch_size=1)
            self._reset()
