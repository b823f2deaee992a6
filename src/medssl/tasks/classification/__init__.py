"""Classification: one class per image (2D or 3D), softmax probabilities, AUC picks the best.

Data: a MedMNIST ``.npz`` (its own train / val split), a CSV manifest of image files with a
``label`` column (``split`` optional; masks are not read) or the ``cls3d`` phantom. Every image
is resized to ``data.patch_size`` (the images' own size unless a profile or config sets one).
The monitor is the validation AUC, MedMNIST's headline metric: unlike accuracy it does not
depend on a threshold, which matters on skewed sets such as PneumoniaMNIST (about 9:1 here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import numpy as np

from medssl.data.dataset import Dataset, image_channels
from medssl.data.radiomics.table import raster_spacing
from medssl.engine.config import RunConfig
from medssl.engine.module import MethodModule
from medssl.engine.task import Monitor, Task, register_task
from medssl.errors import ConfigError
from medssl.tasks.classification import inference
from medssl.tasks.classification.data import ClassificationData
from medssl.tasks.classification.lesion import LesionInputs, describe_radiomics
from medssl.tasks.classification.profiles import (
    CLASSIFICATION_PROFILES,
    data_dims_of,
    fit_input_size,
)


def lesion_inputs(cfg: RunConfig) -> LesionInputs:
    """What the run's method reads besides the image (a lesion region, radiomics)."""
    from medssl.engine.module import get_method

    return get_method("classification", cfg.method).lesion_inputs(cfg.method_config)


@register_task
class ClassificationTask(Task):
    name = "classification"
    monitor = Monitor("val/auc", "max")
    bench_metrics = ("auc", "accuracy", "f1_macro", "balanced_accuracy")
    report_metrics = ("auc", "accuracy")
    report_sections = ("roc", "confusion", "embedding", "radiomics")

    def profile_defaults(self, profile: str, dims: int) -> dict[str, Any]:
        return CLASSIFICATION_PROFILES[(profile, dims)]

    def network_dims(self, dataset: Dataset, requested: int | None) -> int:
        """The images' own dimensions: a classifier sees whole images, never slices."""
        dims = data_dims_of(dataset)
        if requested and requested != dims:
            raise ConfigError(
                f"{dataset.root}: data.spatial_dims={requested} but the images are {dims}D; "
                "a classifier takes whole images: drop data.spatial_dims"
            )
        return dims

    def fit_config(self, cfg: RunConfig, dataset: Dataset) -> RunConfig:
        cfg.data.patch_size = fit_input_size(cfg, dataset)
        return cfg

    def dataset_info(self, dataset: Dataset, cfg: RunConfig) -> dict[str, Any]:
        """Classes (values 0..K-1, named as the dataset names them), channels, dimensions and
        the input size; ``source`` says whether cases are in-memory arrays (MedMNIST: uint8
        scaled to [0, 1]) or files (CT window / z-score)."""
        targets = [c.target for c in dataset.labeled]
        if any(np.ndim(t) != 0 for t in targets):
            raise ConfigError(
                f"{dataset.root}: multi-label targets (one 0/1 column per class); the "
                "classification task trains one class per image"
            )
        values = sorted(set(dataset.labels.values()) | {int(t) for t in targets})
        if values != list(range(len(values))):
            raise ConfigError(
                f"{dataset.root}: class values {values} are not 0..K-1; renumber them "
                "(dataset.json labels or the manifest's label column)"
            )
        by_value = {v: k for k, v in dataset.labels.items()}
        info = {
            "num_classes": len(values),
            "class_names": [by_value.get(v, str(v)) for v in values],
            "in_channels": image_channels(dataset),
            "channel_names": dataset.channel_names,
            "spatial_dims": cfg.data.spatial_dims,
            "data_dims": data_dims_of(dataset),
            "image_size": list(cfg.data.patch_size or []),
            "source": "array" if any(c.array is not None for c in dataset.cases) else "file",
            "layout": dataset.layout,
        }
        inputs = lesion_inputs(cfg)
        if inputs.any:  # positions in mm on PNG / JPEG files need the declared pixel size
            info["pixel_spacing"] = raster_spacing(dataset)
        if inputs.radiomics is not None:
            usable = [c.id for c in dataset.cases if c.meta.get("split") != "test"]
            info["radiomics"] = describe_radiomics(dataset, usable, inputs)
        return info

    def make_split(self, dataset: Dataset, cfg: RunConfig) -> dict[str, Any]:
        """The dataset's own validation split (MedMNIST's ``val_*``, a manifest's ``split``
        column) when it has one, else a seeded ``data.val_cases`` share; test cases never
        train."""
        usable = dataset.subset([c.id for c in dataset.cases if c.meta.get("split") != "test"])
        return super().make_split(usable, cfg)

    def datamodule(
        self,
        dataset: Dataset,
        split: dict[str, Any],
        cfg: RunConfig,
        info: dict[str, Any],
        method_cls: type[MethodModule],
    ) -> L.LightningDataModule:
        steps = self.steps_per_epoch(cfg)
        inputs = method_cls.lesion_inputs(cfg.method_config)
        return ClassificationData(dataset, split, cfg.data, info, steps, inputs)

    def evaluate(
        self, run_dir: Path, module: MethodModule, dataset: Dataset, **options: Any
    ) -> dict[str, Any]:
        return inference.evaluate(run_dir, module, dataset, **options)

    def predict(
        self, module: MethodModule, inputs: list[Path], out_dir: Path, **options: Any
    ) -> list[Path]:
        return inference.predict(module, inputs, out_dir, **options)
