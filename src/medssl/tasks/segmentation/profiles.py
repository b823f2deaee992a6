"""Segmentation's profile defaults (``--profile cpu|gpu``) and its data-dependent config.

``gpu`` follows the published schedules (UA-MT / MC-Net: 112x112x80 patches, SGD 0.01, thousands
of iterations; SSL4MIS ACDC: 256x256 slices, batch 12+12); ``cpu`` shrinks patches and schedules
so that a run finishes in minutes on two cores and still learns.
"""

from __future__ import annotations

from typing import Any

from medssl.data.dataset import Dataset
from medssl.data.io import read_header
from medssl.engine.config import RunConfig
from medssl.engine.profiles import data_dims
from medssl.nets.factory import downsample_factor

# Twice the papers' SGD 0.01 for the short CPU schedules (the step medssl's CPU profiles had
# before the supervised loss took the papers' (Dice + CE) / 2 scale).
CPU_LR = 0.02

SEGMENTATION_PROFILES: dict[tuple[str, int], dict[str, Any]] = {
    ("gpu", 3): {
        "data": {
            "patch_size": [112, 112, 80],
            "batch_size": 2,
            "unlabeled_batch_size": 2,
            "num_workers": 4,  # random crops and augmentation must keep up with the GPU
            "sw_overlap": 0.5,
        },
        "train": {"max_steps": 6000, "val_every": 500, "precision": "bf16-mixed"},
        "net": {"channels": [32, 64, 128, 256, 320]},
    },
    ("gpu", 2): {
        "data": {
            "patch_size": [256, 256],
            "batch_size": 12,
            "unlabeled_batch_size": 12,
            "num_workers": 4,
            "sw_overlap": 0.5,
        },
        "train": {"max_steps": 30000, "val_every": 1000, "precision": "bf16-mixed"},
        "net": {"channels": [16, 32, 64, 128, 256]},
    },
    ("cpu", 3): {
        "data": {
            "patch_size": [64, 64, 48],
            "batch_size": 2,
            "unlabeled_batch_size": 2,
            "sw_overlap": 0.25,
        },
        "train": {"max_steps": 500, "val_every": 100, "precision": "32"},
        "net": {"channels": [16, 32, 64, 128], "num_res_units": 1},
        "optim": {"lr": CPU_LR},
    },
    ("cpu", 2): {
        "data": {
            "patch_size": [128, 128],
            "batch_size": 8,
            "unlabeled_batch_size": 8,
            "sw_overlap": 0.25,
        },
        "train": {"max_steps": 1000, "val_every": 200, "precision": "32"},
        "net": {"channels": [16, 32, 64, 128], "num_res_units": 1},
        "optim": {"lr": CPU_LR},
    },
}


def network_dims(dataset: Dataset, requested: int | None) -> int:
    if requested:
        return requested
    if dataset.spatial_dims == 2 or data_dims(dataset) == 2:
        return 2
    return 3


def fit_patch(cfg: RunConfig, dataset: Dataset) -> list[int]:
    """Clip the patch to the (resampled) image size, in multiples of the network's factor."""
    dims = cfg.data.spatial_dims or 3
    patch = list(cfg.data.patch_size or [])[:dims]
    factor = downsample_factor(cfg.net.name, cfg.net.strides, len(cfg.net.channels or [0] * 5))
    largest = [0] * dims
    for case in [c for c in dataset.cases if c.images or c.array is not None][:8]:
        if not case.images:  # an in-memory image (MedMNIST): its array is the image
            largest = [max(a, b) for a, b in zip(largest, case.array.shape[:dims], strict=False)]
            continue
        header = read_header(case.images[0])
        shape = list(header.spatial_shape)
        if cfg.data.target_spacing:
            shape = [
                round(n * s / t) if t > 0 else n  # t <= 0 keeps the axis (MONAI Spacing)
                for n, s, t in zip(shape, header.spacing, cfg.data.target_spacing, strict=False)
            ]
        if cfg.data.slice_size:
            shape[:2] = cfg.data.slice_size
        largest = [max(a, b) for a, b in zip(largest, shape[:dims], strict=False)]
    fitted = []
    for want, have in zip(patch, largest, strict=False):
        cap = -(-have // factor) * factor if have else want
        fitted.append(max(factor, min(want, cap)))
    return fitted
