"""The landmarks task's ``evaluate`` and ``predict``: points in the original image's pixels.

``evaluate`` scores every case with landmarks: MRE, its SD and the SDR at 2, 2.5, 3 and 4 mm
(:mod:`medssl.metrics.landmarks`: mm where ``landmarks.json`` gives ``pixel_spacing_mm`` and
``--units auto``, else pixels, the SDR thresholds then in pixels too; ``units`` says which),
against the reference points the run trained on (the annotators' mean where there is one),
per landmark (``per_class``: one row per landmark) and per case. Where cases carry several
annotators it also scores against each (``per_annotator``) and gives the annotators' own
disagreement (``inter_annotator``: the human reference). A run with ``data.class_rule`` adds
the class the rule gives from the predicted points (``skeletal_class``; ANB error, accuracy and
balanced accuracy in ``mean``). A run that predicts classes adds the
image classification metrics (to ``mean``, with ``class_names``, ``confusion_matrix`` and the
probabilities per case) and the per-landmark ones (``landmark_classification``). For the report,
``overlays`` lists the worst cases' image, reference and predicted points.

``predict`` writes, per input image, ``OUT/<stem>.json`` (coordinates in the input's own
pixels, continuous: pixel ``(i, j)`` covers ``[i, i + 1) x [j, j + 1)``; class probabilities)
and ``OUT/<stem>.png`` (the points drawn on the image), all or nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import DataLoader
from monai.data import Dataset as MonaiDataset
from sklearn.metrics import confusion_matrix

from medssl.atomic import write_json_atomic
from medssl.data.dataset import Case, Dataset, image_channels
from medssl.data.io import read_header
from medssl.engine.inference import output_names, write_outputs
from medssl.engine.module import MethodModule
from medssl.errors import CheckpointError, ConfigError, DataError, file_error
from medssl.metrics.classification import classification_metrics, per_class_metrics
from medssl.metrics.landmarks import (
    SDR_THRESHOLDS_MM,
    landmark_metrics,
    landmark_unit,
    per_landmark_metrics,
    sdr_key,
)
from medssl.tasks.landmarks.data import case_record, pipeline
from medssl.tasks.landmarks.overlay import write_point_overlay
from medssl.tasks.landmarks.skeletal import (
    CLASS_NAMES,
    MEAN_KEYS,
    RULE_TEXT,
    anb_angle,
    judged_from_points,
    rule_scores,
    skeletal_class,
)
from medssl.tasks.landmarks.view import annotators, landmark_set

EVAL_BATCH = 8
#: cases whose points the report draws, the worst first
MAX_OVERLAYS = 4
#: the per-case and summary keys (``n`` and ``missed`` stay in ``mean`` only)
CASE_KEYS = ("mre", *(sdr_key(t) for t in SDR_THRESHOLDS_MM))
COORDINATES = (
    "[x, y] in the input image's pixels, continuous: pixel (i, j) covers [i, i + 1) x "
    "[j, j + 1), its centre is (i + 0.5, j + 0.5)"
)


def check_compatible(module: MethodModule, dataset: Dataset) -> None:
    """The dataset's landmarks and channels must be the run's."""
    info = module.dataset_info
    marks = landmark_set(dataset)
    problems = []
    if list(marks.names) != list(info["landmark_names"]):
        problems.append(
            f"names {len(marks.names)} landmarks ({', '.join(marks.names[:3])} ...), the model "
            f"{info['num_landmarks']} ({', '.join(info['landmark_names'][:3])} ...)"
        )
    if image_channels(dataset) != info["in_channels"]:
        problems.append(
            f"has {image_channels(dataset)} channel(s), the model expects {info['in_channels']}"
        )
    if problems:
        raise file_error(
            dataset.root,
            "; ".join(problems),
            "evaluate on data of the landmarks the run was trained for",
            CheckpointError,
        )


@torch.no_grad()
def scan(module: MethodModule, records: list[dict[str, Any]]) -> dict[str, np.ndarray | None]:
    """``points`` ``(N, L, 2)`` in each image's original pixels, and the ``class_probs``
    ``(N, K)`` and ``landmark_class_probs`` ``(N, L, K_l)`` the method predicts (else None),
    through the run's preprocessing."""
    transform = pipeline(module.dataset_info, module.run_config.data)
    loader = DataLoader(MonaiDataset(records, transform), batch_size=EVAL_BATCH, shuffle=False)
    parts: dict[str, list[np.ndarray]] = {}
    for batch in loader:
        image = batch["image"].to(module.device)
        out = module.predict_landmarks({**batch, "image": image})
        scale = np.asarray(batch["landmarks_scale"], dtype=np.float64)[:, None, :]
        rows = {"points": out["points"].double().cpu().numpy() / scale}
        for key in ("class_probs", "landmark_class_probs"):
            if out.get(key) is not None:
                rows[key] = out[key].double().cpu().numpy()
        for key, value in rows.items():
            parts.setdefault(key, []).append(value)
    joined = {k: np.concatenate(v) for k, v in parts.items()}
    return {k: joined.get(k) for k in ("points", "class_probs", "landmark_class_probs")}


