"""Per-file reads and per-case comparisons: the part of ``data check`` that opens images.

Each file is read once and fully (a truncated ``.nii.gz`` often keeps an intact header, so a
header read would miss it); per-file facts are collected first and compared per case after, so
that a file with the wrong dimensionality or no data is reported once and not again as a
shape or geometry mismatch of its case. Files are read in a thread pool: gzip, PNG decoding
and the numpy reductions release the GIL.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medssl.data.check.report import Problem, error_message
from medssl.data.dataset import Case, Dataset
from medssl.data.io import read_image
from medssl.data.layouts.files import label_values
from medssl.errors import DataError

GEOMETRY_RTOL = 1e-4


@dataclass
class FileInfo:
    """What the case-level comparisons need from one file, without keeping its voxels."""

    path: Path
    role: str
    shape: tuple[int, ...]
    spatial_dims: int
    spacing: np.ndarray
    origin: np.ndarray
    direction: np.ndarray
    problems: list[Problem] = field(default_factory=list)

    @property
    def effective_dims(self) -> int:
        """A volume with one slice (oasis2d's 160 x 192 x 1) is a 2D image."""
        return 2 if self.spatial_dims == 3 and self.shape[2] == 1 else self.spatial_dims


def _read_error_kind(message: str) -> str:
    """io refuses 4-D files outright ("is a 4-D image"); that is a dimensionality problem."""
    found = re.search(r"is a (\d+)-D image", message)
    return f"dim{found.group(1)}d" if found else "unreadable"


# ------------------------------------------------------------------------------------------
# per file
# ------------------------------------------------------------------------------------------


def _value_problems(path: Path, array: np.ndarray, allowed: set[int] | None) -> list[Problem]:
    """An all-background map is reported (no real dataset here has one); an absent class is not."""
    values = label_values(array)
    if not np.any(values != 0):
        return [
            Problem(
                path,
                "label map is all background (no foreground voxel); fix it or delete it to "
                "make the case unlabelled",
                "empty_label",
            )
        ]
    bad = [v for v in values.tolist() if allowed is not None and v not in allowed]
    if not bad:
        return []
    shown = ", ".join(f"{v:g}" for v in bad[:10]) + (" ..." if len(bad) > 10 else "")
    allowed_text = ", ".join(map(str, sorted(allowed or ())))
    return [
        Problem(
            path,
            f"label values {shown} are not in dataset.json labels (allowed: {allowed_text})",
            "label_value",
        )
    ]


def _non_finite(array: np.ndarray) -> int:
    """NaN/inf voxels (``read_image`` keeps them, NIfTI included)."""
    if array.dtype.kind not in "fc":
        return 0
    return int(array.size - np.count_nonzero(np.isfinite(array)))


def _nan_problems(path: Path, array: np.ndarray) -> list[Problem]:
    bad = _non_finite(array)
    if not bad:
        return []
    return [Problem(path, f"image has {bad} NaN/inf voxels; fix or replace the file", "nan")]


def scan_file(path: Path, role: str, allowed: set[int] | None, case_id: str) -> FileInfo | Problem:
    """Read one file fully; return its facts (with any value problems) or why it is unusable.

    ``role`` is ``image``, ``label`` (values must be in ``allowed``, not all background) or
    ``mask`` (any values, not all background).
    """
    if not path.exists():
        return Problem(path, f"file not found (listed for case {case_id})", "missing")
    try:
        image = read_image(path)
    except DataError as err:
        message = error_message(err, path)
        return Problem(path, message, _read_error_kind(message))
    if role == "image":
        problems = _nan_problems(path, image.array)
    else:
        problems = _value_problems(path, image.array, allowed if role == "label" else None)
    return FileInfo(
        path=path,
        role=role,
        shape=tuple(int(n) for n in image.spatial_shape),
        spatial_dims=int(image.spatial_dims),
        spacing=np.asarray(image.spacing, dtype=float),
        origin=np.asarray(image.origin, dtype=float),
        direction=np.asarray(image.direction, dtype=float),
        problems=problems,
    )


# ------------------------------------------------------------------------------------------
# per case
# ------------------------------------------------------------------------------------------


def _case_files(case: Case) -> list[tuple[Path, str]]:
    files = [(p, "image") for p in case.images]
    if case.label is not None:
        files.append((case.label, "label"))
    if case.meta.get("mask") is not None:
        files.append((Path(case.meta["mask"]), "mask"))
    return files


def _allowed_values(ds: Dataset) -> set[int] | None:
    """Declared label values (plus nnU-Net region members); ``None`` when nothing is declared."""
    if not ds.labels:
        return None
    allowed = set(ds.labels.values())
    for members in ds.extra.get("regions", {}).values():
        allowed.update(members)
    return allowed


def _majority_dims(infos: Iterable[FileInfo]) -> int | None:
    """The dimensionality more than half of the images have, when none is declared."""
    counts = Counter(i.effective_dims for i in infos)
    total = sum(counts.values())
    dims, n = counts.most_common(1)[0] if counts else (None, 0)
    return dims if n * 2 > total else None


def _dims_problem(info: FileInfo, expected: int | None) -> Problem | None:
    if expected is None or info.effective_dims == expected:
        return None
    return Problem(
        info.path,
        f"{info.effective_dims}D image (shape {info.shape}) where {expected}D is expected",
        f"dim{info.effective_dims}d",
    )


def _geometry_differences(a: FileInfo, b: FileInfo) -> list[str]:
    """Names of the geometry parts of ``a`` that differ from ``b`` beyond rounding."""
    scale = float(np.max(np.abs(b.spacing))) if b.spacing.size else 1.0
    checks = (
        ("spacing", a.spacing, b.spacing, GEOMETRY_RTOL * scale),
        ("origin", a.origin, b.origin, GEOMETRY_RTOL * max(scale, 1.0) * 10),
        ("direction", a.direction, b.direction, GEOMETRY_RTOL),
    )
    return [
        f"{name} {np.round(x, 4).tolist()} vs {np.round(y, 4).tolist()}"
        for name, x, y, atol in checks
        if x.shape != y.shape or not np.allclose(x, y, rtol=GEOMETRY_RTOL, atol=atol)
    ]


def _pair_problems(ref: FileInfo, other: FileInfo) -> list[Problem]:
    """``other`` (another channel, the label or the mask) against the case's first image."""
    if other.shape != ref.shape:
        what = "channel" if other.role == "image" else other.role
        return [
            Problem(
                other.path,
                f"{what} shape {other.shape} does not match image {ref.path.name} {ref.shape}",
                "channels" if other.role == "image" else "shape",
            )
        ]
    if other.role == "image":
        return []
    differences = _geometry_differences(other, ref)
    if not differences:
        return []
    return [
        Problem(
            other.path,
            f"{other.role} geometry differs from image {ref.path.name}: " + "; ".join(differences),
            "geometry",
        )
    ]


def _case_problems(infos: list[FileInfo], expected: int | None) -> list[Problem]:
    """Dimensionality of the images, then shape/geometry of the rest against the first one."""
    problems = []
    usable = []
    for info in infos:
        bad = _dims_problem(info, expected) if info.role == "image" else None
        problems += [bad] if bad else []
        usable += [] if bad else [info]
    images = [i for i in usable if i.role == "image"]
    if images:
        for other in usable:
            if other is not images[0]:
                problems += _pair_problems(images[0], other)
    return problems


def check_files(ds: Dataset) -> tuple[list[Problem], dict[Path, FileInfo]]:
    """Read every file of every case once; return the problems and each readable file's facts."""
    allowed = _allowed_values(ds)
    jobs = [(case, path, role) for case in ds.cases for path, role in _case_files(case)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(lambda job: scan_file(job[1], job[2], allowed, job[0].id), jobs))
    problems: list[Problem] = []
    by_case: dict[str, list[FileInfo]] = {}
    for (case, _, _), result in zip(jobs, results, strict=True):
        if isinstance(result, Problem):
            problems.append(result)
            continue
        problems += result.problems
        by_case.setdefault(case.id, []).append(result)
    first_images = [i[0] for i in by_case.values() if i and i[0].role == "image"]
    majority = ds.spatial_dims or _majority_dims(first_images)
    for case in ds.cases:
        expected = case.meta.get("ndim") or majority
        problems += _case_problems(by_case.get(case.id, []), expected)
    infos = {i.path: i for files in by_case.values() for i in files}
    return problems, infos
