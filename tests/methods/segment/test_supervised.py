"""Supervised segmentation learns: on real LA MRI at reduced resolution, and in 2D."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medssl import api

LA_TRAIN = 6
LA_TEST = 3


def _la_subset(shared_data: Path, root: Path) -> tuple[Path, list[str]]:
    """A folder of symlinks to a few LA cases (never a copy of the data)."""
    src = shared_data / "la2018"
    cases = sorted(p.name[: -len(".nii.gz")] for p in (src / "labelsTr").glob("*.nii.gz"))
    cases = cases[: LA_TRAIN + LA_TEST]
    for sub in ("imagesTr", "labelsTr"):
        (root / sub).mkdir(parents=True)
    for case in cases:
        (root / "imagesTr" / f"{case}_0000.nii.gz").symlink_to(
            src / "imagesTr" / f"{case}_0000.nii.gz"
        )
        (root / "labelsTr" / f"{case}.nii.gz").symlink_to(src / "labelsTr" / f"{case}.nii.gz")
    (root / "dataset.json").write_text((src / "dataset.json").read_text())
    return root, cases


def test_supervised_la_reaches_a_clearly_nontrivial_dice_on_unseen_cases(
    shared_data: Path, tmp_path: Path
):
    data, cases = _la_subset(shared_data, tmp_path / "la")
    config = {
        "data": {
            "target_spacing": [2.5, 2.5, 2.5],  # a quarter of the native 0.625 mm resolution
            "patch_size": [48, 48, 32],
            "batch_size": 2,
            "val_cases": LA_TEST,
        },
        "net": {"channels": [16, 32, 64, 128], "num_res_units": 1},
        "optim": {"lr": 0.04},  # 2x the cpu profile: 200 steps
        "train": {"val_every": 100, "seed": 0},
    }
    run = api.train(data, out=tmp_path / "run", profile="cpu", max_steps=200, config=config)
    split = json.loads((run / "split.json").read_text())
    assert len(split["labeled"]) == LA_TRAIN and len(split["val"]) == LA_TEST
    result = api.evaluate(run, data, only="val")
    assert sorted(result["per_case"]) == sorted(split["val"])  # cases it did not train on
    assert result["mean"]["dice"] > 0.6, result["mean"]
    assert result["units"]["hd95"] == "mm"


@pytest.mark.parametrize("dataset", ["acdc_slices", "jsrt_png"])
def test_supervised_2d_trains_and_predicts(shared_data: Path, tmp_path: Path, dataset: str):
    """A 2D UNet on slices of 3D volumes (ACDC) and on native 2D PNGs (JSRT)."""
    if dataset == "acdc_slices":
        src, labeled = shared_data / "acdc", 2
        config = {"data": {"spatial_dims": 2, "patch_size": [64, 64], "batch_size": 4}}
    else:
        src, labeled = shared_data / "jsrt", 3
        config = {"data": {"patch_size": [128, 128], "batch_size": 2, "target_spacing": None}}
    config["net"] = {"channels": [8, 16, 32], "num_res_units": 0}
    config["train"] = {"val_every": 3, "log_every": 1}
    config["data"]["val_cases"] = 2 if dataset == "jsrt_png" else 0.2
    run = api.train(
        src, out=tmp_path / "run", labeled=labeled, profile="cpu", max_steps=3, config=config
    )
    rows = (run / "metrics.csv").read_text()
    assert "train/loss" in rows and "val/dice" in rows
    split = json.loads((run / "split.json").read_text())
    case = split["val"][0]
    if dataset == "acdc_slices":
        assert set(split["val"]) <= set(json.loads((src / "splits.json").read_text())["val"])
        image = src / "imagesTr" / f"{case}_0000.nii.gz"
    else:
        image = src / "images" / f"{case}.png"
    (mask,) = api.predict(run, [image], tmp_path / "pred")
    from medssl.data.io import read_image

    assert read_image(mask).spatial_shape == read_image(image).spatial_shape
