"""``medssl data check``: find every problem of a dataset before anyone trains on it.

:func:`check_dataset` runs every check and returns a :class:`Report`; :func:`format_report`
prints it. The checks live one job a module: :mod:`.files` reads each file once and compares
the files of each case, :mod:`.annotations` checks landmarks and SWC tracings,
:mod:`.medmnist` checks a MedMNIST npz whole, and :mod:`.report` holds the report itself and
the findings about the dataset as a whole (unused files, fewer cases than ``numTraining``,
underivable label names; the summary and remarks).

A set of images without any label (for pretraining, or the unlabelled pool of a semi-supervised
run) is not broken: it gets the same checks, and a remark, not a problem, that it is unlabelled.
"""

from __future__ import annotations

from pathlib import Path

from medssl.data.check.annotations import check_landmarks, check_swc
from medssl.data.check.files import GEOMETRY_RTOL, FileInfo, check_files, scan_file
from medssl.data.check.medmnist import check_medmnist
from medssl.data.check.report import (
    UNLABELLED_WHY,
    Problem,
    Report,
    count_problems,
    format_report,
    labels_problems,
    remarks,
    summary,
    summary_line,
    unlabelled_remark,
    unused_problems,
)
from medssl.data.dataset import Dataset
from medssl.data.layouts import detect_layout, load_dataset, npz_path
from medssl.data.unused import unused_files

__all__ = [
    "GEOMETRY_RTOL",
    "UNLABELLED_WHY",
    "FileInfo",
    "Problem",
    "Report",
    "check_dataset",
    "check_files",
    "check_landmarks",
    "check_medmnist",
    "check_swc",
    "count_problems",
    "format_report",
    "labels_problems",
    "remarks",
    "scan_file",
    "summary",
    "summary_line",
    "unlabelled_remark",
    "unused_problems",
]


def check_dataset(root: str | Path, domains: list[str] | None = None) -> Report:
    """All problems of the dataset at ``root`` (``[]`` when it is fine to train on).

    Besides what is wrong in each file, the files under ``root`` that no case uses are named:
    those where the layout reads its cases are problems (``unused``), the rest ride along as
    ``Report.notes``. A dataset that cannot be loaded at all (no layout, broken
    ``dataset.json``) raises :class:`DataError` instead: there is nothing to list problems of.
    """
    if detect_layout(root) == "medmnist":
        npz = npz_path(Path(root))
        problems, line, said = check_medmnist(npz)
        folder = Dataset(root=Path(root), layout="medmnist", cases=[], extra={"npz": npz})
        return Report(problems, line, unused_files(folder), said)
    ds = load_dataset(root, domains, strict=False)
    problems, infos = check_files(ds)
    if ds.layout == "swc":
        problems += check_swc(ds)
    problems += check_landmarks(ds, infos)
    found = unused_files(ds)
    problems += labels_problems(ds) + unused_problems(found) + count_problems(ds)
    return Report(problems, summary(ds), [u for u in found if not u.problem], remarks(ds))
