"""Pretraining as a task: image-only data, the pretext loss as monitor, an encoder as output."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from medssl import api
from medssl.engine.handoff import ENCODER_FILE, SIDECAR_FILE
from medssl.engine.task import Monitor, get_task
from medssl.errors import ConfigError
from tests.conftest import TINY_SEG_CONFIG
from tests.tasks.pretrain import denoise

PRETRAIN = {
    "data": {"patch_size": [32, 32, 32], "batch_size": 2, "val_cases": 2},
    "net": TINY_SEG_CONFIG["net"],
    "train": {"val_every": 2, "log_every": 1},
    "optim": {"name": "adam", "lr": 0.01, "schedule": "constant"},
}


@pytest.fixture(scope="module")
def images_only(seg_phantom: Path, tmp_path_factory) -> Path:
    """The phantom's images without any label or dataset.json: a folder of scans."""
    folder = tmp_path_factory.mktemp("scans")
    for image in sorted((seg_phantom / "imagesTr").glob("*.nii.gz")):
        shutil.copy(image, folder / image.name.replace("_0000", ""))
    return folder


@pytest.fixture(scope="module")
def pretrained(images_only: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pre") / "run"
    return api.train(
        images_only,
        task="pretrain",
        method=denoise.NAME,
        out=out,
        profile="cpu",
        max_steps=8,
        config=PRETRAIN,
    )


def test_pretrain_monitors_its_pretext_loss_lowest_first():
    assert get_task("pretrain").monitor == Monitor("val/pretext_loss", "min")


def test_pretraining_reads_an_unlabelled_folder_and_exports_its_encoder(pretrained: Path):
    split = json.loads((pretrained / "split.json").read_text())
    assert split["labeled"] == [] and len(split["val"]) == 2 and len(split["unlabeled"]) == 6
    meta = json.loads((pretrained / SIDECAR_FILE).read_text())
    assert meta["backbone"] == "unet" and meta["method"] == denoise.NAME
    assert meta["spatial_dims"] == 3 and (pretrained / ENCODER_FILE).stat().st_size > 0
    with open(pretrained / "metrics.csv") as fh:
        val = {int(r["step"]) + 1: float(r["val/pretext_loss"]) for r in csv.DictReader(fh)
               if r.get("val/pretext_loss")}  # fmt: skip
    best = torch.load(pretrained / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["global_step"] == min(val, key=val.get)  # lowest pretext loss, not the highest


def test_the_pretext_loss_decreases(pretrained: Path):
    with open(pretrained / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    val = [float(r["val/pretext_loss"]) for r in rows if r.get("val/pretext_loss")]
    assert len(val) == 4 and val[-1] < 0.8 * val[0]  # the same noise at every check


def test_a_segmentation_run_starts_from_the_pretrained_encoder(
    pretrained: Path, seg_phantom: Path, tmp_path: Path
):
    from tests.conftest import train_tiny

    run = train_tiny(seg_phantom, method="mean_teacher", out=tmp_path / "ft", max_steps=1,
                     init=str(pretrained))  # fmt: skip
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_labels_are_refused_for_pretraining(images_only: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="pretraining reads no labels"):
        api.train(images_only, task="pretrain", method=denoise.NAME, out=tmp_path / "r",
                  labeled=2, profile="cpu", max_steps=1, config=PRETRAIN)  # fmt: skip
    assert not (tmp_path / "r").exists()


def test_several_folders_are_pooled_for_pretraining(images_only: Path, seg_phantom: Path, tmp_path):
    out = tmp_path / "pooled"
    run = api.train([images_only, seg_phantom], task="pretrain", method=denoise.NAME, out=out,
                    profile="cpu", max_steps=1, config=PRETRAIN)  # fmt: skip
    split = json.loads((run / "split.json").read_text())
    ids = split["unlabeled"] + split["val"]
    sources = {i.split("/", 1)[0] for i in ids}
    assert sources == {images_only.name, seg_phantom.name} and len(ids) == 16


def test_several_folders_are_refused_outside_pretraining(images_only, seg_phantom, tmp_path):
    with pytest.raises(ConfigError, match="several are pooled only for pretraining"):
        api.train([images_only, seg_phantom], out=tmp_path / "r", labeled=2, profile="cpu",
                  max_steps=1, config=TINY_SEG_CONFIG)  # fmt: skip
    assert not (tmp_path / "r").exists()
