"""Loose files: any folder of images or DICOM series, the layout of last resort.

Also what detection uses to decide that a folder holds images at all.

``X_label.*`` labels ``X_image.*``. Without a ``dataset.json`` naming the labels, a network
would be built with no outputs, so the names are derived from the values the label files hold:
``0..K-1`` become ``background``, ``class_1`` ... ``class_{K-1}``. Any other set of values (a
PNG mask of 0/255, a gap) cannot be trained on as it is and is refused in one line. This is the
one place a reader opens voxels besides MedMNIST: only the label files of a loose folder, once,
in a thread pool.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from medssl.data.dataset import Case, Dataset
from medssl.data.io import read_image
from medssl.data.layouts._common import (
    dataset_from_json,
    dataset_json,
    is_image_file,
    label_map,
    split_ending,
)
from medssl.errors import DataError, file_error

DERIVED_LABEL = "class_{}"


def _is_dicom(path: Path) -> bool:
    """``.dcm``, or an extension-less file with the DICOM preamble (common for series)."""
    if path.suffix.lower() == ".dcm":
        return True
    if path.suffix:
        return False
    with path.open("rb") as f:
        return f.read(132)[128:] == b"DICM"


def image_sources(root: Path) -> Iterator[Path]:
    """Image files and DICOM series folders under ``root``, recursively, hidden ones skipped."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(folder)
        paths = [here / f for f in sorted(files) if not f.startswith(".")]
        if any(_is_dicom(p) for p in paths):
            yield here
        yield from (p for p in paths if is_image_file(p) and p.suffix.lower() != ".dcm")


# ------------------------------------------------------------------------------------------
# label names from label values
# ------------------------------------------------------------------------------------------


def label_values(array: np.ndarray) -> np.ndarray:
    """Distinct values; ``bincount`` is several times faster than ``unique`` for uint8 maps."""
    if array.dtype.kind in "ub" and array.dtype.itemsize <= 2 and array.size:
        return np.flatnonzero(np.bincount(array.reshape(-1).astype(np.intp, copy=False)))
    return np.unique(array)


def _values_of(path: Path) -> np.ndarray | None:
    """A label file's values; ``None`` when it cannot be read (``data check`` names it)."""
    try:
        return label_values(read_image(path).array)
    except DataError:
        return None


def derive_labels(root: Path, labels: list[Path]) -> dict[str, int]:
    """``{"background": 0, "class_1": 1, ...}`` from the values 0..K-1 the label files hold.

    Raises a one-line :class:`DataError` naming the folder and the fix when the values are not
    0..K-1 with K >= 2 (nothing but background, 0/255 masks, gaps, fractions).
    """
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        per_file = list(pool.map(_values_of, labels))
    found = [(p, v) for p, v in zip(labels, per_file, strict=True) if v is not None]
    if not found:
        return {}
    values = np.unique(np.concatenate([v for _, v in found]))
    if not np.array_equal(values, np.arange(values.size)):
        shown = ", ".join(f"{v:g}" for v in values[:10]) + (" ..." if values.size > 10 else "")
        odd = next(p for p, v in found if not np.isin(v, np.arange(values.size)).all())
        raise file_error(
            root,
            f"label values {shown} (e.g. in {odd.relative_to(root)}) are not 0..K-1, so no "
            "label names can be derived (loose files, no dataset.json)",
            "renumber the label maps to 0..K-1 (0 = background); to name them, add a "
            'dataset.json there with "labels": {"background": 0, "<name>": 1, ...}',
        )
    if values.size < 2:
        raise file_error(
            root,
            "every label file is all background (0), so there is no class to learn",
            "fix the label files or remove them (the images then form an unlabelled pool)",
        )
    return {"background": 0} | {DERIVED_LABEL.format(k): k for k in range(1, values.size)}


# ------------------------------------------------------------------------------------------
# the reader
# ------------------------------------------------------------------------------------------


def _cases(root: Path) -> list[Case]:
    """One case per image file or DICOM series; a lone ``X_label`` is no case (not an image)."""
    sources = {
        p.parent / split_ending(p.name)[0] if p.is_file() else p: p for p in image_sources(root)
    }
    cases = []
    for key, path in sources.items():
        if key.name.endswith("_label") and path.is_file():
            continue
        base = key.with_name(key.name[:-6]) if key.name.endswith("_image") else key
        rel = base.relative_to(root).as_posix() if base != root else root.name
        cases.append(Case(id=rel, images=[path], label=sources.get(Path(f"{base}_label"))))
    return cases


def read(root: Path, strict: bool = True) -> Dataset:
    """Any folder of images: one case per file or DICOM series; ``X_label`` labels ``X_image``.

    Ids are paths relative to ``root`` without ending (``clara_spleen8/spleen_8``), so files
    of the same name in different folders stay distinct cases. Label names come from a
    ``dataset.json`` when there is one, else from the label values (module docstring);
    ``strict=False`` (``data check``) keeps a folder whose names cannot be derived readable and
    leaves the error in ``extra["labels_error"]``.
    """
    cases = _cases(root)
    meta = dataset_json(root)
    labels = label_map(meta)
    extra: dict[str, object] = {}
    if not labels and any(c.label is not None for c in cases):
        try:
            labels = derive_labels(root, [c.label for c in cases if c.label is not None])
            extra["labels_derived"] = True
        except DataError as err:
            if strict:
                raise
            extra["labels_error"] = err
    return dataset_from_json(root, "files", cases, meta, labels=labels, extra=extra)
