"""The MedMNIST check: the cases live in one npz, so it is checked whole, not per file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medssl.data.check.report import (
    UNLABELLED_WHY,
    Problem,
    error_message,
    summary_line,
    unlabelled_remark,
)
from medssl.data.io import read_npz
from medssl.errors import DataError


def check_medmnist(npz: Path) -> tuple[list[Problem], str, list[str]]:
    """Arrays must load with images and labels paired up (``read_npz`` checks), and be finite.

    Returns the problems, the summary line and the remarks (the cases live in the npz, read
    here once): an npz of images only is unlabelled, which is no problem.
    """
    try:
        splits = read_npz(npz)
    except DataError as err:
        line = summary_line(0, 0, 0, "medmnist")
        return [Problem(npz, error_message(err, npz), "medmnist")], line, []
    problems = []
    for split, (images, labels) in splits.items():
        for name, array in (("images", images), ("labels", labels)):
            if array is not None and array.dtype.kind == "f" and not np.isfinite(array).all():
                bad = int(array.size - np.count_nonzero(np.isfinite(array)))
                problems.append(Problem(npz, f"{split}_{name} has {bad} NaN/inf values", "nan"))
    cases = sum(len(images) for images, _ in splits.values())
    labelled = sum(len(images) for images, labels in splits.values() if labels is not None)
    test = sum(len(x) for split, (x, y) in splits.items() if split == "test" and y is None)
    remarks = [unlabelled_remark(npz, UNLABELLED_WHY["medmnist"])] if cases and not labelled else []
    return problems, summary_line(cases, labelled, test, "medmnist"), remarks
