"""``evaluate`` and ``predict`` for trained segmentation runs.

Images go through the run's deterministic preprocessing, the method's sliding-window inference,
then MONAI's ``Invertd`` back to the input's own grid, so metrics are computed and masks written
in the space of the files the user gave (geometry kept: spacing, origin, direction). The optional
largest-component step is the post-processing of the UA-MT / MC-Net+ / BCP test scripts; it is
off unless asked for, and every result says whether it was on.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd, KeepLargestConnectedComponent

from medssl.atomic import output_error, verify_zip, write_atomic, write_json_atomic
from medssl.data.dataset import Case, Dataset
from medssl.data.io import read_header, read_image, write_image
from medssl.data.transforms import intensity_kind, load_and_normalise
from medssl.engine.allocator import keep_freed_memory
from medssl.engine.checkpoint import load_checkpoint
from medssl.engine.module import MethodModule, get_method
from medssl.engine.run import best_checkpoint, read_run
from medssl.engine.segmentation_data import case_record, prefix_options
from medssl.errors import CheckpointError, ConfigError, DataError, OutputError, file_error
from medssl.metrics.segmentation import (
    EMPTY_POLICY,
    distance_unit,
    mean_over_classes,
    segmentation_metrics,
)

MAX_OVERLAYS = 8


def load_model(run_dir: str | Path, task: str | None = None) -> MethodModule:
    """Rebuild the method of a run from its best checkpoint (``weights_only=True``)."""
    keep_freed_memory()  # sliding-window inference allocates as training does
    run_dir = Path(run_dir)
    read_run(run_dir)
    ckpt = best_checkpoint(run_dir)
    state = load_checkpoint(ckpt)
    hp = state.get("hyper_parameters") or {}
    if "run_config" not in hp or "dataset_info" not in hp:
        raise file_error(
            ckpt,
            "not a medssl checkpoint (no run config inside)",
            "pass a run made by medssl train",
            CheckpointError,
        )
    run_task = hp["run_config"]["task"]
    if task is not None and run_task != task:
        raise file_error(
            ckpt,
            f"checkpoint is for task {run_task!r}, not {task!r}",
            "pass a run of the right task",
            CheckpointError,
        )
    cls = get_method(run_task, hp["run_config"]["method"])
    module = cls(hp["run_config"], hp["dataset_info"])
    module.load_state_dict(state["state_dict"])
    module.eval()
    return module


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


def keep_largest_components(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Each foreground class cut down to its largest connected component (full connectivity);
    the rest of that class becomes background. Removes stray blobs far from the organ, which
    cost 95HD and ASD much more than Dice."""
    keep = KeepLargestConnectedComponent(
        applied_labels=list(range(1, num_classes)), is_onehot=False, independent=True
    )
    kept = keep(torch.as_tensor(labels[None].astype(np.int64)))
    return np.asarray(kept[0]).astype(np.uint8)


def evaluate(
    run_dir: str | Path,
    dataset: Dataset,
    out: str | Path | None = None,
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
    run_dir = Path(run_dir)
    check_evaluation_target(out)
    module = load_model(run_dir, task="segmentation")
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
    write_json_atomic(run_dir / "evaluation.json", result)
    if out is not None:
        write_json_atomic(out, result)
    return result


def check_evaluation_target(out: str | Path | None) -> None:
    """``evaluate --out FILE`` may replace an earlier evaluation, never another file."""
    if out is None or not Path(out).exists():
        return
    path = Path(out)
    try:
        earlier = json.loads(path.read_text()) if path.is_file() else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        earlier = None
    if not (isinstance(earlier, dict) and {"task", "mean", "per_case"} <= set(earlier)):
        raise file_error(
            path,
            "exists and is not a medssl evaluation",
            "choose another --out file; medssl replaces only its own results",
            ConfigError,
        )


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
    run_dir: str | Path,
    inputs: list[str | Path],
    out_dir: str | Path,
    largest_component: bool = False,
) -> list[Path]:
    """Write one NIfTI label map per input volume, with the input's geometry.

    All or nothing: every input is checked and every output name decided before the first
    prediction; the masks are written into a hidden folder inside ``out_dir`` and moved into
    place only when all of them were written and read back, so a failure (a corrupt input, a
    full disk) leaves no mask at all. Existing files are never replaced.
    """
    module = load_model(run_dir, task="segmentation")
    predictor = SegmentationPredictor(module, largest_component=largest_component)
    out_dir = Path(out_dir)
    targets = output_names([Path(p) for p in inputs], out_dir)
    for path in targets:  # validate every input before writing anything
        predictor.check_image(path)
    created = not out_dir.exists()
    staging = make_staging_dir(out_dir)
    try:
        for path, target in targets.items():
            source = read_image(path)
            record = {"image": str(path), "id": path.name}
            pred, _ = predictor.predict_record(record, with_label=False)
            mask = source.with_array(pred.reshape(source.spatial_shape))
            try:
                write_image(staging / target.name, mask)
            except OutputError as err:  # name the file the user asked for, not the staged one
                raise OutputError(
                    str(err).replace(str(staging / target.name), str(target))
                ) from None
        return publish(staging, list(targets.values()))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()  # a failed predict leaves not even the folder it made


def output_names(inputs: list[Path], out_dir: Path) -> dict[Path, Path]:
    """``{input: OUT/<stem>.nii.gz}``, refusing missing inputs, two inputs with one output name,
    an output that exists already, and an ``--out`` inside a DICOM series folder."""
    targets: dict[Path, Path] = {}
    by_target: dict[Path, Path] = {}
    for path in inputs:
        if not path.exists():
            raise file_error(path, "no such file or folder", "check the input path")
        if path.is_dir() and path.resolve() in (out_dir.resolve(), *out_dir.resolve().parents):
            raise file_error(
                out_dir, f"lies inside the input series {path}", "choose an --out outside it"
            )
        target = out_dir / f"{_stem(path)}.nii.gz"
        if target in by_target:
            raise file_error(
                path,
                f"would be written to {target}, as {by_target[target]} would",
                "rename one of them or predict them into separate --out folders",
                ConfigError,
            )
        if target.exists():
            raise file_error(
                target,
                "exists",
                "choose another --out folder; predict never replaces existing files",
                ConfigError,
            )
        targets[path], by_target[target] = target, path
    return targets


def make_staging_dir(out_dir: Path) -> Path:
    """A hidden folder inside ``out_dir`` (same file system, so the final moves are renames)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = out_dir / f".predict-{secrets.token_hex(4)}.tmp"
        staging.mkdir()
    except OSError as err:
        raise output_error(out_dir, err) from None
    return staging


def publish(staging: Path, targets: list[Path]) -> list[Path]:
    """Move the staged masks into place; if any move fails, the ones already moved go back."""
    moved: list[Path] = []
    try:
        for target in targets:
            if target.exists():  # appeared while predicting
                raise file_error(target, "appeared while predicting", "choose another --out")
            os.replace(staging / target.name, target)
            moved.append(target)
    except BaseException as err:
        for target in moved:
            target.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise output_error(targets[len(moved)], err) from None
        raise
    return moved


def _stem(path: Path) -> str:
    name = path.name
    for ending in (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".png", ".jpg", ".jpeg", ".dcm"):
        if name.lower().endswith(ending):
            return name[: -len(ending)]
    return name
