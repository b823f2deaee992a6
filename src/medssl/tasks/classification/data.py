"""Lightning data module for classification: whole images resized to one size, class labels.

A training batch is ``{"labeled": {"image", "label", "id"}}``; validation batches are the same
dict without the stream key. Cases come from a MedMNIST ``.npz`` (in-memory arrays, uint8 scaled
to [0, 1]), a CSV manifest of image files or the ``cls3d`` phantom (a manifest too; files follow
segmentation's CT window / z-score rule). A manifest's ``mask`` column is not read: the
classifier sees the image alone. The deterministic part of the pipeline is cached (MONAI's
CacheDataset); an epoch is a fixed number of steps drawn from the whole training set.
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
from medssl.data.radiomics import Standardisation
from medssl.data.transforms import classification_pipeline, intensity_kind
from medssl.engine.checkpoint import plain_tensors
from medssl.engine.config import DataConfig
from medssl.engine.loaders import task_loader
from medssl.tasks.classification.lesion import (
    LESION,
    RADIOMICS,
    LesionInputs,
    fit_radiomics,
    lesion_spec,
    region_steps,
)

IMAGE = "image"


def pipeline(
    info: dict[str, Any],
    data: DataConfig,
    augment: bool = False,
    inputs: LesionInputs | None = None,
) -> mt.Compose:
    """The run's preprocessing (training adds augmentation): the same for train, val, evaluate
    and predict, built from what the checkpoint stores (``dataset_info``, the data config) and
    what the method reads (``inputs``: a lesion region crop)."""
    from_array = info.get("source") == "array"
    kind = intensity_kind(info.get("channel_names") or {}, data.intensity)
    size = info["image_size"]
    region = region_steps(inputs or LesionInputs(), info.get("pixel_spacing"))
    steps = classification_pipeline(
        size, from_array, kind, data.ct_window, augment, data.derived_channels, region
    )
    if from_array and int(info["in_channels"]) > 1:  # RGB MedMNIST: channel axis last
        steps.transforms = (
            mt.EnsureChannelFirstd(IMAGE, channel_dim=-1),
            *steps.transforms[1:],
        )
    return steps


def case_record(
    case: Case,
    inputs: LesionInputs | None = None,
    radiomics: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """A MONAI data dict: the array (MedMNIST) or the image path, the class index and the id;
    the lesion spec and the standardised radiomics row when the method reads them."""
    image: Any = case.array if case.array is not None else str(case.images[0])
    record: dict[str, Any] = {IMAGE: image, "id": case.id}
    if case.target is not None:
        record["label"] = int(case.target)
    if inputs is not None and inputs.context_margin is not None:
        record[LESION] = lesion_spec(case)
    if radiomics is not None:
        record[RADIOMICS] = radiomics[case.id]
    return record


def class_counts(labels: Sequence[int], num_classes: int) -> list[int]:
    """How many of ``labels`` fall in each class ``0..num_classes-1``."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    return [int(n) for n in counts[:num_classes]]


class ClassificationData(L.LightningDataModule):
    def __init__(
        self,
        dataset: Dataset,
        split: dict[str, list[str]],
        cfg: DataConfig,
        info: dict[str, Any],
        steps_per_epoch: int = 250,
        inputs: LesionInputs | None = None,
    ) -> None:
        super().__init__()
        self.dataset, self.split, self.cfg, self.info = dataset, split, cfg, info
        self.steps_per_epoch = steps_per_epoch
        self.inputs = inputs or LesionInputs()
        labels = [int(dataset.case(i).target) for i in split["labeled"]]
        #: training cases per class, for ``method_config.class_balanced``
        self.class_counts = class_counts(labels, int(info["num_classes"]))
        #: standardised radiomics rows by case id and the training statistics (the method keeps
        #: them to standardise the cases it evaluates), when the method reads radiomics
        self.radiomics_rows: dict[str, np.ndarray] | None = None
        self.radiomics_stats: Standardisation | None = None
        if self.inputs.radiomics is not None:
            self.radiomics_rows, self.radiomics_stats = fit_radiomics(
                dataset, split, self.inputs, info["radiomics"]["columns"]
            )

    def _records(self, key: str) -> list[dict[str, Any]]:
        return [
            case_record(self.dataset.case(i), self.inputs, self.radiomics_rows)
            for i in self.split[key]
        ]

    def _dataset(self, key: str, transform: mt.Compose) -> torch.utils.data.Dataset:
        records = self._records(key)
        if self.cfg.cache:
            return CacheDataset(records, transform, progress=False, num_workers=None)
        return MonaiDataset(records, transform)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit"):
            steps = pipeline(self.info, self.cfg, self.cfg.augment, self.inputs)
            self.train_set = self._dataset("labeled", steps)
        if stage in (None, "fit", "validate") and self.split["val"]:
            self.val_set = self._dataset("val", pipeline(self.info, self.cfg, inputs=self.inputs))

    def _loader(self, data, shuffle: bool) -> DataLoader:
        """Training: ``steps_per_epoch`` batches drawn without replacement from the whole set
        (a fresh permutation each time; small sets are repeated), so that every case is seen
        however large the set (a set sorted by class, as PneumoniaMNIST's is, stays balanced)."""
        draws = self.steps_per_epoch * self.cfg.batch_size
        return task_loader(data, self.cfg.batch_size, self.cfg.num_workers, shuffle, draws)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        return plain_tensors(batch)

    def train_dataloader(self):
        return CombinedLoader({"labeled": self._loader(self.train_set, True)}, "max_size_cycle")

    def val_dataloader(self):
        if not self.split["val"]:
            return []
        return self._loader(self.val_set, False)
