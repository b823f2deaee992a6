"""VoCo: the overlap targets against hand-computed boxes, the crops against slicing, the losses'
documented values; learning (UNet 3D and 2D) on a fixed batch and on volumes never trained on;
one step of every other backbone family (Swin UNETR on resized crops); the EMA teacher; short
pretraining runs whose exported encoder a segmentation run starts from.

The runs assert what a run produces, not that its validation loss falls: on the phantom a few
steps trade the position term against the regulariser, and the monitored loss goes either way
(development: 0.38 -> 0.39 and 0.47 -> 0.49 over 10 steps at lr 1e-3, seeds 0 and 1)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from medssl import api
from medssl.engine.ema import ema_update
from medssl.engine.handoff import ENCODER_FILE, SIDECAR_FILE
from medssl.errors import ConfigError
from medssl.losses.voco import base_regularizer, predict_overlaps, prediction_loss
from medssl.methods.pretrain.voco import (
    VoCo,
    base_crops,
    draw_positions,
    overlap_matrix,
    overlap_targets,
    random_crops,
)
from medssl.nets.encoder_keys import encoder_map, encoders_in

TINY_UNET = {"channels": [8, 16, 32], "num_res_units": 0}
# a tiny Swin UNETR: 12 features, one block per stage, 4^3 windows (fast on CPU)
TINY_SWIN = {
    "name": "swin_unetr",
    "options": {"feature_size": 12, "depths": [1, 1, 1, 1], "window_size": 4},
}
PRETRAIN = {
    "data": {"patch_size": [32, 32, 32], "batch_size": 2, "val_cases": 2},
    "net": TINY_UNET,
    "train": {"val_every": 2, "log_every": 1},
    "optim": {"name": "adam", "lr": 0.01, "schedule": "constant"},
}


def tiny_voco(patch: list[int], net: dict[str, Any] | None = None, **method_config) -> VoCo:
    run_config = {
        "task": "pretrain",
        "method": "voco",
        "data": {"spatial_dims": len(patch), "patch_size": patch},
        "net": net or TINY_UNET,
        "method_config": method_config,
    }
    return VoCo(run_config, {"spatial_dims": len(patch), "in_channels": 1, "data_dims": 3})


def fractions(*entries: tuple[int, int], grid: int = 4, area: int) -> torch.Tensor:
    """A ``grid^2`` target row with ``count / area`` at base crop ``k``, for (k, count) pairs."""
    row = torch.zeros(grid * grid)
    for k, count in entries:
        row[k] = count / area
    return row


# -- targets --------------------------------------------------------------------------------------
def test_a_crop_exactly_on_a_base_crop_overlaps_only_that_one():
    # 8x8 base crops of a 32x32 grid; the crop at x=8, y=16 is base crop i=1, j=2: k = 6
    targets = overlap_targets(torch.tensor([8, 16]), (8, 8), grid=4)
    assert torch.equal(targets, fractions((6, 64), area=64))
    corner = overlap_targets(torch.tensor([24, 24]), (8, 8), grid=4)
    assert torch.equal(corner, fractions((15, 64), area=64))


def test_a_crop_straddling_four_base_crops_splits_by_area():
    # 8x4 base crops; the crop [3, 11) x [1, 5) has 5 | 3 voxels along x and 3 | 1 along y
    targets = overlap_targets(torch.tensor([3, 1]), (8, 4), grid=4)
    expected = fractions((0, 15), (1, 5), (4, 9), (5, 3), area=32)
    assert torch.equal(targets, expected)  # k = i * grid + j: x picks the block of 4, y the entry


def test_targets_sum_to_one_and_count_the_voxels_of_each_box():
    grid, size = 3, (5, 7)
    positions = draw_positions(torch.Generator().manual_seed(0), 4, 6, size, grid)
    assert positions.shape == (4, 6, 2)
    assert positions.min() >= 0 and positions.amax((0, 1)).tolist() == [10, 14]  # the last corner
    targets = overlap_targets(positions, size, grid)
    assert targets.shape == (4, 6, 9)
    torch.testing.assert_close(targets.sum(-1), torch.ones(4, 6))
    for x, y in positions.reshape(-1, 2).tolist()[:5]:  # paint the crop, count per base crop
        mask = torch.zeros(15, 21)
        mask[x : x + 5, y : y + 7] = 1
        counts = mask.reshape(3, 5, 3, 7).sum((1, 3)).flatten() / 35
        torch.testing.assert_close(overlap_targets(torch.tensor([x, y]), size, grid), counts)


@pytest.mark.parametrize("patch", [[12, 8], [12, 8, 3]])
def test_crops_are_the_boxes_the_targets_describe(patch: list[int]):
    image = torch.arange(2 * 2 * torch.Size(patch).numel(), dtype=torch.float32).view(2, 2, *patch)
    bases = base_crops(image, grid=4)  # 3 x 2 base crops
    assert bases.shape == (2 * 16, 2, 3, 2, *patch[2:])
    assert torch.equal(bases[16 + 1 * 4 + 3], image[1, :, 3:6, 6:8])  # volume 1, i = 1, j = 3
    positions = torch.tensor([[[0, 0], [4, 5]], [[9, 6], [2, 3]]])
    crops = random_crops(image, positions, (3, 2))
    assert crops.shape == (4, 2, 3, 2, *patch[2:])
    assert torch.equal(crops[1], image[0, :, 4:7, 5:7])
    assert torch.equal(crops[2], image[1, :, 9:12, 6:8])


# -- losses ---------------------------------------------------------------------------------------
def test_predictions_are_rectified_cosines():
    crops = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
    bases = torch.tensor([[[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]]])
    expected = torch.tensor([[[1.0, 0.0, 0.0], [2**-0.5, 2**-0.5, 0.0]]])
    torch.testing.assert_close(predict_overlaps(crops, bases), expected)


def test_the_prediction_loss_is_zero_at_the_targets_and_grows_with_the_error():
    targets = overlap_targets(torch.tensor([[[3, 1], [8, 0]]]), (8, 4), grid=4)
    pos, neg = prediction_loss(targets, targets)
    assert pos.item() == 0 and neg.item() == 0
    off = targets.clone()
    off[0, 0, 0] -= 0.25  # a touched base crop predicted 0.25 low
    off[0, 1, 15] = 0.5  # an untouched one predicted 0.5
    pos, neg = prediction_loss(off, targets)
    torch.testing.assert_close(pos, -(15 / 32) * torch.log(torch.tensor(0.75)) / 2)
    untouched = (targets == 0).sum()  # 12 of crop 0 and 15 of crop 1
    torch.testing.assert_close(neg, torch.tensor(0.25) / untouched)


def test_the_regulariser_is_zero_for_orthogonal_bases_and_one_for_identical_ones():
    orthogonal = torch.eye(4).unsqueeze(0)
    assert base_regularizer(orthogonal).item() == 0
    opposed = torch.tensor([[[1.0, 0.0], [-1.0, 0.0]]])
    assert base_regularizer(opposed).item() == 0  # negative cosines are not penalised
    torch.testing.assert_close(base_regularizer(torch.ones(2, 5, 3)), torch.tensor(1.0))


# -- the method -----------------------------------------------------------------------------------
def _fit(module: VoCo, image: torch.Tensor, steps: int) -> list[dict[str, float]]:
    """The losses of ``steps`` Adam steps on one batch, the same crops each time."""
    optimiser = torch.optim.Adam(module.learnable_params(), lr=1e-3)
    history = []
    for _ in range(steps):
        losses = module.pretext_losses(image, torch.Generator().manual_seed(0))
        optimiser.zero_grad()
        losses["loss"].backward()
        optimiser.step()
        history.append({name: value.item() for name, value in losses.items()})
    return history


@pytest.mark.parametrize("patch", [[32, 32, 32], [32, 32]], ids=["unet-3d", "unet-2d"])
def test_a_few_steps_on_a_fixed_batch_lower_the_loss(patch: list[int]):
    torch.manual_seed(0)
    history = _fit(tiny_voco(patch), torch.rand(2, 1, *patch), steps=6)
    assert {"loss", "pred_loss", "reg_loss"} <= history[0].keys()
    for name in ("loss", "pred_loss"):  # the prediction learns, not only the regulariser
        assert history[-1][name] < 0.6 * history[0][name], history


@pytest.mark.parametrize(
    ("patch", "net", "method_config", "family"),
    [
        ([32, 32, 32], TINY_SWIN, {"grid": 2, "crop_size": 32}, "swin_unetr"),  # 16x16x32 -> 32^3
        ([32, 32], {"name": "ssl4mis_unet", "channels": [8, 16, 32]}, {}, "ssl4mis_unet"),
        ([32, 32, 32], {"name": "ssl4mis_vnet", "channels": [8, 16, 32]}, {}, "ssl4mis_vnet"),
    ],
    ids=["swin_unetr-3d", "ssl4mis_unet-2d", "ssl4mis_vnet-3d"],
)
def test_every_backbone_family_trains_the_encoder_it_exports(patch, net, method_config, family):
    torch.manual_seed(0)
    module = tiny_voco(patch, net, **method_config)
    losses = module.pretext_losses(torch.rand(1, 1, *patch), None)
    losses["loss"].backward()
    assert all(torch.isfinite(v) for v in losses.values())
    grads = [p.grad for p in module.encoder.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    assert encoder_map(module.encoder_network()).family == family


def test_training_on_random_crops_lowers_the_loss_on_unseen_volumes():
    """Learning that generalises: fresh crops every step of two volumes, the loss measured on
    fixed crops of two others (smooth random volumes: content that tells crops apart)."""
    torch.manual_seed(0)
    module = tiny_voco([32, 32, 32], num_crops=4)
    volumes = F.interpolate(torch.rand(4, 1, 4, 4, 4), size=(32, 32, 32), mode="trilinear")
    seen, unseen = volumes[:2], volumes[2:]

    def held_out_loss() -> float:
        module.eval()
        with torch.no_grad():
            loss = module.pretext_losses(unseen, torch.Generator().manual_seed(5))["loss"]
        module.train()
        return loss.item()

    before = held_out_loss()
    optimiser = torch.optim.Adam(module.learnable_params(), lr=1e-3)
    for _ in range(15):
        loss = module.pretext_losses(seen, None)["loss"]  # the global stream: new crops
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert held_out_loss() < 0.85 * before  # development: 0.375 -> 0.295 (seeds 1-4: -25-40%)


def test_crops_the_network_cannot_take_are_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"multiples of 32 for swin_unetr.*crop_size \(e.g. 32\)"):
        tiny_voco([64, 64, 32], TINY_SWIN)  # 16x16x32 base crops
    with pytest.raises(ConfigError, match="needs 3 sides"):
        tiny_voco([64, 64, 32], TINY_SWIN, crop_size=[32, 32])
    deep = {"channels": [16, 32, 64, 128], "num_res_units": 0}  # downsamples 8x
    with pytest.raises(ConfigError, match=r"at least 8 voxels for unet.*crop_size \(e.g. 16\)"):
        tiny_voco([28, 28], deep)  # a MedMNIST image: 7x7 base crops
    assert tiny_voco([28, 28], deep, crop_size=16).crop_geometry([28, 28]) == ((7, 7), (16, 16))


def test_validation_draws_repeat_and_training_draws_do_not():
    torch.manual_seed(0)
    module = tiny_voco([32, 32], grid=2).eval()
    image = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        first = module.pretext_losses(image, torch.Generator().manual_seed(3))["loss"]
        again = module.pretext_losses(image, torch.Generator().manual_seed(3))["loss"]
        draws = {module.pretext_losses(image, None)["loss"].item() for _ in range(4)}
    assert first.item() == again.item() and len(draws) > 1


def test_the_teacher_is_an_ema_of_the_student_and_the_student_is_exported():
    torch.manual_seed(0)
    module = tiny_voco([32, 32], teacher=True)
    assert module.ema_decay_at(0) == module.ema_decay_at(10_000) == 0.9
    pairs = module.momentum_pairs()
    assert [s for s, _ in pairs] == [module.backbone, module.head]
    assert not any(p.requires_grad for _, t in pairs for p in t.parameters())
    assert encoders_in(module)[0][1] is module.backbone is module.encoder_network()
    image = torch.rand(2, 1, 32, 32)
    before = [p.clone() for p in module.teacher_backbone.parameters()]
    _fit(module, image, 2)
    for student, teacher in pairs:
        ema_update(student, teacher, module.ema_decay_at(1))
    after = list(module.teacher_backbone.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert module.teacher_backbone.state_dict().keys() == module.backbone.state_dict().keys()


def test_overlap_matrix_shows_fixed_crops_of_one_volume():
    torch.manual_seed(0)
    module = tiny_voco([32, 32, 32], num_crops=3)
    volume = torch.rand(1, 32, 32, 32)
    predicted, true = overlap_matrix(module, volume, num_crops=5)
    assert predicted.shape == true.shape == (5, 16) and module.training  # mode restored
    assert abs(true.sum(1) - 1).max() < 1e-6 and (predicted >= 0).all() and (predicted <= 1).all()
    repeat, same = overlap_matrix(module, volume[None], num_crops=5)
    assert (repeat == predicted).all() and (same == true).all()


# -- runs -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pretrained(seg_phantom: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("voco") / "run"
    return api.train(seg_phantom, task="pretrain", method="voco", out=out, profile="cpu",
                     max_steps=4, config=PRETRAIN)  # fmt: skip


def test_a_pretraining_run_logs_its_losses_and_exports_the_encoder(pretrained: Path):
    with open(pretrained / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    names = {"train/loss", "train/pred_loss", "train/reg_loss", "val/pred_loss", "val/reg_loss"}
    assert names <= rows[0].keys()
    val = [float(r["val/pretext_loss"]) for r in rows if r.get("val/pretext_loss")]
    train = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert len(val) == 2 and len(train) == 4 and all(0 < v < 20 for v in val + train)
    meta = json.loads((pretrained / SIDECAR_FILE).read_text())
    assert meta["method"] == "voco" and meta["backbone"] == "unet"
    assert (pretrained / ENCODER_FILE).stat().st_size > 0


def test_the_report_shows_predicted_against_true_overlaps(pretrained: Path, tmp_path: Path):
    import shutil

    import numpy as np

    from medssl.engine.run import is_run_dir
    from medssl.report import build_report

    with np.load(pretrained / "pretext_summary.npz") as saved:
        true, predicted = saved["overlap_true_0"], saved["overlap_predicted_0"]
    assert true.shape == predicted.shape == (8, 16)  # 8 crops x a 4x4 grid of base crops
    np.testing.assert_allclose(true.sum(axis=1), 1.0, rtol=1e-6)
    assert ((predicted >= 0) & (predicted <= 1)).all()
    run = shutil.copytree(pretrained, tmp_path / "run")
    assert is_run_dir(run)  # encoder and summary files are a run's own (--force may replace it)
    html = build_report(run).read_text()
    assert "What the encoder learned" in html and "pretext_overlaps.png" in html
    assert "judged by fine-tuning" in html and "not evaluated yet" not in html
    assert "<dt>labeled</dt>" not in html  # pretraining reads no labels: no label budget


def test_a_teacher_run_exports_the_student_which_a_segmentation_run_starts_from(
    seg_phantom: Path, tmp_path: Path
):
    from tests.conftest import train_tiny

    config = PRETRAIN | {"method_config": {"teacher": True}}
    run = api.train(seg_phantom, task="pretrain", method="voco", out=tmp_path / "pre",
                    profile="cpu", max_steps=2, config=config)  # fmt: skip
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    module = VoCo(**ckpt["hyper_parameters"])
    module.load_state_dict(ckpt["state_dict"])
    exported = load_file(run / ENCODER_FILE)
    student, teacher = module.backbone.state_dict(), module.teacher_backbone.state_dict()
    names = encoder_map(module.backbone).keys
    assert exported.keys() == names.keys()
    assert all(torch.equal(exported[c], student[a]) for c, a in names.items())
    assert not all(torch.equal(exported[c], teacher[a]) for c, a in names.items())
    tuned = train_tiny(seg_phantom, method="supervised", out=tmp_path / "ft", max_steps=1,
                       init=str(run))  # fmt: skip
    assert (tuned / "checkpoints" / "last.ckpt").is_file()
