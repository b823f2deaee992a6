"""Segmentation's ``evaluate`` and ``predict``: sliding window, back to the input grid, metrics.

Images go through the run's deterministic preprocessing, the method's sliding-window inference,
then MONAI's ``Invertd`` back to the input's own grid, so metrics are computed and masks written
in the space of the files the user gave (geometry kept: spacing, origin, direction). The optional
largest-component step is the post-processing of the UA-MT / MC-Net+ / BCP test scripts; it is
off unless asked for, and every result says whether it was on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd

from medssl.atomic import verify_zip, write_atomic
from medssl.data.dataset import Case, Dataset
from medssl.data.io import read_header, read_image, write_image
from medssl.data.transforms import intensity_kind, load_and_normalise
from medssl.engine.inference import write_outputs
from medssl.engine.module import MethodModule
from medssl.errors import CheckpointError, ConfigError, DataError, file_error
from medssl.metrics.postprocess import keep_largest_components
from medssl.metrics.segmentation import (
    EMPTY_POLICY,
    distance_unit,
    mean_over_classes,
    segmentation_metrics,
)
from medssl.tasks.segmentation.data import case_record, prefix_options

MAX_OVERLAYS = 8


class SegmentationPredictor:
    """Preprocess -> predict -> invert for one run; shared by evaluate and predict."""

    def __init__(self, module: MethodModule, largest_component: bool = False) -> None:
        self.module = module
        self.largest_component = largest_component
        self.info = module.dataset_info
        data = module.run_config.data
        kind = intensity_kind(self.info.get("channel_names", {}), data.intensity)
        self.kw = prefix_options(data, self.info, kind)

    def check_compatible(self, dataset: Dataset) -> None:
        info = self.info
        if dataset.num_channels != info["in_channels"]:
            raise file_error(
                dataset.root,
                f"has {dataset.num_channels} channels, the model expects {info['in_channels']}",
                "evaluate on data of the task the run was trained for",
                CheckpointError,
            )
        names = sorted(dataset.labels, key=dataset.labels.get)
        named = dataset.labels and not dataset.extra.get("labels_derived")  # loose files: numbers
        if named and names != list(info["class_names"]):
            raise file_error(
                dataset.root,
                f"declares labels {names}, the model predicts {list(info['class_names'])}",
                "evaluate on data of the task the run was trained for",
                CheckpointError,
            )

    def check_image(self, path: Path) -> None:
        header = read_header(path)
        if header.spatial_dims != self.info["data_dims"]:
            raise file_error(
                path,
                f"is a {header.spatial_dims}D image, the model was trained on "
                f"{self.info['data_dims']}D data",
                "give images of the kind the run was trained on",
            )

    @torch.no_grad()
    def predict_record(self, record: dict[str, Any], with_label: bool) -> tuple[np.ndarray, dict]:
        """Predicted label map in the input's voxel grid (x, y[, z]) and the preprocessed dict."""
        pre = Compose(load_and_normalise(with_label, **self.kw))
        data = pre(dict(record))
        logits = self.module.predict_logits(data["image"].unsqueeze(0).to(self.module.device))[0]
        # Probabilities go back to the input grid with linear interpolation and are argmaxed
        # there: inverting a resampled label map by nearest neighbour would leave blocky,
        # displaced boundaries (thin structures such as ACDC's myocardium lose several Dice).
        probs = torch.softmax(logits.float(), dim=0).cpu()
        labels = labels_on_input_grid(probs, data, pre)
        if self.largest_component:
            labels = keep_largest_components(labels, self.info["num_classes"])
        return labels, data


def labels_on_input_grid(probs: torch.Tensor, data: dict[str, Any], pre: Compose) -> np.ndarray:
    """Label map in the input's own grid from class probabilities (C, ...) on the preprocessed
    grid of ``data["image"]``: resampled back by ``pre``'s inverse, linearly, then argmaxed."""
    image = data["image"]
    data["pred"] = MetaTensor(probs, meta=image.meta, applied_operations=image.applied_operations)
    inverted = Invertd("pred", transform=pre, orig_keys="image", nearest_interp=False)(data)
    return torch.as_tensor(inverted["pred"]).argmax(dim=0).numpy().astype(np.uint8)


