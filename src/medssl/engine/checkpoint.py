"""Checkpoints written atomically (temp file + rename) and read with ``weights_only=True``.

A killed run never leaves a half-written ``last.ckpt``: the old file stays until the new one is
complete. Loading with ``weights_only=True`` refuses pickled code, so a checkpoint from elsewhere
cannot execute anything.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        reason = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise file_error(
            path,
            f"not a readable medssl checkpoint ({reason})",
            "retrain or pass another run",
            CheckpointError,
        ) from None


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
