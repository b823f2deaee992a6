"""The ``data`` settings only segmentation has: slices resized, patches drawn around foreground,
a second (unlabelled) stream, and the sliding window that evaluates whole cases."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PositiveInt

from medssl.engine.config import DataConfig


class PatchDataConfig(DataConfig):
    """Volumes read as segmentation reads them (pretraining shares this, so that an encoder
    sees the preprocessing of the run it initialises)."""

    # resize every slice's first two axes to (H, W), keeping the slice count (SSL4MIS on ACDC)
    slice_size: list[PositiveInt] | None = Field(None, min_length=2, max_length=2)


class SegmentationDataConfig(PatchDataConfig):
    unlabeled_batch_size: int = 2  # unlabelled patches per step (semi-supervised methods)
    foreground_ratio: float = 0.33  # share of patches centred on foreground (nnU-Net: 1/3)
    # auto: "affine" for 2D networks (rot90/flip + rotation and scaling), "rot_flip" for 3D
    # (UA-MT); "ssl4mis": SSL4MIS's RandomGenerator as written (turn+flip | rotation | nothing)
    spatial_augment: Literal["auto", "flip", "rot_flip", "affine", "ssl4mis"] = "auto"
    intensity_augment: bool = True  # random intensity scale, shift and noise (with augment)
    sw_overlap: float = 0.25  # sliding-window overlap at validation / inference
    sw_batch_size: int = 4  # windows per forward pass


#: keys earlier versions kept under ``train``
MOVED_FROM_TRAIN = ("sw_overlap", "sw_batch_size")


def upgrade_segmentation_config(values: dict[str, Any]) -> dict[str, Any]:
    """``train.sw_overlap`` / ``train.sw_batch_size`` (before per-task data settings) are
    ``data.sw_overlap`` / ``data.sw_batch_size``; a value given in both places is the data one."""
    train = values.get("train")
    if not isinstance(train, dict) or not any(k in train for k in MOVED_FROM_TRAIN):
        return values
    train = dict(train)
    data = values.get("data") or {}
    data = data.model_dump() if isinstance(data, DataConfig) else dict(data)
    for key in MOVED_FROM_TRAIN:
        if key in train:
            data.setdefault(key, train.pop(key))
    return {**values, "train": train, "data": data}
