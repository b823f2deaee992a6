"""Segmentation: labelled patches plus an unlabelled pool, sliding-window evaluation, masks out.

The first task on the platform; its behaviour is the engine's before tasks were plugins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from medssl.data.dataset import Dataset
from medssl.data.fingerprint import Fingerprint
from medssl.engine.config import RunConfig
from medssl.engine.module import MethodModule
from medssl.engine.task import Monitor, Task, register_task
from medssl.errors import ConfigError
from medssl.tasks.segmentation import inference
from medssl.tasks.segmentation.config import SegmentationDataConfig, upgrade_segmentation_config
from medssl.tasks.segmentation.data import SegmentationData
from medssl.tasks.segmentation.plan import plan_segmentation
from medssl.tasks.segmentation.profiles import SEGMENTATION_PROFILES, fit_patch, network_dims


@register_task
class SegmentationTask(Task):
    name = "segmentation"
    data_config = SegmentationDataConfig
    monitor = Monitor("val/dice", "max")
    bench_metrics = ("dice", "jaccard", "hd95", "asd")
    report_metrics = ("dice", "hd95")
    plans = True

    def upgrade_config(self, values: dict[str, Any]) -> dict[str, Any]:
        return upgrade_segmentation_config(values)

    def profile_defaults(self, profile: str, dims: int) -> dict[str, Any]:
        return SEGMENTATION_PROFILES[(profile, dims)]

    def network_dims(self, dataset: Dataset, requested: int | None) -> int:
        return network_dims(dataset, requested)

    def plan(
        self, fingerprint: Fingerprint, dataset: Dataset, profile: str, requested_dims: int | None
    ) -> tuple[int, dict[str, Any], list[str]]:
        return plan_segmentation(fingerprint, dataset, profile, requested_dims)

    def fit_config(self, cfg: RunConfig, dataset: Dataset) -> RunConfig:
        cfg.data.patch_size = fit_patch(cfg, dataset)
        return cfg

    def dataset_info(self, dataset: Dataset, cfg: RunConfig) -> dict[str, Any]:
        """Classes, channels and dimensions; label values must be 0..K-1."""
        names = sorted(dataset.labels, key=dataset.labels.get)
        values = sorted(dataset.labels.values())
        if values and values != list(range(len(values))):
            raise ConfigError(
                f"{dataset.root}: label values {values} are not 0..K-1; "
                "renumber them in dataset.json and the label maps"
            )
        return {"num_classes": len(values), "class_names": names} | self.image_info(dataset, cfg)

    def datamodule(
        self,
        dataset: Dataset,
        split: dict[str, Any],
        cfg: RunConfig,
        info: dict[str, Any],
        method_cls: type[MethodModule],
    ) -> L.LightningDataModule:
        return SegmentationData(
            dataset,
            split,
            cfg.data,
            info,
            use_unlabeled="unlabeled" in method_cls.streams,
            steps_per_epoch=self.steps_per_epoch(cfg),
        )

    def evaluate(
        self, run_dir: Path, module: MethodModule, dataset: Dataset, **options: Any
    ) -> dict[str, Any]:
        return inference.evaluate(run_dir, module, dataset, **options)

    def predict(
        self, module: MethodModule, inputs: list[Path], out_dir: Path, **options: Any
    ) -> list[Path]:
        return inference.predict(module, inputs, out_dir, **options)
