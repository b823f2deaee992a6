"""``medssl data corrupt``: a copy of a dataset with known problems planted in it.

It is the test bed of ``data check`` (every planted problem must be reported, naming the file)
and of the error paths of training and evaluation. The cases and kinds are drawn from a seed,
so a corrupted copy can be re-created exactly; ``corruptions.json`` lists what was planted.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medssl.atomic import check_outside, write_text_atomic
from medssl.data.dataset import Case, Dataset
from medssl.data.io import MedImage, read_header, read_image, write_image
from medssl.data.layouts import load_dataset, split_ending
from medssl.errors import DataError, file_error

KINDS = ("truncated", "shape", "label_value", "nan", "geometry", "dim2d", "empty_label")
LAYOUTS = ("nnunet", "msd", "multidomain", "files")
# Formats that store spacing/origin and float voxels; PNG/JPEG can hold neither NaN nor geometry.
GEOMETRY_ENDINGS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


@dataclass(frozen=True)
class Planted:
    """One planted problem: the case, the file that now carries it, and its kind."""

    case: str
    file: Path
    kind: str


# ------------------------------------------------------------------------------------------
# which case can carry which kind
# ------------------------------------------------------------------------------------------


def _has_geometry(path: Path) -> bool:
    return split_ending(path.name)[1].lower() in GEOMETRY_ENDINGS


def _is_volume(path: Path) -> bool:
    try:
        header = read_header(path)
    except DataError:
        return False
    return header.spatial_dims == 3 and header.spatial_shape[2] > 1


def supports(ds: Dataset, case: Case, kind: str) -> bool:
    """Whether ``kind`` can be planted in ``case``'s files (its format and content allow it).

    A bad label value needs declared labels (dataset.json) to be bad against; NaN and geometry
    need a format that stores them; a 2D slice needs a volume to be cut from.
    """
    label = case.label if case.label is not None and case.label.is_file() else None
    image = case.images[0] if case.images and case.images[0].is_file() else None
    if kind in ("shape", "empty_label", "label_value", "geometry"):
        if label is None:
            return False
        return {"label_value": bool(ds.labels), "geometry": _has_geometry(label)}.get(kind, True)
    if image is None:
        return False
    return kind == "truncated" or (_has_geometry(image) and (kind == "nan" or _is_volume(image)))


def _plan(ds: Dataset, kinds: Sequence[str], fraction: float, seed: int) -> list[tuple[Case, str]]:
    """Seeded cases, kinds assigned round-robin; each case gets at most one problem.

    At least one case per kind (when there are enough cases), so a small ``fraction`` still
    exercises every requested kind; a kind goes to the next shuffled case that can carry it.
    """
    order = [ds.cases[i] for i in np.random.default_rng(seed).permutation(len(ds.cases))]
    wanted = min(len(order), max(round(fraction * len(order)), len(kinds)))
    used: set[str] = set()
    plan = []
    for i in range(wanted):
        kind = kinds[i % len(kinds)]
        case = next((c for c in order if c.id not in used and supports(ds, c, kind)), None)
        if case is not None:
            used.add(case.id)
            plan.append((case, kind))
    return plan


# ------------------------------------------------------------------------------------------
# planting
# ------------------------------------------------------------------------------------------


def _centre(array: np.ndarray, spatial_dims: int) -> tuple[int, ...]:
    return tuple(n // 2 for n in array.shape[:spatial_dims])


def _rewrite(path: Path, image: MedImage, array: np.ndarray, **geometry: object) -> None:
    keep = {"spacing": image.spacing, "origin": image.origin, "direction": image.direction}
    write_image(path, MedImage.from_array(array, **{**keep, **geometry}))


def _truncate(case: Case, ds: Dataset) -> Path:
    path = case.images[0]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _crop_label(case: Case, ds: Dataset) -> Path:
    """Drop one row of voxels, from the end with less foreground, so the map stays non-empty."""
    label = read_image(case.label)
    array = label.array
    first, last = np.count_nonzero(array[0]), np.count_nonzero(array[-1])
    _rewrite(case.label, label, array[:-1] if last <= first else array[1:])
    return case.label


def _bad_value(case: Case, ds: Dataset) -> Path:
    label = read_image(case.label)
    value = max([*ds.labels.values(), int(label.array.max())]) + 1
    dtype = np.promote_types(label.array.dtype, np.min_scalar_type(value))
    array = label.array.astype(dtype)
    array[_centre(array, label.spatial_dims)] = value
    _rewrite(case.label, label, array)
    return case.label


def _nan_voxels(case: Case, ds: Dataset) -> Path:
    path = case.images[0]
    image = read_image(path)
    array = image.array.astype(np.float32)
    array[_centre(array, image.spatial_dims)] = np.nan
    _rewrite(path, image, array)
    return path


def _move_label(case: Case, ds: Dataset) -> Path:
    label = read_image(case.label)
    spacing = np.asarray(label.spacing, dtype=float)
    origin = np.asarray(label.origin, dtype=float) + 5 * spacing
    _rewrite(case.label, label, label.array, spacing=spacing * 1.25, origin=origin)
    return case.label


def _middle_slice(case: Case, ds: Dataset) -> Path:
    path = case.images[0]
    image = read_image(path)
    array = image.array[:, :, image.array.shape[2] // 2]
    _rewrite(
        path, image, array, spacing=image.spacing[:2], origin=image.origin[:2], direction=np.eye(2)
    )
    return path


def _blank_label(case: Case, ds: Dataset) -> Path:
    label = read_image(case.label)
    _rewrite(case.label, label, np.zeros_like(label.array))
    return case.label


PLANTERS: dict[str, Callable[[Case, Dataset], Path]] = {
    "truncated": _truncate,
    "shape": _crop_label,
    "label_value": _bad_value,
    "nan": _nan_voxels,
    "geometry": _move_label,
    "dim2d": _middle_slice,
    "empty_label": _blank_label,
}


# ------------------------------------------------------------------------------------------
# entry point
# ------------------------------------------------------------------------------------------


def _kinds(kinds: Sequence[str] | None, ds: Dataset, src: Path) -> list[str]:
    """Requested kinds (validated), or by default every kind some case of ``ds`` can carry."""
    if kinds is None:
        return [k for k in KINDS if any(supports(ds, c, k) for c in ds.cases)]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise file_error(
            src, f"unknown corruption kind(s) {', '.join(unknown)}", f"choose from {KINDS}"
        )
    impossible = [k for k in kinds if not any(supports(ds, c, k) for c in ds.cases)]
    if impossible:
        raise file_error(
            src,
            f"no case can carry {', '.join(impossible)} (needs labels, 3D volumes or a format "
            "with geometry such as NIfTI)",
            "choose other --kinds",
        )
    return list(dict.fromkeys(kinds))


def corrupt_dataset(
    src: str | Path,
    out: str | Path,
    fraction: float = 0.2,
    kinds: Sequence[str] | None = None,
    seed: int = 0,
) -> list[Planted]:
    """Copy ``src`` to ``out`` and plant problems in a seeded ``fraction`` of its cases.

    ``out`` must not exist; on any failure the partial copy is removed, so a half-corrupted
    dataset that nobody knows about is never left behind.
    """
    src, out = Path(src), Path(out)
    if out.exists():
        raise file_error(out, "exists", "choose a new OUT or delete it")
    check_outside(out, src, "DIR", "OUT")
    if not 0 < fraction <= 1:
        raise file_error(src, f"--fraction {fraction} is not in (0, 1]", "pass e.g. 0.2")
    source = load_dataset(src)
    if source.layout not in LAYOUTS:
        raise file_error(
            src, f"corrupt does not handle the {source.layout} layout", f"use {LAYOUTS}"
        )
    chosen = _kinds(kinds, source, src)
    try:
        shutil.copytree(src, out)
        plan = _plan(load_dataset(out), chosen, fraction, seed)
        planted = [Planted(c.id, PLANTERS[k](c, source), k) for c, k in plan]
        records = [
            {"case": p.case, "file": p.file.relative_to(out).as_posix(), "kind": p.kind}
            for p in planted
        ]
        write_text_atomic(out / "corruptions.json", json.dumps(records, indent=1) + "\n")
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return planted
