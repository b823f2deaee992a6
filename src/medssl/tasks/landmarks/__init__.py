"""Landmarks: N points per 2D image (and classes where the data give them), MRE picks the best.

Data: a landmark set (``images/`` + ``landmarks.json``: cephalometric, the ``landmark2d``
phantom) or an MSD folder with a ``landmarks.json`` beside its index (jsrt); see
:mod:`medssl.tasks.landmarks.view`. Training is against each case's reference points, the mean
of the annotators where ``landmarks.json`` gives one (cephalometric); ``evaluate`` scores against
the reference and against each annotator, and gives the annotators' own disagreement as the
human reference. Every image is resized to ``data.patch_size`` (from ``data.input_side`` and the
images' aspect ratio when unset); errors are measured in the original image, in mm where
``landmarks.json`` gives ``pixel_spacing_mm``. The monitor is the validation MRE.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import lightning as L

from medssl.data.dataset import Dataset, image_dims
from medssl.data.io import read_header
from medssl.engine.config import RunConfig
from medssl.engine.module import MethodModule
from medssl.engine.task import Monitor, Task, register_task
from medssl.errors import ConfigError, file_error
from medssl.tasks.landmarks import inference
from medssl.tasks.landmarks.config import (
    LANDMARK_PROFILES,
    SIDE_MULTIPLE,
    LandmarkDataConfig,
    input_size,
)
from medssl.tasks.landmarks.data import LandmarkData
from medssl.tasks.landmarks.skeletal import check_rule, with_rule_classes
from medssl.tasks.landmarks.view import (
    flip_pairs,
    image_classes,
    landmark_class_names,
    landmark_set,
    landmark_view,
)


@register_task
class LandmarksTask(Task):
    name = "landmarks"
    data_config = LandmarkDataConfig
    monitor = Monitor("val/mre", "min")
    bench_metrics = ("mre", "sdr_2mm", "sdr_2.5mm", "sdr_3mm", "sdr_4mm")
    report_metrics = ("mre", "sdr_2mm")
    report_sections = ("landmark_errors", "landmark_overlay", "roc", "confusion", "rule_confusion")

    def load_dataset(self, root: str | Path, domains: list[str] | None = None) -> Dataset:
        return landmark_view(super().load_dataset(root, domains))

    def profile_defaults(self, profile: str, dims: int) -> dict[str, Any]:
        return copy.deepcopy(LANDMARK_PROFILES[profile])

    def network_dims(self, dataset: Dataset, requested: int | None) -> int:
        """Always 2: landmarks are found in 2D images."""
        dims = image_dims(dataset)
        if dims not in (None, 2):
            raise file_error(
                dataset.root,
                f"holds {dims}D images; the landmarks task localises points in 2D images",
                "give 2D images (PNG, JPEG, 2D NIfTI)",
            )
        if requested not in (None, 2):
            raise ConfigError(f"data.spatial_dims={requested}: the landmarks task is 2D; drop it")
        return 2

    def fit_config(self, cfg: RunConfig, dataset: Dataset) -> RunConfig:
        """``data.patch_size`` from the first image's aspect ratio and ``data.input_side``."""
        if cfg.data.patch_size is None:
            first = next((c for c in dataset.cases if c.images), None)
            if first is None:
                raise ConfigError(f"{dataset.root}: no image to read a size from")
            width, height = read_header(first.images[0]).spatial_shape[:2]
            cfg.data.patch_size = input_size(width, height, cfg.data.input_side)
        if len(cfg.data.patch_size) != 2:
            raise ConfigError(
                f"data.patch_size {cfg.data.patch_size}: give [X, Y], the network input of a 2D "
                f"image (multiples of {SIDE_MULTIPLE})"
            )
        return cfg

    def dataset_info(self, dataset: Dataset, cfg: RunConfig) -> dict[str, Any]:
        """Landmark names, the image and per-landmark classes, left / right pairs, the pixel
        spacing, channels and the input size."""
        view = landmark_view(dataset)
        marks = landmark_set(view)
        rule = cfg.data.class_rule
        check_rule(rule, len(marks.names), dataset.root)
        labelled = view.labeled
        if not labelled:
            raise file_error(
                view.root, "has no case with landmarks", "add points to landmarks.json"
            )
        names = image_classes(view)
        classes = [int(c.meta["class"]) for c in labelled if "class" in c.meta]
        if classes and (min(classes) < 0 or max(classes) >= len(names)):
            raise file_error(
                view.root / "landmarks.json",
                f"image classes {sorted(set(classes))} do not match class_names {names}",
                "use indices 0..K-1 of class_names",
            )
        if rule is not None:  # the rule's classes (a case it cannot judge has -1: none)
            names = image_classes(with_rule_classes(view, rule))
        return {
            **self.image_info(view, cfg),
            "image_size": list(cfg.data.patch_size or []),
            "landmark_names": list(marks.names),
            "num_landmarks": len(marks.names),
            "class_names": names if classes or rule is not None else [],
            "landmark_class_names": landmark_class_names(marks),
            "flip_pairs": [list(p) for p in flip_pairs(view)],
            "spacing_mm": marks.spacing_mm,
            "class_rule": rule,
        }

    def make_split(self, dataset: Dataset, cfg: RunConfig) -> dict[str, Any]:
        return super().make_split(landmark_view(dataset), cfg)

    def datamodule(
        self,
        dataset: Dataset,
        split: dict[str, Any],
        cfg: RunConfig,
        info: dict[str, Any],
        method_cls: type[MethodModule],
    ) -> L.LightningDataModule:
        view = with_rule_classes(landmark_view(dataset), cfg.data.class_rule)
        return LandmarkData(view, split, cfg.data, info, self.steps_per_epoch(cfg))

    def evaluate(
        self, run_dir: Path, module: MethodModule, dataset: Dataset, **options: Any
    ) -> dict[str, Any]:
        view = with_rule_classes(landmark_view(dataset), module.dataset_info.get("class_rule"))
        return inference.evaluate(run_dir, module, view, **options)

    def predict(
        self, module: MethodModule, inputs: list[Path], out_dir: Path, **options: Any
    ) -> list[Path]:
        return inference.predict(module, inputs, out_dir, **options)
