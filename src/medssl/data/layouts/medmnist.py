"""MedMNIST ``.npz`` files: the only layout whose cases live in memory rather than on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from medssl.data.dataset import Case, Dataset
from medssl.data.io import read_npz
from medssl.errors import file_error


def npz_path(root: Path) -> Path:
    """The MedMNIST file of ``root``: the path itself or the folder's only ``.npz``."""
    if root.is_file():
        return root
    found = sorted(root.glob("*.npz"))
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise file_error(root, f"holds several .npz files ({names})", "pass the one to use")
    return found[0]


def _class_of(labels: np.ndarray | None, index: int) -> int | np.ndarray | None:
    """MedMNIST labels are (N, 1) for one class per image, (N, K) for multi-label sets."""
    if labels is None:
        return None
    row = np.asarray(labels[index]).reshape(-1)
    return int(row[0]) if row.size == 1 else row


def _medmnist_labels(splits: dict[str, Any]) -> dict[str, int]:
    """The README's class names are not in the npz: name classes by their values (or columns)."""
    labels = [np.asarray(y) for _, y in splits.values() if y is not None]
    if not labels:
        return {}
    if labels[0].ndim == 2 and labels[0].shape[1] > 1:
        return {str(k): k for k in range(labels[0].shape[1])}
    values = np.unique(np.concatenate([y.reshape(-1) for y in labels]))
    return {str(int(v)): int(v) for v in values}


def read(root: Path) -> Dataset:
    """MedMNIST ``.npz``: in-memory cases ``<split>_<index>``; arrays kept once in ``extra``.

    ``Case.array`` is a view into the split's array (no copy), so 4000 cases cost nothing.
    """
    npz = npz_path(root)
    splits = read_npz(npz)
    cases = []
    spatial_dims = 2
    for split, (images, labels) in splits.items():
        spatial_dims = 3 if images.ndim == 4 and images.shape[-1] > 4 else 2
        cases += [
            Case(
                id=f"{split}_{i:05d}",
                array=images[i],
                target=_class_of(labels, i),
                meta={"split": split, "index": i},
            )
            for i in range(len(images))
        ]
    return Dataset(
        root=root,
        layout="medmnist",
        cases=cases,
        labels=_medmnist_labels(splits),
        spatial_dims=spatial_dims,
        file_ending=".npz",
        task="classification",
        extra={"arrays": splits, "npz": npz},
    )
