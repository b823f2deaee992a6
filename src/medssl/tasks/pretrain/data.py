"""Lightning data module for pretraining: random patches of unlabelled images, fixed val patches.

The deterministic prefix (load, intensity, resampling, padding) is cached as in segmentation, so
pretraining sees exactly the preprocessing a downstream run applies; validation uses the
centre patch of each validation case, so the monitored pretext loss compares like with like.

In-memory cases (a MedMNIST ``.npz``: ``Case.array``, uint8 without a channel axis, or RGB with
a trailing one) take classification's preprocessing instead of loading a file: channel first,
0-255 scaled to [0, 1] (:func:`medssl.data.transforms.classification_pipeline`), so the encoder
a classification run initialises from saw its inputs. A set made only of such small images is
read whole: the patch is capped at the arrays' size rather than padded around them. A pool of
arrays and files runs each kind through its own prefix and the same random suffix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import monai.transforms as mt
import numpy as np
import torch
from lightning.pytorch.utilities import CombinedLoader
from monai.data import CacheDataset, DataLoader
from monai.data import Dataset as MonaiDataset

from medssl.data.dataset import Case, Dataset
from medssl.data.derived import DerivedChannelsd
from medssl.data.transforms import (
    IMAGE,
    array_to_unit,
    intensity_kind,
    load_and_normalise,
    patch_prefix,
    random_patches,
    resize_slices,
)
from medssl.engine.checkpoint import plain_tensors
from medssl.engine.loaders import task_loader
from medssl.tasks.segmentation.config import PatchDataConfig
from medssl.tasks.segmentation.data import case_record, prefix_options


def array_record(case: Case) -> dict[str, Any]:
    """A MONAI data dict of an in-memory case: its array (a view, not a copy) and its id."""
    return {IMAGE: case.array, "id": case.id}


def array_prefix(cfg: PatchDataConfig, info: dict[str, Any], channel_last: bool) -> list:
    """The deterministic prefix of in-memory uint8 arrays, as classification reads them:
    channel first (``channel_last``: RGB MedMNIST), 0-255 scaled to [0, 1]; then the run's
    slice resizing and derived channels as for files. Arrays have no spacing or orientation."""
    steps: list = array_to_unit(channel_last)
    if cfg.slice_size:
        steps.append(resize_slices([IMAGE], cfg.slice_size, info["data_dims"]))
    if cfg.derived_channels:
        in_plane = info["data_dims"] == 3 and info["spatial_dims"] == 2
        steps.append(DerivedChannelsd(IMAGE, cfg.derived_channels, in_plane=in_plane))
    steps.append(mt.EnsureTyped(IMAGE, track_meta=True))
    return steps


def array_patch(patch: Sequence[int], arrays: Sequence[np.ndarray]) -> list[int]:
    """``patch`` capped at the largest of ``arrays``' first ``len(patch)`` axes (a 28 x 28 set
    is read whole, not padded to a 128 x 128 patch)."""
    largest = [max(int(a.shape[i]) for a in arrays) for i in range(len(patch))]
    return [min(int(p), n) for p, n in zip(patch, largest, strict=True)]


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
        self.cases = {c.id: c for c in dataset.cases}
        arrays = [c.array for c in dataset.cases if c.array is not None]
        channel_last = bool(arrays) and arrays[0].ndim == int(info["data_dims"]) + 1
        self.array_prefix = array_prefix(cfg, info, channel_last)
        self.only_arrays = bool(arrays) and len(arrays) == len(dataset.cases)
        self.patch = list(cfg.patch_size or [])
        if self.only_arrays and self.patch:
            self.patch = array_patch(self.patch, arrays)

    def _cache(self, records: list[dict[str, Any]], transform: mt.Compose):
        if self.cfg.cache:
            return CacheDataset(records, transform, progress=False, num_workers=None)
        return MonaiDataset(records, transform)

    def _cached(self, key: str, suffix: list) -> torch.utils.data.Dataset:
        """The cases of split part ``key``: files through the load-and-normalise prefix, arrays
        through :func:`array_prefix`, each then through ``suffix``."""
        cases = [self.cases[i] for i in self.split[key]]
        files = [case_record(c, with_label=False) for c in cases if c.array is None]
        arrays = [array_record(c) for c in cases if c.array is not None]
        parts = [
            self._cache(records, mt.Compose(prefix + suffix))
            for records, prefix in ((files, self.prefix), (arrays, self.array_prefix))
            if records
        ]
        return parts[0] if len(parts) == 1 else torch.utils.data.ConcatDataset(parts)

    def setup(self, stage: str | None = None) -> None:
        patch = self.patch
        prefix = patch_prefix(patch, False, self.slice_2d)
        if stage in (None, "fit"):
            sampling = random_patches(
                patch,
                False,
                self.slice_2d,
                foreground_ratio=0.0,
                augment=self.cfg.augment,
                spatial_augment="flip",
            )
            self.train_set = self._cached("unlabeled", prefix + sampling)
        if stage in (None, "fit", "validate") and self.split["val"]:
            roi = patch + [1] if self.slice_2d else patch
            centre = [mt.CenterSpatialCropd(IMAGE, roi_size=roi)]
            if self.slice_2d:
                centre.append(mt.SqueezeDimd(IMAGE, dim=-1))
            self.val_set = self._cached("val", prefix + centre)

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
