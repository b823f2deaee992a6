"""Classification's profile defaults (``--profile cpu|gpu``) and its data-dependent config.

``data.patch_size`` is the size every whole image is resized to (area interpolation), the input
of the network; ``None`` keeps the images' own size (read from the first case).

``gpu`` follows MedMNIST v2's training (ResNet-18, Adam 1e-3, batch 128 over 100 epochs; here
batch 64, cosine decay, a few thousand steps, no augmentation, images at their own size);
``cpu`` is a few hundred steps at batch 32 (2D), and 3D volumes resized to 28^3 (MedMNIST's
published 3D size) through a ResNet-10 with a stride-2 stem, so that a run finishes in tens of
minutes on two cores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from medssl.data.dataset import Dataset, image_dims
from medssl.data.io import read_header
from medssl.engine.config import RunConfig
from medssl.errors import ConfigError

ADAM = {"name": "adam", "lr": 1e-3, "weight_decay": 0.0, "schedule": "cosine"}

CLASSIFICATION_PROFILES: dict[tuple[str, int], dict[str, Any]] = {
    ("gpu", 2): {
        "data": {"batch_size": 64, "num_workers": 4, "augment": False},
        "train": {"max_steps": 3000, "val_every": 250, "precision": "bf16-mixed"},
        "net": {"name": "resnet18"},
        "optim": ADAM,
    },
    ("gpu", 3): {
        "data": {"batch_size": 32, "num_workers": 4, "augment": False},
        "train": {"max_steps": 4000, "val_every": 250, "precision": "bf16-mixed"},
        "net": {"name": "resnet18"},
        "optim": ADAM,
    },
    ("cpu", 2): {
        "data": {"batch_size": 32, "augment": False},
        "train": {"max_steps": 300, "val_every": 100, "precision": "32"},
        "net": {"name": "resnet18"},
        "optim": ADAM,
    },
    ("cpu", 3): {
        "data": {"patch_size": [28, 28, 28], "batch_size": 16, "augment": False},
        "train": {"max_steps": 300, "val_every": 100, "precision": "32"},
        # a 3D ResNet-18 at 28^3 takes about 10 s a step on two cores: ResNet-10, stride-2 stem
        "net": {"name": "resnet10", "options": {"conv1_t_stride": 2}},
        "optim": ADAM,
    },
}


def data_dims_of(dataset: Dataset) -> int:
    """2 or 3: the images' own spatial dimensions (a one-slice volume counts as 2D)."""
    return image_dims(dataset) or 2


def native_size(dataset: Dataset) -> list[int]:
    """The spatial size of the first case (a MedMNIST array or an image file's header)."""
    dims = data_dims_of(dataset)
    first = next((c for c in dataset.cases if c.array is not None or c.images), None)
    if first is None:
        raise ConfigError(f"{dataset.root}: no case to read an image size from")
    if first.array is not None:
        return [int(n) for n in np.asarray(first.array).shape[:dims]]
    return [int(n) for n in read_header(first.images[0]).spatial_shape[:dims]]


def fit_input_size(cfg: RunConfig, dataset: Dataset) -> list[int]:
    """``data.patch_size`` as the network's input size: the images' own size when unset."""
    dims = cfg.data.spatial_dims or data_dims_of(dataset)
    size = list(cfg.data.patch_size or native_size(dataset))
    if len(size) != dims:
        raise ConfigError(
            f"data.patch_size {size} has {len(size)} sides for {dims}D images; give {dims}"
        )
    return size
