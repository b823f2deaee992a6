"""Lightning data module for segmentation: labelled patches, an unlabelled pool, whole val cases.

Every training batch is ``{"labeled": {"image", "label"}, "unlabeled": {"image"}}`` (the second
only for methods that use it), so semi-supervised methods see the two streams side by side.
The deterministic part of each pipeline is cached by MONAI's CacheDataset; an epoch is a fixed
number of steps, independent of how many cases there are.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import CombinedLoader
from monai.data import CacheDataset, DataLoader, Dataset
from monai.transforms import Compose

from medssl.data.dataset import Case
from medssl.data.dataset import Dataset as MedDataset
from medssl.data.transforms import (
    intensity_kind,
    load_and_normalise,
    patch_prefix,
    random_patches,
)
from medssl.engine.checkpoint import plain_tensors
from medssl.engine.loaders import task_loader
from medssl.tasks.segmentation.config import PatchDataConfig, SegmentationDataConfig


def prefix_options(cfg: PatchDataConfig, info: dict[str, Any], intensity: str) -> dict[str, Any]:
    """Arguments of :func:`load_and_normalise` for a run: training, validation and inference
    must preprocess identically, so both build them here."""
    return dict(
        intensity=intensity,
        target_spacing=cfg.target_spacing,
        ct_window=cfg.ct_window,
        data_dims=info["data_dims"],
        derived_channels=cfg.derived_channels,
        network_dims=info["spatial_dims"],
        slice_size=cfg.slice_size,
    )


def case_record(case: Case, with_label: bool) -> dict[str, Any]:
    """A MONAI data dict: one path or the channel list, plus the label path and the id."""
    image = [str(p) for p in case.images]
    record: dict[str, Any] = {"image": image[0] if len(image) == 1 else image, "id": case.id}
    if with_label:
        record["label"] = str(case.label)
    return record


class Repeat(torch.utils.data.Dataset):
    """Repeats a (cached) dataset so that one epoch has ``length`` samples."""

    def __init__(self, base: torch.utils.data.Dataset, length: int) -> None:
        self.base, self.length = base, max(length, 1)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Any:
        return self.base[index % len(self.base)]


class SegmentationData(L.LightningDataModule):
    def __init__(
        self,
        dataset: MedDataset,
        split: dict[str, list[str]],
        cfg: SegmentationDataConfig,
        info: dict[str, Any],
        use_unlabeled: bool,
        steps_per_epoch: int = 250,
    ) -> None:
        super().__init__()
        self.dataset, self.split, self.cfg, self.info = dataset, split, cfg, info
        self.use_unlabeled = use_unlabeled and bool(split["unlabeled"])
        self.steps_per_epoch = steps_per_epoch
        self.intensity = intensity_kind(dataset.channel_names, cfg.intensity)
        self.slice_2d = info["spatial_dims"] == 2 and info["data_dims"] == 3

    def _records(self, key: str, with_label: bool) -> list[dict[str, Any]]:
        return [case_record(self.dataset.case(i), with_label) for i in self.split[key]]

    def prefix(self, with_label: bool) -> list:
        return load_and_normalise(with_label, **prefix_options(self.cfg, self.info, self.intensity))

    def _train_set(self, key: str, with_label: bool, batch: int) -> torch.utils.data.Dataset:
        transform = Compose(
            self.prefix(with_label)
            + patch_prefix(self.cfg.patch_size, with_label, self.slice_2d)
            + random_patches(
                self.cfg.patch_size,
                with_label,
                self.slice_2d,
                foreground_ratio=self.cfg.foreground_ratio,
                augment=self.cfg.augment,
                spatial_augment=self.spatial_augment(),
                intensity_augment=self.cfg.intensity_augment,
            )
        )
        return Repeat(self._dataset(key, with_label, transform), self.steps_per_epoch * batch)

    def spatial_augment(self) -> str:
        """``auto``: SSL4MIS's rotations for 2D networks, UA-MT's rot90/flip for 3D ones."""
        if self.cfg.spatial_augment != "auto":
            return self.cfg.spatial_augment
        return "affine" if self.info["spatial_dims"] == 2 else "rot_flip"

    def _dataset(self, key: str, with_label: bool, transform: Compose) -> torch.utils.data.Dataset:
        """Cached (deterministic prefix computed once) unless ``data.cache`` is off."""
        records = self._records(key, with_label)
        if self.cfg.cache:
            return CacheDataset(records, transform, progress=False, num_workers=None)
        return Dataset(records, transform)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit"):
            self.labeled_set = self._train_set("labeled", True, self.cfg.batch_size)
            if self.use_unlabeled:
                self.unlabeled_set = self._train_set(
                    "unlabeled", False, self.cfg.unlabeled_batch_size
                )
        if stage in (None, "fit", "validate"):
            self.val_set = self._dataset("val", True, Compose(self.prefix(True)))

    def _loader(self, data, batch: int, shuffle: bool) -> DataLoader:
        return task_loader(data, batch, self.cfg.num_workers, train=shuffle)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # MetaTensor bookkeeping slows every op and is not needed past the pipeline.
        return plain_tensors(batch)

    def train_dataloader(self):
        loaders = {"labeled": self._loader(self.labeled_set, self.cfg.batch_size, True)}
        if self.use_unlabeled:
            loaders["unlabeled"] = self._loader(
                self.unlabeled_set, self.cfg.unlabeled_batch_size, True
            )
        return CombinedLoader(loaders, mode="max_size_cycle")

    def val_dataloader(self):
        if not self.split["val"]:
            return []
        return self._loader(self.val_set, 1, False)
