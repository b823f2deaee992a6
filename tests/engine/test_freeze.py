"""Fine-tuning with a frozen encoder: for the first K steps, or for the whole run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medssl.engine.checkpoint import load_checkpoint
from medssl.errors import ConfigError
from tests.conftest import TINY_SEG_CONFIG, train_tiny

ENCODER = "net.model.0."  # MONAI UNet's first down block (the student's)
DECODER = "net.model.2."  # its last up block


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run / "checkpoints" / "last.ckpt")["state_dict"]


def _part(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    found = {k: v for k, v in state.items() if k.startswith(prefix)}
    assert found, f"no tensor under {prefix}"
    return found


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def _fine_tune(seg_phantom, tiny_run, out, steps, freeze):
    config = {**TINY_SEG_CONFIG, "freeze_encoder": freeze, "plan": False}
    return train_tiny(
        seg_phantom, out, max_steps=steps, method="supervised", init=str(tiny_run), config=config
    )


def test_frozen_for_good_keeps_the_encoder_and_trains_the_rest(seg_phantom, tiny_run, tmp_path):
    start = _weights(tiny_run)
    after = _weights(_fine_tune(seg_phantom, tiny_run, tmp_path / "probe", 3, "all"))
    assert _same(_part(start, ENCODER), _part(after, ENCODER))  # running stats too
    assert not _same(_part(start, DECODER), _part(after, DECODER))


def test_frozen_for_k_steps_then_trained(seg_phantom, tiny_run, tmp_path):
    start = _weights(tiny_run)
    held = _weights(_fine_tune(seg_phantom, tiny_run, tmp_path / "k2", 2, 2))
    assert _same(_part(start, ENCODER), _part(held, ENCODER))
    moved = _weights(_fine_tune(seg_phantom, tiny_run, tmp_path / "k2of4", 4, 2))
    assert not _same(_part(start, ENCODER), _part(moved, ENCODER))


def test_freezing_without_init_is_one_line(seg_phantom, tmp_path):
    config = {**TINY_SEG_CONFIG, "freeze_encoder": "all"}
    with pytest.raises(ConfigError, match="add --init RUN"):
        train_tiny(seg_phantom, tmp_path / "r", max_steps=1, config=config)
    assert not (tmp_path / "r").exists()
