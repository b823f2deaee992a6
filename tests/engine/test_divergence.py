"""The divergence guard: NaN weights stop the run with one line; finite ones never do."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from medssl.engine.divergence import loss_value, weights_finite
from medssl.errors import TrainingError
from tests.conftest import TINY_SEG_CONFIG, train_tiny


def test_weights_finite_looks_at_trainable_weights_only():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    assert weights_finite(net)
    with torch.no_grad():
        net[1].weight[0, 0] = float("nan")
    assert not weights_finite(net)
    net[1].weight.requires_grad_(False)  # a frozen encoder's NaN is not the run diverging
    assert weights_finite(net)


def test_loss_value_reads_a_tensor_or_a_dict():
    assert loss_value(torch.tensor(0.5)) == 0.5
    assert loss_value({"loss": torch.tensor(float("inf"))}) == float("inf")
    assert loss_value(None) is None


def test_a_diverging_run_stops_with_one_line_and_leaves_no_run(seg_phantom: Path, tmp_path: Path):
    config = copy.deepcopy(TINY_SEG_CONFIG) | {"optim": {"lr": 1e30}}
    out = tmp_path / "run"
    with pytest.raises(TrainingError) as info:
        train_tiny(seg_phantom, out=out, max_steps=8, config=config)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(out))
    assert "diverged by step" in message and "optim.lr (now 1e+30)" in message
    assert not out.exists()  # no checkpoint was written before it: nothing is left behind


def test_a_healthy_run_is_not_stopped(tiny_run: Path):
    last = torch.load(tiny_run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 4  # the guard checked every step of it and let it finish
