"""Checkpoints written atomically (temp file + rename) and read with ``weights_only=True``.

A killed run never leaves a half-written ``last.ckpt``: the old file stays until the new one is
complete. Loading with ``weights_only=True`` refuses pickled code, so a checkpoint from elsewhere
cannot execute anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from medssl.atomic import verify_zip, write_atomic
from medssl.errors import CheckpointError, file_error


def plain_tensors(obj: Any) -> Any:
    """Replace tensor subclasses (MONAI's MetaTensor) by plain tensors so weights_only can load."""
    if (
        isinstance(obj, torch.Tensor)
        and type(obj) is not torch.Tensor
        and not isinstance(obj, torch.nn.Parameter)
    ):
        return obj.as_subclass(torch.Tensor)
    if isinstance(obj, dict):
        return type(obj)((k, plain_tensors(v)) for k, v in obj.items())
    if isinstance(obj, list | tuple) and not hasattr(obj, "_fields"):
        return type(obj)(plain_tensors(v) for v in obj)
    return obj


def save_atomic(payload: Any, path: str | Path) -> None:
    """``torch.save`` through :func:`write_atomic`; the zip's CRCs are checked before the rename."""
    write_atomic(path, lambda tmp: torch.save(payload, tmp), verify_zip)


def short_reason(err: BaseException, limit: int = 120) -> str:
    """The first line of a library's message, cut at a word boundary (never mid-word)."""
    text = " ".join(str(err).strip().splitlines()[:1]).strip() or type(err).__name__
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " ..."


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely, with a one-line error for a missing or corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise file_error(
            path,
            "checkpoint not found",
            "train first or pass --resume only for an existing run",
            CheckpointError,
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file
        reason = short_reason(err)
        raise file_error(
            path,
            f"not a readable medssl checkpoint ({reason})",
            "retrain or pass another run",
            CheckpointError,
        ) from None


class BestAndLastCheckpoint(ModelCheckpoint):
    """``best.ckpt`` by the monitor, and ``last.ckpt`` after every validation.

    Lightning's ModelCheckpoint writes ``last`` only at a validation that also saved a top-k
    checkpoint, so once the monitor stops improving a killed run would lose every step since
    its best; here ``last`` follows each validation whatever the score.
    """

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint IO with atomic writes and safe loading."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        save_atomic(plain_tensors(checkpoint), path)

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint(path, map_location=map_location or "cpu")
