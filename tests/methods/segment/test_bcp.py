"""BCP: the copy-paste mask, the bidirectional mixing, the weighted loss, the pseudo labels' largest
component, the teacher's one-time re-initialisation at the stage switch, and short 2D/3D runs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
import yaml

from medssl.engine.config import RunConfig
from medssl.methods.segment.bcp import (
    BCP,
    bidirectional_mix,
    cuboid_mask,
    largest_component_per_class,
    mix,
    mix_loss,
    pair_up,
    region_loss,
)
from tests.conftest import TINY_SEG_CONFIG, train_tiny


@pytest.mark.parametrize("shape", [(12, 9, 6), (30, 33)])
def test_mask_is_ones_with_one_zero_box_of_two_thirds_each_side(shape):
    generator = torch.Generator().manual_seed(0)
    expected = [int(s * 2 / 3) for s in shape]
    for _ in range(5):
        mask = cuboid_mask(shape, 2 / 3, generator=generator)
        assert mask.shape == (1, 1, *shape)
        assert set(mask.unique().tolist()) == {0.0, 1.0}
        zeros = (mask[0, 0] == 0).nonzero()
        sides = (zeros.max(0).values - zeros.min(0).values + 1).tolist()
        assert sides == expected  # a box of exactly these sides ...
        assert len(zeros) == math.prod(expected)  # ... and nothing else is zero


def test_mask_position_varies():
    generator = torch.Generator().manual_seed(1)
    masks = {
        tuple(cuboid_mask((32, 32, 32), generator=generator).flatten().tolist()) for _ in range(6)
    }
    assert len(masks) > 1


def test_mix_keeps_the_first_outside_the_box_and_pastes_the_second_into_it():
    mask = cuboid_mask((8, 8), generator=torch.Generator().manual_seed(2))
    a, b = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8) + 2.0
    mixed = mix(a, b, mask)
    outside = mask.bool().expand_as(a)
    assert torch.equal(mixed[outside], a[outside])
    assert torch.equal(mixed[~outside], b[~outside])
    labels = mix(torch.ones(2, 1, 8, 8, dtype=torch.long), torch.full((2, 1, 8, 8), 3), mask)
    assert labels.dtype == torch.long
    assert torch.equal(labels, torch.where(outside, 1, 3))


def test_bidirectional_mix_pastes_unlabelled_into_labelled_and_back():
    mask = cuboid_mask((6, 6, 6), generator=torch.Generator().manual_seed(3))
    x_la, x_lb, x_ua, x_ub = (torch.full((1, 1, 6, 6, 6), float(v)) for v in (1, 2, 3, 4))
    y_la, y_lb, p_ua, p_ub = (torch.full((1, 1, 6, 6, 6), v) for v in (1, 2, 3, 4))
    x_in, y_in, x_out, y_out = bidirectional_mix(
        (x_la, x_lb), (y_la, y_lb), (x_ua, x_ub), (p_ua, p_ub), mask
    )
    m = mask.bool()
    # X_in = x_l_a * M + x_u_a * (1 - M); X_out = x_u_b * M + x_l_b * (1 - M); targets alike.
    assert torch.equal(x_in, torch.where(m, 1.0, 3.0)) and torch.equal(y_in, torch.where(m, 1, 3))
    assert torch.equal(x_out, torch.where(m, 4.0, 2.0))
    assert torch.equal(y_out, torch.where(m, 4, 2))


def _uniform_region_loss(n: int) -> float:
    """``(Dice + CE) / 2`` of zero logits (p = 1/2, K = 2) on ``n`` background voxels, by hand."""
    s = 1e-5
    dice_bg = (2 * 0.5 * n + s) / (0.5 * n + n + s)
    dice_fg = s / (0.5 * n + s)
    return ((1 - (dice_bg + dice_fg) / 2) + math.log(2)) / 2


def test_mix_loss_weights_the_pasted_unlabelled_region_by_half():
    mask = torch.ones(1, 1, 4, 4)
    mask[..., :2, :] = 0
    mask[..., 2, :2] = 0  # 10 pasted voxels, 6 outside: unequal regions expose a wrong weighting
    logits = torch.zeros(1, 2, 4, 4)
    target = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    inside, outside = _uniform_region_loss(10), _uniform_region_loss(6)
    loss = mix_loss(logits, target, mask, weight_outside=1.0, weight_inside=0.5)
    assert loss.item() == pytest.approx(outside + 0.5 * inside, rel=1e-5)
    flipped = mix_loss(logits, target, mask, weight_outside=0.5, weight_inside=1.0)
    assert flipped.item() == pytest.approx(0.5 * outside + inside, rel=1e-5)


def test_region_loss_only_sees_its_region():
    region = torch.zeros(1, 1, 4, 4)
    region[..., :2] = 1
    target = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    logits = torch.zeros(1, 2, 4, 4)
    logits[:, 0, :, :2] = 20.0  # confident and right inside the region
    before = region_loss(logits, target, region)
    logits[:, 1, :, 2:] = 20.0  # confidently wrong outside it
    assert region_loss(logits, target, region).item() == pytest.approx(before.item())
    assert before.item() < 1e-2


def test_largest_component_keeps_only_the_biggest_blob_of_each_class():
    labels = torch.zeros(1, 1, 8, 8, dtype=torch.long)
    labels[0, 0, :3, :3] = 1  # class 1: 9 voxels ...
    labels[0, 0, 6:, 6:] = 1  # ... and a 4-voxel blob
    labels[0, 0, 5, :4] = 2  # class 2: a row of 4 ...
    labels[0, 0, 4, 4] = 2  # ... joined only diagonally (full connectivity) to these two,
    labels[0, 0, 5, 5] = 2  # 6 voxels in all ...
    labels[0, 0, 7, 0] = 2  # ... and a single voxel
    kept = largest_component_per_class(labels, num_classes=3)
    expected = torch.zeros_like(labels)
    expected[0, 0, :3, :3] = 1
    expected[0, 0, 5, :4] = 2
    expected[0, 0, 4, 4] = 2
    expected[0, 0, 5, 5] = 2
    assert torch.equal(kept, expected)


def test_largest_component_in_3d_and_with_an_absent_class():
    labels = torch.zeros(2, 1, 5, 5, 5, dtype=torch.long)
    labels[0, 0, :2, :2, :2] = 1
    labels[0, 0, 4, 4, 4] = 1
    kept = largest_component_per_class(labels, num_classes=3)
    assert kept[0, 0].sum().item() == 8 and kept[0, 0, 4, 4, 4] == 0
    assert kept[1].sum().item() == 0


def test_pairs_are_batch_halves_or_a_rolled_copy():
    x = torch.arange(4.0).view(4, 1)
    a, b = pair_up(x)
    assert a.flatten().tolist() == [0, 1] and b.flatten().tolist() == [2, 3]
    a, b = pair_up(x[:1])
    assert a.flatten().tolist() == [0] and b.flatten().tolist() == [0]


def _tiny_bcp(max_steps: int = 4, **method_config) -> BCP:
    run_config = {
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
