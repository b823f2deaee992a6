"""The ``data`` settings only the landmarks task has, and its ``--profile cpu|gpu`` defaults.

``data.patch_size`` is the network's input ``[X, Y]``: every image is resized to it (area
interpolation) and its landmarks scaled alike. Unset, it follows the first image's aspect ratio
with the longer side ``data.input_side``, each side a multiple of 32 (the UNet and CCF-Net's
stride-16 grid both divide it).

``gpu`` is CCF-Net's published scale: 512-pixel inputs (its 512 x 512 spine MRI), Adam 3e-4 with
weight decay 5e-4 (its code), batch 16, bf16, 4000 steps. ``cpu`` reads 256-pixel inputs with
batch 4 for 800 steps at Adam 1e-3: 30-60 GFLOP a step for either method on the cephalograms
and the chest contours, a run of about 10-20 minutes on two cores. Both methods get the same
schedule; each picks its own network (``heatmap``: the UNet, ``ccf``: ResNet-18).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, PositiveInt

from medssl.engine.config import DataConfig

#: every input side is a multiple of this (UNet with four stride-2 levels, CCF-Net's stride 16)
SIDE_MULTIPLE = 32


class LandmarkDataConfig(DataConfig):
    """How radiographs and their landmarks become network inputs."""

    # the longer side of the network input when data.patch_size is not given
    input_side: PositiveInt = 256
    # spatial augmentation that moves the landmarks (with data.augment): a horizontal flip
    # (left / right pairs of landmarks.json's flip_pairs swap), a rotation and a scaling
    flip_prob: float = Field(0.0, ge=0.0, le=1.0)
    rotate_deg: float = Field(10.0, ge=0.0, le=180.0)
    scale_range: float = Field(0.1, ge=0.0, lt=1.0)
    affine_prob: float = Field(0.5, ge=0.0, le=1.0)
    # an image class judged from each case's reference points ("anb": the skeletal class of a
    # lateral cephalogram, medssl.tasks.landmarks.skeletal); trained by a method's class head
    # and, at evaluation, also computed from the predicted points
    class_rule: str | None = None


ADAM = {"name": "adam", "lr": 3e-4, "weight_decay": 5e-4, "schedule": "cosine"}

LANDMARK_PROFILES: dict[str, dict[str, Any]] = {
    "gpu": {
        "data": {"input_side": 512, "batch_size": 16, "num_workers": 4, "augment": True},
        "train": {"max_steps": 4000, "val_every": 250, "precision": "bf16-mixed"},
        "optim": ADAM,
    },
    "cpu": {
        "data": {"input_side": 256, "batch_size": 4, "augment": True},
        "train": {"max_steps": 800, "val_every": 200, "precision": "32"},
        "optim": {**ADAM, "lr": 1e-3},
    },
}


def input_size(width: int, height: int, side: int) -> list[int]:
    """``[X, Y]``: ``width`` x ``height`` scaled so that the longer side is ``side``, each side
    rounded to a multiple of :data:`SIDE_MULTIPLE` (at least one)."""
    scale = side / max(width, height)
    return [
        max(SIDE_MULTIPLE, round(n * scale / SIDE_MULTIPLE) * SIDE_MULTIPLE)
        for n in (width, height)
    ]
