"""The classification task plugin: registered, monitored by val AUC, its data facts and split,
and the engine untouched by it (a new task is one plugin, no engine edit)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import medssl
from medssl.data.layouts import load_dataset
from medssl.engine.module import get_method
from medssl.engine.profiles import resolve_config
from medssl.engine.task import get_task, task_names
from medssl.errors import ConfigError
from medssl.tasks.classification.data import ClassificationData, class_counts


def resolved(data: Path, profile: str = "cpu", config: dict | None = None):
    dataset = load_dataset(data)
    cfg = resolve_config(
        task="classification",
        method_cls=get_method("classification", "supervised"),
        dataset=dataset,
        profile=profile,
        file_values=config or {},
        flag_values={"task": "classification", "method": "supervised", "data_dir": str(data)},
    )
    return dataset, cfg


def test_registered_with_val_auc_monitor():
    assert "classification" in task_names()
    task = get_task("classification")
    assert (task.monitor.name, task.monitor.mode) == ("val/auc", "max")
    assert task.bench_metrics == ("auc", "accuracy", "f1_macro", "balanced_accuracy")
    from medssl import api

    assert "supervised" in api.methods("classification")


def test_pneumonia_info_profile_and_own_val_split(shared_data: Path):
    dataset, cfg = resolved(shared_data / "pneumoniamnist")
    task = get_task("classification")
    assert cfg.net.name == "resnet18" and cfg.data.patch_size == [28, 28]
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.schedule) == ("adam", 1e-3, "cosine")
    info = task.dataset_info(dataset, cfg)
    assert info["num_classes"] == 2 and info["class_names"] == ["0", "1"]
    assert (info["in_channels"], info["spatial_dims"], info["data_dims"]) == (1, 2, 2)
    assert info["source"] == "array"
    split = task.make_split(dataset, cfg)
    assert split["counts"] == {"labeled": 3882, "unlabeled": 0, "val": 524}  # MedMNIST's val
    assert all(i.startswith("val_") for i in split["val"])
    data = ClassificationData(dataset, split, cfg.data, info, steps_per_epoch=2)
    assert data.class_counts == [388, 3494]  # README: the train subset's class counts


def test_gpu_profile_3d_keeps_the_native_size(shared_data: Path):
    dataset, cfg = resolved(shared_data / "adrenalmnist3d", profile="gpu")
    assert cfg.data.spatial_dims == 3 and cfg.data.patch_size == [64, 64, 64]
    assert cfg.data.batch_size == 32 and cfg.train.precision == "bf16-mixed"
    _, cpu = resolved(shared_data / "adrenalmnist3d", profile="cpu")
    assert cpu.data.patch_size == [28, 28, 28] and cpu.net.name == "resnet10"


def test_requested_slices_are_refused(shared_data: Path):
    with pytest.raises(ConfigError, match="whole images"):
        resolved(shared_data / "adrenalmnist3d", config={"data": {"spatial_dims": 2}})


def test_manifest_split_column_is_the_val_part(tmp_path: Path):
    from medssl.data.phantom import make_phantom

    root = make_phantom(tmp_path / "cls", "cls3d", cases=10, seed=0)
    dataset, cfg = resolved(root)
    task = get_task("classification")
    info = task.dataset_info(dataset, cfg)
    assert info["class_names"] == ["benign", "malignant"] and info["source"] == "file"
    assert info["data_dims"] == 3 and info["image_size"] == [28, 28, 28]
    split = task.make_split(dataset, cfg)
    assert split["val"] == [c.id for c in dataset.cases if c.meta.get("split") == "val"]
    assert split["val"] and not set(split["val"]) & set(split["labeled"])


def test_class_counts():
    assert class_counts([0, 2, 2, 1, 2], 4) == [1, 1, 3, 0]
    assert np.sum(class_counts([1] * 7, 2)) == 7


def test_engine_names_no_classification_module():
    """The engine reaches the plugin through the task registry only: none of its files
    imports or names the classification package, task class or method family."""
    engine = Path(medssl.__file__).parent / "engine"
    for path in engine.rglob("*.py"):
        text = path.read_text()
        for name in ("tasks.classification", "methods.classify", "ClassificationTask"):
            assert name not in text, f"{path} names {name}"
