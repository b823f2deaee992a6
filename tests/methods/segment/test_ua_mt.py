"""UA-MT: the ramped entropy threshold, the teacher's passes and the EMA teacher (the entropy
mask and masked consistency themselves: tests/losses/test_uncertainty.py)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from medssl.errors import ConfigError
from medssl.methods.segment.ua_mt import UAMT, uncertainty_threshold
from tests.conftest import TINY_SEG_CONFIG, train_tiny

LN2 = math.log(2)


def _module(classes: int = 2, **method_config) -> UAMT:
    """A small 2D UA-MT built directly (no trainer), with the method's default dropout."""
    cfg = {
        "task": "segmentation",
        "method": "ua_mt",
        "net": {"channels": [8, 16], "num_res_units": 0, "dropout": 0.1},
        "data": {"patch_size": [16, 16]},
        "train": {"max_steps": 10},
        "method_config": method_config,
    }
    return UAMT(cfg, {"num_classes": classes, "spatial_dims": 2, "in_channels": 1})


def _batch(classes: int = 2) -> dict:
    torch.manual_seed(0)
    return {
        "labeled": {
            "image": torch.randn(2, 1, 16, 16),
            "label": torch.randint(0, classes, (2, 1, 16, 16)),
        },
        "unlabeled": {"image": torch.randn(2, 1, 16, 16)},
    }


def test_threshold_ramps_from_three_quarters_of_ln2_to_ln2():
    start, end = uncertainty_threshold(0, 1000), uncertainty_threshold(1000, 1000)
    assert start == pytest.approx((0.75 + 0.25 * math.exp(-5)) * LN2)
    assert start == pytest.approx(0.75 * LN2, abs=2e-3)
    assert end == pytest.approx(LN2)
    values = [uncertainty_threshold(s, 1000) for s in range(0, 1001, 50)]
    assert values == sorted(values)
    # ln 2 whatever K by default (official); the switch uses the K-class maximum.
    assert uncertainty_threshold(1000, 1000, num_classes=4) == pytest.approx(LN2)
    assert uncertainty_threshold(1000, 1000, 4, "lnK") == pytest.approx(math.log(4))


def test_teacher_passes_are_stochastic_samples_of_the_right_shape():
    module = _module(classes=3)
    probs = module.teacher_passes(torch.randn(2, 1, 16, 16))
    assert probs.shape == (8, 2, 3, 16, 16)
    assert torch.allclose(probs.sum(dim=2), torch.ones(8, 2, 16, 16), atol=1e-5)
    assert not torch.allclose(probs[0], probs[1])  # noise and dropout differ between passes


def test_passes_must_split_into_forwards():
    with pytest.raises(ConfigError, match="copies_per_forward"):
        _module(uncertainty_passes=5)


def test_ema_teacher_moves_and_stays_behind_the_student():
    module = _module()
    batch = _batch()
    optimiser = module.configure_optimizers()["optimizer"]
    start = [p.clone() for p in module.teacher.parameters()]
    for step in range(3):
        module._trainer = SimpleNamespace(global_step=step)
        losses = module.training_losses(batch)
        assert all(torch.isfinite(v) for v in losses.values())
        optimiser.zero_grad()
        losses["loss"].backward()
        optimiser.step()
        module.on_train_batch_end(None, batch, step)
    module._trainer = None
    teacher, student = list(module.teacher.parameters()), list(module.net.parameters())
    assert all(p.grad is None for p in teacher)  # moved by EMA only
    assert any(not torch.equal(t, s) for t, s in zip(teacher, start, strict=True))
    assert any(not torch.allclose(t, s) for t, s in zip(teacher, student, strict=True))


def test_without_an_unlabelled_pool_the_labelled_images_are_the_stream():
    module = _module()
    batch = _batch()
    del batch["unlabeled"]
    losses = module.training_losses(batch)
    assert torch.isfinite(losses["loss"])
    assert 0.0 <= losses["certain_fraction"].item() <= 1.0


@pytest.mark.parametrize("dims", [3, 2])
def test_ua_mt_trains_a_few_steps(seg_phantom: Path, tmp_path: Path, dims: int):
    # No validation split: slice-by-slice validation of a volume would dominate the 2D run.
    data = {**TINY_SEG_CONFIG["data"], "spatial_dims": dims, "val_cases": 0}
    config = {**TINY_SEG_CONFIG, "data": data}
    run = train_tiny(seg_phantom, tmp_path / "run", 2, method="ua_mt", config=config)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["net"]["dropout"] == 0.1  # the method's MC-dropout default
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    train_rows = [r for r in rows if r.get("train/loss")]
    assert len(train_rows) == 2
    for row in train_rows:
        for key in ("loss", "supervised", "consistency", "certain_fraction", "threshold"):
            assert math.isfinite(float(row[f"train/{key}"])), key
        assert 0.75 * LN2 - 1e-3 < float(row["train/threshold"]) <= LN2
