"""MSD-style folders: a ``dataset.json`` whose ``training`` list names each image and label.

Used by the Medical Segmentation Decathlon and by jsrt, whose ``landmarks.json`` beside the
index adds reference points to each case. An image-only index reads too: entries without a
``label``, or only an ``unlabelled`` list (then every case is unlabelled).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medssl.data.dataset import Case, Dataset
from medssl.data.io import read_landmarks
from medssl.data.layouts._common import dataset_from_json, dataset_json, indexed_cases, unique_ids


def _attach_landmarks(root: Path, cases: list[Case]) -> dict[str, Any]:
    """A ``landmarks.json`` beside an MSD index (jsrt): reference points on each case."""
    path = root / "landmarks.json"
    if not path.is_file():
        return {}
    landmarks = read_landmarks(path)
    for case in cases:
        if case.id in landmarks.cases:
            case.meta["landmarks"] = landmarks.reference(case.id)
    return {"landmarks": landmarks}


def read(root: Path) -> Dataset:
    """MSD-style dataset.json ``training`` list of {image, label} (MSD, jsrt)."""
    meta = dataset_json(root)
    cases = unique_ids(indexed_cases(root, meta, nnunet=False), root / "dataset.json")
    extra = _attach_landmarks(root, cases)
    return dataset_from_json(root, "msd", cases, meta, extra=extra)