def _summary(metrics: dict[str, float]) -> dict[str, float]:
    return {k: metrics[k] for k in CASE_KEYS}


def annotator_scores(
    cases: list[Case],
    pred: np.ndarray,
    spacing: float | None,
    names: list[str],
    class_rule: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Scores against each annotator (over the cases that have them) and, with two or more,
    the second annotator scored against the first: the human reference (with a class rule,
    also the class each annotator's points give, the second judged against the first)."""
    by_case = [annotators(c) for c in cases]
    found = list(dict.fromkeys(name for a in by_case for name in a))
    per_annotator = {}
    for name in found:
        rows = [i for i, a in enumerate(by_case) if name in a]
        truth = np.stack([by_case[i][name] for i in rows])
        per_annotator[name] = {**landmark_metrics(pred[rows], truth, spacing), "cases": len(rows)}
    if len(found) < 2:
        return per_annotator, None
    first, second = found[:2]
    rows = [i for i, a in enumerate(by_case) if first in a and second in a]
    a = np.stack([by_case[i][first] for i in rows])
    b = np.stack([by_case[i][second] for i in rows])
    agreement = rule_scores(a, b) if class_rule else {}
    inter = {
        "between": [first, second],
        "cases": len(rows),
        "mean": {
            **landmark_metrics(b, a, spacing),
            **{k: agreement[k] for k in MEAN_KEYS if k in agreement},
        },
        "per_landmark": {
            n: m["mre"] for n, m in per_landmark_metrics(b, a, names, spacing).items()
        },
    }
    return per_annotator, inter


def image_classification(
    cases: list[Case], probs: np.ndarray, names: list[str]
) -> tuple[dict[str, float], dict[str, Any], dict[str, dict[str, Any]]]:
    """(mean metrics, extra keys, per-case columns) of the image classes of the cases that
    give one."""
    labels = np.array([int(c.meta.get("class", -1)) for c in cases])
    probs = probs / probs.sum(axis=1, keepdims=True)
    per_case = {
        c.id: {
            **({"label": names[labels[i]]} if labels[i] >= 0 else {}),
            "pred": names[int(probs[i].argmax())],
            **{f"prob_{n}": float(probs[i, k]) for k, n in enumerate(names)},
        }
        for i, c in enumerate(cases)
    }
    keep = labels >= 0
    if not keep.any():
        return {}, {"class_names": names}, per_case
    y, p = labels[keep], probs[keep]
    matrix = confusion_matrix(y, p.argmax(axis=1), labels=list(range(len(names))))
    extra = {
        "class_names": names,
        "confusion_matrix": matrix.tolist(),  # rows: true class, columns: predicted
        "classification": {"cases": int(keep.sum()), "per_class": per_class_metrics(y, p, names)},
    }
    return classification_metrics(y, p, names), extra, per_case


def landmark_classification(
    cases: list[Case], probs: np.ndarray, names: list[str]
) -> dict[str, Any]:
    """Classification metrics over every (case, landmark) that gives a class."""
    missing = np.full(probs.shape[1], -1)
    labels = np.stack([np.asarray(c.meta.get("landmark_class", missing)) for c in cases])
    keep = labels >= 0
    out: dict[str, Any] = {"class_names": names, "landmarks": int(keep.sum())}
    if keep.any():
        out["mean"] = classification_metrics(labels[keep], probs[keep], names)
    return out


def evaluate(
    run_dir: Path, module: MethodModule, dataset: Dataset, **options: Any
) -> dict[str, Any]:
    """The evaluate JSON of a landmarks run (see the module docstring)."""
    if options.get("largest_component"):
        raise ConfigError("--largest-component is a segmentation option; drop it")
    units = options.get("units", "auto")
    if units not in ("auto", "voxel", "pixel"):
        raise ConfigError(f"--units {units!r}: give auto (mm where known) or pixel")
    check_compatible(module, dataset)
    cases = [c for c in dataset.labeled if c.target is not None]
    if not cases:
        raise file_error(
            dataset.root, "has no case with landmarks to evaluate", "add points", DataError
        )
    info = module.dataset_info
    names = [str(n) for n in info["landmark_names"]]
    marks = landmark_set(dataset)
    spacing = marks.spacing_mm if units == "auto" else None
    unit = landmark_unit(spacing)
    scanned = scan(module, [case_record(c, info) for c in cases])
    pred = scanned["points"]
    target = np.stack([np.asarray(c.target, dtype=np.float64) for c in cases])
    mean = landmark_metrics(pred, target, spacing)
    per_case = {
        c.id: _summary(landmark_metrics(pred[i], target[i], spacing)) for i, c in enumerate(cases)
    }
    extra: dict[str, Any] = {}
    per_annotator, inter = annotator_scores(cases, pred, spacing, names, info.get("class_rule"))
    if per_annotator:
        extra["per_annotator"] = per_annotator
    if inter is not None:
        extra["inter_annotator"] = inter
    if scanned["class_probs"] is not None:
        scores, more, columns = image_classification(
            cases, scanned["class_probs"], [str(n) for n in info["class_names"]]
        )
        mean.update(scores)
        extra.update(more)
        for case_id, row in columns.items():
            per_case[case_id].update(row)
    if info.get("class_rule"):
        scores, more, columns = judged_from_points(cases, target, pred)
        mean.update(scores)
        extra.update(more)
        for case_id, row in columns.items():
            per_case[case_id].update(row)
    if scanned["landmark_class_probs"] is not None:
        extra["landmark_classification"] = landmark_classification(
            cases, scanned["landmark_class_probs"], list(info["landmark_class_names"])
        )
    worst = sorted(range(len(cases)), key=lambda i: -np.nan_to_num(per_case[cases[i].id]["mre"]))
    extra["overlays"] = [
        {
            "case": cases[i].id,
            "image": str(cases[i].images[0]),
            "target": _json_points(target[i]),
            "pred": _json_points(pred[i]),
            "mre": per_case[cases[i].id]["mre"],
        }
        for i in worst[:MAX_OVERLAYS]
    ]
    return {
        "task": "landmarks",
        "run": str(run_dir),
        "data": str(dataset.root),
        "method": module.name,
        "cases": len(cases),
        "mean": mean,
        "per_class": per_landmark_metrics(pred, target, names, spacing),
        "per_case": per_case,
        "landmark_names": names,
        "reference": "mean of the annotators" if per_annotator else "the given points",
        "unit": unit,
        "units": {"mre": unit, "sd": unit},
        "sdr_thresholds": [f"{t:g} {unit}" for t in SDR_THRESHOLDS_MM],
        "coordinates": COORDINATES,
        **extra,
    }


def _json_points(points: np.ndarray) -> list[list[float] | None]:
    return [None if not np.isfinite(p).all() else [round(float(v), 3) for v in p] for p in points]


def predict(module: MethodModule, inputs: list[Path], out_dir: Path, **options: Any) -> list[Path]:
    """``OUT/<stem>.json`` and ``OUT/<stem>.png`` per input image, all or nothing: every name
    is checked before the first file is made, and if the overlays fail the JSON files written
    before them are removed again."""
    if options.get("largest_component"):
        raise ConfigError("--largest-component is a segmentation option; drop it")
    info = module.dataset_info
    names = [str(n) for n in info["landmark_names"]]
    predicted: dict[Path, np.ndarray] = {}

    def check(path: Path) -> None:
        header = read_header(path)
        if header.spatial_dims != 2:
            raise file_error(
                path,
                f"is a {header.spatial_dims}D image; the model finds landmarks in 2D images",
                "give 2D images (PNG, JPEG, 2D NIfTI)",
            )
        if header.components != int(info["in_channels"]):
            raise file_error(
                path,
                f"has {header.components} channel(s), the model expects {info['in_channels']}",
                "give images of the kind the run was trained on",
            )

    def write_json(path: Path, target: Path) -> None:
        scanned = scan(module, [{"image": str(path), "id": path.name}])
        points = scanned["points"][0]
        predicted[path] = points
        width, height = read_header(path).spatial_shape[:2]
        payload: dict[str, Any] = {
            "task": "landmarks",
            "input": str(path),
            "image_size_wh": [int(width), int(height)],
            "coordinates": COORDINATES,
            "landmark_names": names,
            "landmarks": {n: p for n, p in zip(names, _json_points(points), strict=True)},
        }
        payload.update(_class_payload(info, scanned))
        if info.get("class_rule"):
            anb = float(anb_angle(points))
            judged = int(skeletal_class(anb))
            payload["anb_deg"] = anb
            payload["class_from_landmarks"] = CLASS_NAMES[judged] if judged >= 0 else None
            payload["class_rule"] = RULE_TEXT
        write_json_atomic(target, payload)

    def write_png(path: Path, target: Path) -> None:
        write_point_overlay(target, path, predicted[path], names, path.name)

    created = not out_dir.exists()
    output_names(inputs, out_dir, ".png")  # refuse a clash before the first JSON is made
    written = write_outputs(inputs, out_dir, ".json", check, write_json)
    try:
        written += write_outputs(inputs, out_dir, ".png", lambda _: None, write_png)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        if created and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    return written


def _class_payload(info: dict[str, Any], scanned: dict[str, Any]) -> dict[str, Any]:
    """The class probabilities of one image and of each of its landmarks, where predicted."""
    out: dict[str, Any] = {}
    if scanned["class_probs"] is not None:
        names = [str(n) for n in info["class_names"]]
        prob = scanned["class_probs"][0] / scanned["class_probs"][0].sum()
        out["class_probabilities"] = {n: float(p) for n, p in zip(names, prob, strict=True)}
        out["predicted_class"] = names[int(prob.argmax())]
    if scanned["landmark_class_probs"] is not None:
        names = [str(n) for n in info["landmark_class_names"]]
        out["landmark_classes"] = {
            landmark: {
                "probabilities": {n: float(p) for n, p in zip(names, row, strict=True)},
                "predicted_class": names[int(row.argmax())],
            }
            for landmark, row in zip(
                info["landmark_names"], scanned["landmark_class_probs"][0], strict=True
            )
        }
    return out
