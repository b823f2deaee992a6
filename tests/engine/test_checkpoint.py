"""Checkpoints: atomic writes, safe loads, no tensor subclasses inside."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch
from monai.data import MetaTensor

from medssl.engine.checkpoint import load_checkpoint, plain_tensors, save_atomic
from medssl.errors import CheckpointError, OutputError


def test_a_failed_save_keeps_the_previous_file(tmp_path: Path, monkeypatch):
    path = tmp_path / "last.ckpt"
    save_atomic({"step": 1}, path)

    def broken_save(obj, f, *a, **k):
        Path(f).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OutputError, match=r"last\.ckpt: cannot be written: disk full"):
        save_atomic({"step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left


def test_meta_tensors_become_plain_tensors_that_weights_only_loads(tmp_path: Path):
    payload = {"score": MetaTensor(torch.tensor(0.5)), "nested": [MetaTensor(torch.ones(2))]}
    save_atomic(plain_tensors(payload), tmp_path / "c.ckpt")
    loaded = load_checkpoint(tmp_path / "c.ckpt")
    assert type(loaded["score"]) is torch.Tensor and float(loaded["score"]) == 0.5
    assert type(loaded["nested"][0]) is torch.Tensor


def test_pickled_code_is_refused(tmp_path: Path):
    path = tmp_path / "evil.ckpt"
    torch.save({"obj": Path("x")}, path)  # an arbitrary class, not plain tensors/containers
    with pytest.raises(CheckpointError, match="evil.ckpt"):
        load_checkpoint(path)
