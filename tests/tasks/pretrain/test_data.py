"""Pretraining data from in-memory arrays: a MedMNIST npz becomes whole [0, 1] images, no labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import monai.transforms as mt
import numpy as np
import pytest
import torch

from medssl.data.layouts import load_images_only
from medssl.data.splits import make_pretrain_split
from medssl.tasks.pretrain.data import PretrainData, array_patch, array_prefix
from medssl.tasks.segmentation.config import PatchDataConfig

INFO = {"spatial_dims": 2, "data_dims": 2, "in_channels": 1, "channel_names": {}}


def keys_in(tree: Any) -> set[str]:
    """Every dict key anywhere in a (nested) batch."""
    if isinstance(tree, dict):
        return set(tree) | set().union(*(keys_in(v) for v in tree.values()))
    if isinstance(tree, list | tuple):
        return set().union(*(keys_in(v) for v in tree)) if tree else set()
    return set()


@pytest.fixture(scope="module")
def pneumonia(shared_data: Path):
    return load_images_only(shared_data / "pneumoniamnist")


def test_a_medmnist_npz_gives_whole_28x28_float_images_and_no_label(pneumonia):
    split = make_pretrain_split(pneumonia, seed=0, val_cases=16)
    cfg = PatchDataConfig(patch_size=[128, 128], batch_size=8, cache=False)  # the cpu profile's
    data = PretrainData(pneumonia, split, cfg, INFO, steps_per_epoch=2)
    data.setup("fit")
    batch, _, _ = next(iter(data.train_dataloader()))
    image = data.on_after_batch_transfer(batch, 0)["unlabeled"]["image"]
    assert image.shape == (8, 1, 28, 28) and image.dtype == torch.float32
    assert image.std() > 0.05  # images, not padding (intensity augmentation may leave [0, 1])
    val = next(iter(data.val_dataloader()))
    assert "label" not in keys_in(batch) | keys_in(val)
    first = pneumonia.case(split["val"][0]).array
    expected = torch.as_tensor(first, dtype=torch.float32) / 255.0  # classification's scaling
    torch.testing.assert_close(val["image"][0, 0].as_tensor(), expected)


def test_the_split_leaves_medmnist_test_cases_out(shared_data: Path, tmp_path: Path):
    source = np.load(shared_data / "pneumoniamnist" / "pneumoniamnist.npz")
    images, labels = source["train_images"], source["train_labels"]
    parts = {"train": slice(0, 10), "val": slice(10, 14), "test": slice(14, 20)}
    arrays = {}
    for name, rows in parts.items():
        arrays[f"{name}_images"], arrays[f"{name}_labels"] = images[rows], labels[rows]
    np.savez_compressed(tmp_path / "tiny.npz", **arrays)
    dataset = load_images_only(tmp_path)
    split = make_pretrain_split(dataset, seed=0, val_cases=2)
    used = split["unlabeled"] + split["val"]
    assert len(used) == 14 and not [i for i in used if i.startswith("test_")]
    assert all(c.target is None for c in dataset.cases)  # images_only: no class read


def test_rgb_arrays_keep_their_channels_first():
    rgb = np.random.default_rng(0).integers(0, 256, (28, 28, 3), dtype=np.uint8)
    steps = mt.Compose(array_prefix(PatchDataConfig(patch_size=[28, 28]), INFO, True))
    image = steps({"image": rgb})["image"]
    assert tuple(image.shape) == (3, 28, 28)
    torch.testing.assert_close(image[1].as_tensor(), torch.as_tensor(rgb[..., 1] / 255.0).float())


def test_the_patch_is_capped_at_the_arrays_size():
    arrays = [np.zeros((28, 28)), np.zeros((30, 26))]
    assert array_patch([128, 16], arrays) == [30, 16]


def test_rgb_medmnist_pretrains_with_three_input_channels(tmp_path: Path):
    """An RGB MedMNIST npz (no channel names declared) gives the network 3 input channels."""
    from medssl.engine.config import RunConfig
    from medssl.tasks.pretrain import PretrainTask

    rgb = np.random.default_rng(0).integers(0, 256, (6, 28, 28, 3), dtype=np.uint8)
    labels = np.zeros((6, 1), dtype=np.uint8)
    np.savez_compressed(tmp_path / "rgb.npz", train_images=rgb, train_labels=labels)
    dataset = load_images_only(tmp_path)
    cfg = RunConfig(task="pretrain", data={"spatial_dims": 2})
    assert PretrainTask().dataset_info(dataset, cfg)["in_channels"] == 3
