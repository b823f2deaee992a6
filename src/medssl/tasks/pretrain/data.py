"""Lightning data module for pretraining: random patches of unlabelled images, fixed val patches.

The deterministic prefix (load, intensity, resampling, padding) is cached as in segmentation, so
pretraining sees exactly the preprocessing a downstream run applies; validation uses the
centre patch of each validation case, so the monitored pretext loss compares like with like.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import monai.transforms as mt
import torch
from lightning.pytorch.utilities import CombinedLoader
from monai.data import CacheDataset, DataLoader
from monai.data import Dataset as MonaiDataset

from medssl.data.dataset import Dataset
from medssl.data.transforms import intensity_kind, load_and_normalise, patch_prefix, random_patches
from medssl.engine.checkpoint import plain_tensors
from medssl.engine.loaders import task_loader
from medssl.tasks.segmentation.config import PatchDataConfig
from medssl.tasks.segmentation.data import case_record, prefix_options


class PretrainData(L.LightningDataModule):
    def __init__(
        self,
        dataset: Dataset,
        split: dict[str, list[str]],
        cfg: PatchDataConfig,
        info: dict[str, Any],
        steps_per_epoch: int = 250,
    ) -> None:
        super().__init__()
        self.dataset, self.split, self.cfg, self.info = dataset, split, cfg, info
        self.steps_per_epoch = steps_per_epoch
        self.slice_2d = info["spatial_dims"] == 2 and info["data_dims"] == 3
        kind = intensity_kind(dataset.channel_names, cfg.intensity)
        self.prefix = load_and_normalise(False, **prefix_options(cfg, info, kind))

    def _cached(self, key: str, transform: mt.Compose) -> torch.utils.data.Dataset:
        records = [case_record(self.dataset.case(i), with_label=False) for i in self.split[key]]
        if self.cfg.cache:
            return CacheDataset(records, transform, progress=False, num_workers=None)
        return MonaiDataset(records, transform)

    def setup(self, stage: str | None = None) -> None:
        patch = list(self.cfg.patch_size or [])
        prefix = self.prefix + patch_prefix(patch, False, self.slice_2d)
        if stage in (None, "fit"):
            sampling = random_patches(
                patch,
                False,
                self.slice_2d,
                foreground_ratio=0.0,
                augment=self.cfg.augment,
                spatial_augment="flip",
            )
            self.train_set = self._cached("unlabeled", mt.Compose(prefix + sampling))
        if stage in (None, "fit", "validate") and self.split["val"]:
            roi = patch + [1] if self.slice_2d else patch
            centre = [mt.CenterSpatialCropd("image", roi_size=roi)]
            if self.slice_2d:
                centre.append(mt.SqueezeDimd("image", dim=-1))
            self.val_set = self._cached("val", mt.Compose(prefix + centre))

    def _loader(self, data, shuffle: bool) -> DataLoader:
        # An epoch of steps x batch samples drawn from every image (a large unlabelled set is
        # not cut to its first steps x batch images).
        draws = self.steps_per_epoch * self.cfg.batch_size
        return task_loader(data, self.cfg.batch_size, self.cfg.num_workers, shuffle, draws)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return plain_tensors(batch)

    def train_dataloader(self):
        return CombinedLoader({"unlabeled": self._loader(self.train_set, True)}, "max_size_cycle")

    def val_dataloader(self):
        return self._loader(self.val_set, False) if self.split["val"] else []
