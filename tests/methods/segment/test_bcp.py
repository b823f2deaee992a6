"""BCP: the teacher's one-time re-initialisation at the stage switch, the bidirectional loss of a
step against the hand-written mix, the per-dimension schedule, and short 2D/3D runs. The mask,
mixing and loss are tested in tests/losses/test_copy_paste.py, the pseudo labels' largest
component in tests/metrics/test_postprocess.py."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
import yaml

from medssl.engine.config import RunConfig
from medssl.losses.copy_paste import mix, mix_loss
from medssl.methods.segment.bcp import BCP
from tests.conftest import TINY_SEG_CONFIG, train_tiny


def _tiny_bcp(max_steps: int = 4, **method_config) -> BCP:
    run_config = {
        "task": "segmentation",
        "method": "bcp",
        "data": {"spatial_dims": 2, "patch_size": [16, 16]},
        "net": {"channels": [4, 8], "num_res_units": 0},
        "train": {"max_steps": max_steps},
        "method_config": {"pretrain_fraction": 0.5, **method_config},
    }
    info = {"num_classes": 3, "spatial_dims": 2, "in_channels": 1, "data_dims": 2}
    return BCP(run_config, info)


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_teacher_is_copied_from_the_student_once_at_the_switch_then_follows_by_ema(monkeypatch):
    monkeypatch.setattr(BCP, "global_step", property(lambda self: self.fake_step))
    torch.manual_seed(0)
    model = _tiny_bcp(pretrain_fraction=0.5, max_steps=4)
    assert model.switch_step == 2
    batch = {
        "labeled": {
            "image": torch.randn(2, 1, 16, 16),
            "label": torch.randint(0, 3, (2, 1, 16, 16)),
        },
        "unlabeled": {"image": torch.randn(2, 1, 16, 16)},
    }
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(0.5)  # stage-1 training moved the student away from the initial teacher
    initial_teacher = _params(model.teacher)

    model.fake_step = 1  # stage 1: supervised copy-paste; no teacher involved
    losses = model.training_losses(batch)
    assert losses["stage"].item() == 1 and torch.isfinite(losses["loss"])
    assert model.momentum_pairs() == []
    assert _same(_params(model.teacher), initial_teacher)

    model.fake_step = 2  # the switch: teacher = student, then EMA pairs are declared
    losses = model.training_losses(batch)
    assert losses["stage"].item() == 2 and torch.isfinite(losses["loss"])
    assert _same(_params(model.teacher), _params(model.net))
    assert model.momentum_pairs() == [(model.net, model.teacher)]

    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(1.0)  # an optimiser step
    teacher_before, student = _params(model.teacher), _params(model.net)
    model.fake_step = 3
    model.on_train_batch_end(None, batch, 0)  # engine EMA, decay min(1 - 1/4, 0.99) = 0.75
    for t, t0, s in zip(_params(model.teacher), teacher_before, student, strict=True):
        torch.testing.assert_close(t, 0.75 * t0 + 0.25 * s)

    teacher_after_ema = _params(model.teacher)
    no_pool = {"labeled": batch["labeled"]}  # without an unlabelled pool: labelled stand in
    losses = model.training_losses(no_pool)
    assert torch.isfinite(losses["loss"])
    assert _same(_params(model.teacher), teacher_after_ema)

    resumed = _tiny_bcp()
    resumed.load_state_dict(model.state_dict())
    assert bool(resumed.teacher_ready)  # a resumed run does not re-copy the teacher


def test_bidirectional_loss_matches_the_hand_written_mix_with_batch_of_one(monkeypatch):
    monkeypatch.setattr(BCP, "global_step", property(lambda self: 5))
    torch.manual_seed(1)
    model = _tiny_bcp(pretrain_fraction=0.0, largest_cc=False)
    mask = torch.ones(1, 1, 16, 16)
    mask[..., 2:12, 3:13] = 0
    monkeypatch.setattr(model, "new_mask", lambda like: mask)
    x_l, x_u = torch.randn(1, 1, 16, 16), torch.randn(1, 1, 16, 16)
    y_l = torch.randint(0, 3, (1, 1, 16, 16))
    batch = {"labeled": {"image": x_l, "label": y_l}, "unlabeled": {"image": x_u}}
    losses = model.training_losses(batch)
    with torch.no_grad():
        p_u = model.teacher(x_u).argmax(1, keepdim=True)
        x_in, x_out = mix(x_l, x_u, mask), mix(x_u, x_l, mask)
        y_in, y_out = mix(y_l, p_u, mask), mix(p_u, y_l, mask)
        expected = mix_loss(model.net(x_in), y_in, mask, 1.0, 0.5) + mix_loss(
            model.net(x_out), y_out, mask, 0.5, 1.0
        )
    assert losses["loss"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_default_pretrain_fraction_follows_the_paper_per_dimension():
    three = BCP.finalize_config(RunConfig(task="segmentation", data={"spatial_dims": 3}))
    two = BCP.finalize_config(RunConfig(task="segmentation", data={"spatial_dims": 2}))
    assert three.method_config["pretrain_fraction"] == pytest.approx(2000 / 17000)
    assert two.method_config["pretrain_fraction"] == pytest.approx(0.25)
    kept = BCP.finalize_config(
        RunConfig(task="segmentation", method_config={"pretrain_fraction": 0.3})
    )
    assert kept.method_config["pretrain_fraction"] == 0.3


@pytest.mark.parametrize("dims", [3, 2])
def test_bcp_trains_through_both_stages(seg_phantom: Path, tmp_path: Path, dims: int):
    config = {
        **TINY_SEG_CONFIG,
        "data": {**TINY_SEG_CONFIG["data"], "spatial_dims": dims},
        "train": {**TINY_SEG_CONFIG["train"], "val_every": 4},
        "method_config": {"pretrain_fraction": 0.5},
    }
    run = train_tiny(seg_phantom, tmp_path / "run", 4, method="bcp", config=config)
    rows = [r for r in csv.DictReader((run / "metrics.csv").open()) if r.get("train/loss")]
    assert [float(r["train/stage"]) for r in rows] == [1.0, 1.0, 2.0, 2.0]
    assert all(math.isfinite(float(r["train/loss"])) for r in rows)
    assert all(math.isfinite(float(rows[-1][k])) for k in ("train/loss_in", "train/loss_out"))
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["method_config"]["pretrain_fraction"] == 0.5
