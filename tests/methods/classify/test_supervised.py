"""Supervised classification end to end: train a few steps (2D MedMNIST subset, 3D phantom),
evaluate, predict; the loss, the class-balanced weights and learning beyond chance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from medssl import api
from medssl.engine.inference import load_model
from medssl.methods.classify.base import balanced_weights
from tests.methods.classify.tiny import TINY_3D, train_classifier

TINY_2D = {
    "data": {"batch_size": 8},
    "train": {"val_every": 3, "log_every": 1},
}


def train(data: Path, out: Path, max_steps: int, config: dict, **options) -> Path:
    return train_classifier("supervised", data, out, max_steps, config, **options)


@pytest.fixture(scope="module")
def pneumonia_subset(shared_data: Path, tmp_path_factory) -> Path:
    """24 + 24 training and 12 + 12 validation images of the real PneumoniaMNIST npz."""
    source = np.load(shared_data / "pneumoniamnist" / "pneumoniamnist.npz")
    arrays = {}
    for split, per_class in (("train", 24), ("val", 12)):
        labels = source[f"{split}_labels"].reshape(-1)
        keep = np.concatenate([np.flatnonzero(labels == k)[:per_class] for k in (0, 1)])
        arrays[f"{split}_images"] = source[f"{split}_images"][keep]
        arrays[f"{split}_labels"] = source[f"{split}_labels"][keep]
    root = tmp_path_factory.mktemp("pneumonia")
    np.savez_compressed(root / "pneumoniamnist.npz", **arrays)
    return root


@pytest.fixture(scope="module")
def run_2d(pneumonia_subset: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "pneu"
    return train(pneumonia_subset, out, 6, TINY_2D)


@pytest.fixture(scope="module")
def cls3d(tmp_path_factory) -> Path:
    from medssl.data.phantom import make_phantom

    return make_phantom(tmp_path_factory.mktemp("cls3d") / "cls3d", "cls3d", cases=16, seed=0)


def test_2d_train_evaluate_predict(run_2d: Path, pneumonia_subset: Path, tmp_path: Path):
    assert (run_2d / "checkpoints" / "best.ckpt").is_file()
    header = (run_2d / "metrics.csv").read_text().splitlines()[0]
    assert "val/auc" in header and "val/accuracy" in header
    result = api.evaluate(run_2d, pneumonia_subset, out=tmp_path / "eval.json", only="val")
    assert result["task"] == "classification" and result["cases"] == 24
    assert set(result["mean"]) == {"accuracy", "auc", "f1_macro", "balanced_accuracy"}
    assert set(result["per_class"]) == {"0", "1"} and result["class_names"] == ["0", "1"]
    matrix = np.array(result["confusion_matrix"])
    assert matrix.shape == (2, 2) and matrix.sum() == 24 and matrix.sum(axis=1).tolist() == [12, 12]
    case = result["per_case"]["val_00000"]
    assert set(case) == {"label", "pred", "prob_0", "prob_1"}
    assert case["prob_0"] + case["prob_1"] == pytest.approx(1.0)
    assert json.loads((tmp_path / "eval.json").read_text())["cases"] == 24

    images = np.load(pneumonia_subset / "pneumoniamnist.npz")["val_images"]
    pngs = []
    for i in (0, 20):
        pngs.append(tmp_path / f"img{i}.png")
        Image.fromarray(images[i]).save(pngs[-1])
    written = api.predict(run_2d, pngs, tmp_path / "pred")
    assert [p.name for p in written] == ["img0.json", "img20.json"]
    for path, i in zip(written, (0, 20), strict=True):
        payload = json.loads(path.read_text())
        assert sum(payload["probabilities"].values()) == pytest.approx(1.0)
        assert payload["predicted_class"] in ("0", "1")
        # the PNG goes through the preprocessing of the npz arrays: same probabilities
        expected = result["per_case"][f"val_{i:05d}"]["prob_1"]
        assert payload["probabilities"]["1"] == pytest.approx(expected, abs=1e-4)


def test_loss_decreases_on_a_fixed_batch(run_2d: Path, pneumonia_subset: Path):
    module = load_model(run_2d)
    module.train()
    images = np.load(pneumonia_subset / "pneumoniamnist.npz")["train_images"][[0, 1, 30, 31]]
    x = torch.as_tensor(images, dtype=torch.float32)[:, None] / 255.0
    batch = {"labeled": {"image": x, "label": torch.tensor([0, 0, 1, 1])}}
    optimiser = torch.optim.Adam(module.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        optimiser.zero_grad()
        loss = module.training_losses(batch)["loss"]
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] * 0.5


def test_balanced_weights():
    assert balanced_weights([30, 10]) == pytest.approx([40 / 60, 40 / 20])
    assert balanced_weights([5, 5, 5]) == pytest.approx([1.0, 1.0, 1.0])
    assert balanced_weights([4, 0, 12]) == pytest.approx([16 / 8, 0.0, 16 / 24])


def test_class_balanced_run_uses_the_training_counts(pneumonia_subset: Path, tmp_path: Path):
    config = {
        "data": {"batch_size": 4},
        "method_config": {"class_balanced": True},
        "net": {"name": "densenet121"},
    }
    run = train(pneumonia_subset, tmp_path / "run", 1, config)
    module = load_model(run)
    assert module.hp.class_balanced and type(module.net).__name__ == "DenseNet121"
    assert "class_weights" not in module.state_dict()  # recomputed from the split, not saved


def test_3d_phantom_learns_beyond_chance(cls3d: Path, tmp_path: Path):
    """A seeded short 3D run fits its own training cases (AUC clearly above 0.5)."""
    run = train(cls3d, tmp_path / "run", 24, TINY_3D, seed=0)
    result = api.evaluate(run, cls3d, only="labeled")
    assert result["mean"]["auc"] > 0.75, result["mean"]
    assert np.array(result["confusion_matrix"]).sum() == result["cases"]
    nifti = sorted((cls3d / "images").glob("*.nii.gz"))[:2]
    written = api.predict(run, nifti, tmp_path / "pred")
    for path in written:
        probabilities = json.loads(path.read_text())["probabilities"]
        assert set(probabilities) == {"benign", "malignant"}
        assert sum(probabilities.values()) == pytest.approx(1.0)


def test_densenet_too_small_input_is_a_config_error():
    from medssl.engine.module import get_method
    from medssl.errors import ConfigError

    info = {"num_classes": 2, "in_channels": 1, "spatial_dims": 3, "image_size": [28, 28, 28]}
    run = {"task": "classification", "net": {"name": "densenet121"}}
    with pytest.raises(ConfigError, match="small_input: true"):
        get_method("classification", "supervised")(run, info)
