"""CCF-Net learns the phantom's landmarks and classes; its heads follow what the data give."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from medssl import api
from medssl.engine.module import get_method
from medssl.engine.task import get_task
from medssl.errors import ConfigError
from tests.conftest import TINY_LANDMARK_CONFIG
from tests.methods.landmarks.tiny import mean_shape_mre

# ResNet-10 with a 64-wide head: the same network at a size two cores train in seconds
TINY_CCF = {
    **TINY_LANDMARK_CONFIG,
    "net": {"name": "resnet10"},
    "optim": {"lr": 3e-3},
    "method_config": {"width": 64},
    "train": {"val_every": 100, "log_every": 10},
}


def train_ccf(folder: Path, out: Path, steps: int, **config) -> Path:
    return api.train(
        folder,
        method="ccf",
        task="landmarks",
        out=out,
        profile="cpu",
        max_steps=steps,
        seed=0,
        config={**TINY_CCF, **config},
    )


def test_ccf_localises_and_classifies_the_phantom(landmark_phantom: Path, tmp_path: Path):
    """160 seeded steps: the coarse grid (4 x 4 cells of 16 input pixels) plus offsets beats the
    mean shape on held-out phantoms; the image class head is trained and scored."""
    run = train_ccf(landmark_phantom, tmp_path / "ccf", 160)
    result = api.evaluate(run, landmark_phantom, only="val")
    assert result["mean"]["mre"] < 0.8 * mean_shape_mre(run, landmark_phantom)
    assert result["class_names"] == ["normal", "abnormal"]
    assert {"accuracy", "auc", "f1_macro", "balanced_accuracy"} <= set(result["mean"])
    assert np.asarray(result["confusion_matrix"]).sum() == result["cases"]
    header = (run / "metrics.csv").read_text().splitlines()[0]
    assert all(f"train/{k}" in header for k in ("heat", "offset_x", "offset_y", "class"))


def with_landmark_classes(phantom: Path, out: Path) -> Path:
    """The phantom with a class per landmark: the image's class on gonion and menton (the
    mandible that makes a case abnormal), null on the others."""
    shutil.copytree(phantom, out)
    doc = json.loads((out / "landmarks.json").read_text())
    mandible = {doc["landmark_names"].index(n) for n in ("gonion", "menton")}
    doc["landmark_class_names"] = ["normal", "abnormal"]
    doc["landmark_classes"] = {
        case: [cls if i in mandible else None for i in range(len(doc["landmark_names"]))]
        for case, cls in doc["classes"].items()
    }
    (out / "landmarks.json").write_text(json.dumps(doc))
    return out


def test_per_landmark_classes_are_trained_scored_and_predicted(
    landmark_phantom: Path, tmp_path: Path
):
    data = with_landmark_classes(landmark_phantom, tmp_path / "data")
    run = train_ccf(data, tmp_path / "ccf", 4, train={"val_every": 4, "log_every": 2})
    assert "train/landmark_class" in (run / "metrics.csv").read_text().splitlines()[0]
    result = api.evaluate(run, data, only="val")
    scored = result["landmark_classification"]
    assert scored["class_names"] == ["normal", "abnormal"]
    assert scored["landmarks"] == 2 * result["cases"]  # gonion and menton of each case
    assert {"accuracy", "auc"} <= set(scored["mean"])
    image = sorted((data / "images").iterdir())[0]
    (written,) = [p for p in api.predict(run, [image], tmp_path / "pred") if p.suffix == ".json"]
    classes = json.loads(written.read_text())["landmark_classes"]
    assert set(classes) == set(result["landmark_names"])
    assert sum(classes["menton"]["probabilities"].values()) == pytest.approx(1.0)


def build(dataset_info: dict, **method_config):
    from medssl.engine.config import RunConfig

    cfg = RunConfig.model_validate(
        {
            "task": "landmarks",
            "method": "ccf",
            "net": {"name": "resnet10"},
            "data": {"patch_size": [64, 64]},
            "method_config": {"width": 16, **method_config},
        }
    )
    return get_method("landmarks", "ccf")(cfg.to_dict(), dataset_info)


INFO = {
    "num_landmarks": 3,
    "in_channels": 1,
    "image_size": [64, 64],
    "class_names": ["a", "b"],
    "landmark_class_names": ["x", "y", "z"],
}


def test_unlabelled_classes_and_missing_points_add_no_class_loss():
    module = build(INFO)
    points = torch.tensor([[[10.0, 20.0], [float("nan")] * 2, [40.0, 50.0]]] * 2)
    batch = {
        "labeled": {
            "image": torch.randn(2, 1, 64, 64),
            "landmarks": points,
            "class": torch.tensor([-1, -1]),
            "landmark_class": torch.tensor([[-1, 2, -1], [-1, 1, -1]]),  # only on the null point
        }
    }
    losses = module.training_losses(batch)
    assert losses["class"].item() == 0.0 and losses["landmark_class"].item() == 0.0
    assert torch.isfinite(losses["loss"])
    batch["labeled"]["class"] = torch.tensor([0, 1])
    assert module.training_losses(batch)["class"].item() > 0


def test_heads_off_without_classes_and_with_the_switches():
    bare = build({**INFO, "class_names": [], "landmark_class_names": []}).net
    assert bare.classifier is None and bare.landmark_classes == 0
    off = build(INFO, image_class=False, landmark_class=False).net
    assert off.classifier is None and off.landmark_classes == 0
    on = build(INFO).net
    assert on.classifier is not None and on.landmark_classes == 3


def test_ccf_refuses_other_backbones_and_sides_off_the_grid():
    with pytest.raises(ConfigError, match="reads a ResNet"):
        get_method("landmarks", "ccf")(
            {"task": "landmarks", "method": "ccf", "net": {"name": "unet"}}, INFO
        )
    with pytest.raises(ConfigError, match="divisible by 16"):
        build({**INFO, "image_size": [64, 72]})
    assert get_task("landmarks").monitor.name == "val/mre"