def evaluate(
    run_dir: Path,
    module: MethodModule,
    dataset: Dataset,
    overlays: bool = True,
    units: str = "auto",
    largest_component: bool = False,
) -> dict[str, Any]:
    """Metrics of a run over every labelled case of ``dataset`` (whatever split it was in).

    ``units``: ``auto`` gives distances in mm when the dataset's spacing is known, else voxels;
    ``voxel`` forces voxels (the LA / UA-MT protocol reports 95HD and ASD in voxels).
    ``largest_component``: keep only each class's largest connected component before scoring.
    """
    if units not in ("auto", "voxel"):
        raise ConfigError(f"--units {units!r}: choose auto (mm when known) or voxel")
    predictor = SegmentationPredictor(module, largest_component=largest_component)
    predictor.check_compatible(dataset)
    cases = [c for c in dataset.labeled if c.label is not None]
    if not cases:
        raise file_error(
            dataset.root, "has no labelled case to evaluate", "add label files", DataError
        )
    names = module.dataset_info["class_names"]
    num_classes = module.dataset_info["num_classes"]
    per_case: dict[str, dict[str, float]] = {}
    per_case_class: dict[str, dict[str, dict[str, float]]] = {}
    unit = "voxel"
    overlay_dir = run_dir / "overlays"
    for index, case in enumerate(cases):
        predictor.check_image(case.images[0])
        pred, _ = predictor.predict_record(case_record(case, with_label=True), with_label=True)
        label_img = read_image(case.label)
        target = np.rint(np.asarray(label_img.array)).astype(np.int64)
        spacing = label_img.spacing if dataset.spacing_known and units == "auto" else None
        unit = distance_unit(spacing)
        scores = segmentation_metrics(
            pred.reshape(target.shape), target, num_classes, spacing=spacing, class_names=names
        )
        per_case_class[case.id] = scores
        per_case[case.id] = mean_over_classes(scores)
        if overlays and index < MAX_OVERLAYS:
            write_overlay(
                overlay_dir / f"{_safe(case.id)}.npz",
                case,
                pred.reshape(target.shape),
                target,
                names,
            )
    class_names = list(next(iter(per_case_class.values())))
    per_class = {
        c: {
            m: float(np.mean([per_case_class[k][c][m] for k in per_case_class]))
            for m in ("dice", "jaccard", "hd95", "asd")
        }
        for c in class_names
    }
    result = {
        "task": "segmentation",
        "run": str(run_dir),
        "data": str(dataset.root),
        "method": module.name,
        "cases": len(per_case),
        "mean": mean_over_classes(per_class),
        "per_class": per_class,
        "per_case": per_case,
        "units": {"hd95": unit, "asd": unit},
        "policy": EMPTY_POLICY,
        "postprocess": postprocess_name(largest_component),
    }
    return result


def postprocess_name(largest_component: bool) -> str:
    """How results record the post-processing: ``largest_component`` or ``none``."""
    return "largest_component" if largest_component else "none"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def write_overlay(
    path: Path, case: Case, pred: np.ndarray, target: np.ndarray, names: list[str]
) -> None:
    """The slice with most ground-truth foreground, as the report's overlay input."""
    image = read_image(case.images[0]).array.astype(np.float32)
    if image.ndim == target.ndim + 1:  # RGB: show luminance
        image = image.mean(axis=-1)
    axis = target.ndim - 1
    index = 0
    if target.ndim == 3:
        index = int(np.argmax((target > 0).sum(axis=(0, 1))))
        image, target, pred = (np.take(a, index, axis=axis) for a in (image, target, pred))
    arrays = {
        "image": image.T,
        "label": target.T.astype(np.int16),
        "pred": pred.T.astype(np.int16),
        "slice_index": index,
        "axis": axis,
        "class_names": np.array(names),
    }
    write_atomic(path, lambda tmp: np.savez_compressed(tmp, **arrays), verify_zip)


def predict(
    module: MethodModule, inputs: list[Path], out_dir: Path, largest_component: bool = False
) -> list[Path]:
    """Write one NIfTI label map per input volume, with the input's geometry (all or nothing:
    :func:`medssl.engine.inference.write_outputs`)."""
    predictor = SegmentationPredictor(module, largest_component=largest_component)

    def write_mask(path: Path, target: Path) -> None:
        source = read_image(path)
        pred, _ = predictor.predict_record({"image": str(path), "id": path.name}, False)
        write_image(target, source.with_array(pred.reshape(source.spatial_shape)))

    return write_outputs(inputs, out_dir, ".nii.gz", predictor.check_image, write_mask)
