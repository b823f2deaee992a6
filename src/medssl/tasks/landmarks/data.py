"""Lightning data module for landmarks: whole radiographs resized to one size, points with them.

A training batch is ``{"labeled": {"image", "landmarks", "landmarks_scale", "id"[, "class"]
[, "landmark_class"]}}``; validation batches are the same dict without the stream key.
``landmarks`` ``(B, L, 2)`` are in the network input's continuous pixels (NaN for missing ones),
``landmarks_scale`` ``(B, 2)`` is input size / original size, ``class`` the image class and
``landmark_class`` ``(B, L)`` the per-landmark classes (-1: none given). Training moves the
points with flips, rotations and scalings (:func:`medssl.data.transforms.landmark_pipeline`);
the deterministic prefix (load, scale to [0, 1], resize) is cached.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import monai.transforms as mt
import numpy as np
import torch
from lightning.pytorch.utilities import CombinedLoader
from monai.data import CacheDataset, DataLoader
from monai.data import Dataset as MonaiDataset

from medssl.data.dataset import Case, Dataset
from medssl.data.landmark_transforms import LandmarkAugmentation, landmark_pipeline
from medssl.engine.checkpoint import plain_tensors
from medssl.engine.loaders import task_loader
from medssl.tasks.landmarks.config import LandmarkDataConfig

#: per-landmark values that swap with the points of a left / right pair under a flip
SWAP_KEYS = ("landmark_class",)


def pipeline(info: dict[str, Any], data: LandmarkDataConfig, train: bool = False) -> mt.Compose:
    """The run's preprocessing, built from what the checkpoint stores; training adds the
    spatial and intensity augmentation when ``data.augment``."""
    augment = train and data.augment
    spatial = None
    if augment:
        spatial = LandmarkAugmentation(
            flip_prob=data.flip_prob,
            rotate_deg=data.rotate_deg,
            scale=data.scale_range,
            prob=data.affine_prob,
            flip_pairs=tuple(tuple(p) for p in info.get("flip_pairs") or ()),
        )
    return landmark_pipeline(info["image_size"], augment, spatial, SWAP_KEYS)


def case_record(case: Case, info: dict[str, Any]) -> dict[str, Any]:
    """A MONAI data dict of one case: its image path, id, reference points and the classes the
    run trains (-1 where the case gives none)."""
    record: dict[str, Any] = {"image": str(case.images[0]), "id": case.id}
    if case.target is not None:
        record["landmarks"] = np.asarray(case.target, dtype=np.float64)
    if info.get("class_names"):
        record["class"] = int(case.meta.get("class", -1))
    if info.get("landmark_class_names"):
        missing = np.full(int(info["num_landmarks"]), -1, dtype=np.int64)
        record["landmark_class"] = np.asarray(case.meta.get("landmark_class", missing))
    return record


class LandmarkData(L.LightningDataModule):
    def __init__(
        self,
        dataset: Dataset,
        split: dict[str, list[str]],
        cfg: LandmarkDataConfig,
        info: dict[str, Any],
        steps_per_epoch: int = 250,
    ) -> None:
        super().__init__()
        self.dataset, self.split, self.cfg, self.info = dataset, split, cfg, info
        self.steps_per_epoch = steps_per_epoch

    def _dataset(self, key: str, transform: mt.Compose) -> torch.utils.data.Dataset:
        records = [case_record(self.dataset.case(i), self.info) for i in self.split[key]]
        if self.cfg.cache:
            return CacheDataset(records, transform, progress=False, num_workers=None)
        return MonaiDataset(records, transform)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit"):
            self.train_set = self._dataset("labeled", pipeline(self.info, self.cfg, train=True))
        if stage in (None, "fit", "validate") and self.split["val"]:
            self.val_set = self._dataset("val", pipeline(self.info, self.cfg))

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return plain_tensors(batch)

    def train_dataloader(self) -> CombinedLoader:
        draws = self.steps_per_epoch * self.cfg.batch_size
        loader = task_loader(self.train_set, self.cfg.batch_size, self.cfg.num_workers, True, draws)
        return CombinedLoader({"labeled": loader}, "max_size_cycle")

    def val_dataloader(self) -> DataLoader | list:
        if not self.split["val"]:
            return []
        return task_loader(self.val_set, self.cfg.batch_size, self.cfg.num_workers, False)
