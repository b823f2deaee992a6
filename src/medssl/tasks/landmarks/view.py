"""The landmarks task's view of a dataset: reference points per case, and what else it declares.

Two layouts carry landmarks: the landmark-set layout (``images/`` + ``landmarks.json``:
cephalometric, the ``landmark2d`` phantom) and an MSD index with a ``landmarks.json`` beside it
(jsrt, whose masks make it a segmentation set first). :func:`landmark_view` turns either into
cases whose ``target`` is the ``(L, 2)`` reference (the annotators' ``mean`` where there is one,
NaN rows for missing points) and whose ``meta`` keeps every annotator's points
(``annotations``), the image class (``class``) and the per-landmark classes
(``landmark_class``, -1 where none is given).

Optional keys of ``landmarks.json`` the task reads (``LandmarkSet.extra``):

* ``classes`` / ``class_names``: one class per image (the layout reads them);
* ``landmark_classes`` ``{case: [int or null, ...]}`` and ``landmark_class_names``: one class per
  landmark (a disc's degeneration grade in CCF-Net's spine setting);
* ``flip_pairs`` ``[[name, name], ...]``: left / right landmarks that swap under a horizontal
  flip (none of the shared sets has any: a lateral cephalogram's landmarks lie on the midline or
  are projected, the chest contours are not point-to-point mirror images).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from medssl.data.dataset import Case, Dataset
from medssl.data.io import LandmarkSet
from medssl.errors import file_error

#: annotation names that are not an annotator (what the reference is made of)
NOT_ANNOTATORS = ("mean", "default")
NO_LANDMARKS_FIX = (
    "give a folder with images/ and landmarks.json, or an MSD dataset.json with a "
    "landmarks.json beside it (see the README, section 'Datasets on disk')"
)


def landmark_set(dataset: Dataset) -> LandmarkSet:
    """The dataset's ``landmarks.json``; a one-line DataError when it has none."""
    marks = dataset.extra.get("landmarks")
    if not isinstance(marks, LandmarkSet):
        raise file_error(
            dataset.root, f"holds no landmarks ({dataset.layout} layout)", NO_LANDMARKS_FIX
        )
    return marks


def landmark_view(dataset: Dataset) -> Dataset:
    """``dataset`` as the landmarks task reads it (see the module docstring); idempotent."""
    if dataset.extra.get("landmark_view"):
        return dataset
    marks = landmark_set(dataset)
    if marks.cases and any(np.shape(p)[1] != 2 for p in _all_points(marks)):
        raise file_error(
            dataset.root / "landmarks.json",
            "holds 3D points; the landmarks task localises points in 2D images",
            "give [x, y] points",
        )
    per_landmark = _landmark_classes(dataset, marks)
    cases = [_case(c, marks, per_landmark) for c in dataset.cases]
    own = dataset.layout == "landmarks"  # its labels are the image classes; MSD's are masks
    return replace(
        dataset,
        cases=cases,
        labels=dataset.labels if own else {},
        task="landmarks",
        spacing_known=marks.spacing_mm is not None,
        extra={**dataset.extra, "landmark_view": True},
    )


def _all_points(marks: LandmarkSet):
    for by_annotator in marks.cases.values():
        yield from by_annotator.values()


def _case(case: Case, marks: LandmarkSet, per_landmark: dict[str, np.ndarray]) -> Case:
    meta = {k: v for k, v in case.meta.items() if k != "landmarks"}
    if case.id not in marks.cases:
        return replace(case, label=None, target=None, meta=meta)
    meta["annotations"] = marks.cases[case.id]
    if case.id in per_landmark:
        meta["landmark_class"] = per_landmark[case.id]
    return replace(case, label=None, target=marks.reference(case.id), meta=meta)


def _landmark_classes(dataset: Dataset, marks: LandmarkSet) -> dict[str, np.ndarray]:
    """``{case: (L,) int}`` from ``landmark_classes`` (-1 for null), checked against the names."""
    given = marks.extra.get("landmark_classes")
    if not given:
        return {}
    path = dataset.root / "landmarks.json"
    names = landmark_class_names(marks)
    if not isinstance(given, dict) or not names:
        raise file_error(
            path,
            "landmark_classes needs landmark_class_names and one list per case",
            'write "landmark_classes": {case: [class index or null, ...]}',
        )
    out = {}
    for case, values in given.items():
        if not isinstance(values, list) or len(values) != len(marks.names):
            raise file_error(
                path,
                f"landmark_classes of {case}: give one entry per landmark ({len(marks.names)})",
                "fix the list",
            )
        row = np.array([-1 if v is None else int(v) for v in values], dtype=np.int64)
        if row.max(initial=-1) >= len(names):
            raise file_error(
                path,
                f"landmark_classes of {case}: index {row.max()} but {len(names)} class names",
                "use indices 0..K-1 of landmark_class_names",
            )
        out[str(case)] = row
    return out


def landmark_class_names(marks: LandmarkSet) -> list[str]:
    return [str(n) for n in marks.extra.get("landmark_class_names") or []]


def flip_pairs(dataset: Dataset) -> list[tuple[int, int]]:
    """Index pairs of ``landmarks.json``'s ``flip_pairs`` (names), checked."""
    marks = landmark_set(dataset)
    index = {name: i for i, name in enumerate(marks.names)}
    pairs = []
    for pair in marks.extra.get("flip_pairs") or []:
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and set(pair) <= set(index)):
            raise file_error(
                dataset.root / "landmarks.json",
                f"flip_pairs entry {pair!r} is not two landmark names",
                "list pairs as [[left_name, right_name], ...] from landmark_names",
            )
        pairs.append((index[pair[0]], index[pair[1]]))
    return pairs


def annotators(case: Case) -> dict[str, np.ndarray]:
    """The case's points per annotator (``mean`` and ``default`` are not annotators)."""
    annotations: dict[str, Any] = case.meta.get("annotations") or {}
    return {k: np.asarray(v) for k, v in annotations.items() if k not in NOT_ANNOTATORS}


def image_classes(dataset: Dataset) -> list[str]:
    """Names of the image classes, index order (empty when the dataset has none)."""
    return [name for name, _ in sorted(dataset.labels.items(), key=lambda kv: kv[1])]
