"""``medssl data check``: find every problem of a dataset before anyone trains on it.

Each file is read once and fully (a truncated ``.nii.gz`` often keeps an intact header, so a
header read would miss it); per-file facts are collected first and compared per case after, so
that a file with the wrong dimensionality or no data is reported once and not again as a
shape or geometry mismatch of its case. Files are read in a thread pool: gzip, PNG decoding
and the numpy reductions release the GIL.

What a layout silently leaves out is a problem too: data files under the dataset folder that no
case uses (:mod:`medssl.data.unused`, names only) and fewer cases than ``numTraining``. The
report says how many cases were read, labelled and unlabelled, so a shrunken dataset shows.

A set of images without any label (for pretraining, or the unlabelled pool of a semi-supervised
run) is not broken: it gets the same checks, and a remark, not a problem, that it is unlabelled.
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

from medssl.data.dataset import Case, Dataset
from medssl.data.io import read_image, read_npz, read_swc
from medssl.data.layouts import detect_layout, load_dataset, npz_path
from medssl.data.layouts.files import label_values
from medssl.data.unused import Unused, unused_files
from medssl.errors import DataError

GEOMETRY_RTOL = 1e-4


@dataclass(frozen=True)
class Problem:
    """One finding: the file it is about, what is wrong, and a stable ``kind`` to filter on."""

    path: Path
    message: str
    kind: str

    def __str__(self) -> str:
        """One line whatever the message holds (a reader's error may span several)."""
        return f"{self.path}: {' '.join(self.message.splitlines())}"


class Report(list[Problem]):
    """The problems of a dataset, plus what ``format_report`` prints around them.

    A list, so that callers that only want the problems (``if problems``, ``== []``) keep
    working; ``summary`` says how many cases were read, labelled and unlabelled, ``notes``
    names the files that were not used without being a problem, and ``remarks`` are whole
    lines about the dataset that are not problems either (an image-only set is unlabelled).
    """

    def __init__(
        self,
        problems: Iterable[Problem],
        summary: str,
        notes: Iterable[Unused] = (),
        remarks: Iterable[str] = (),
    ):
        super().__init__(problems)
        self.summary = summary
        self.notes = list(notes)
        self.remarks = list(remarks)


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


def _message(err: DataError, path: Path) -> str:
    """The error's text without its leading ``"<path>: "`` (Problem prints the path itself)."""
    text = str(err)
    return text[len(f"{path}: ") :] if text.startswith(f"{path}: ") else text


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
        message = _message(err, path)
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


# ------------------------------------------------------------------------------------------
# layout extras: landmarks, SWC, MedMNIST
# ------------------------------------------------------------------------------------------


def _annotations(case: Case) -> dict[str, np.ndarray]:
    if "annotations" in case.meta:
        return case.meta["annotations"]
    return {"reference": case.meta["landmarks"]} if "landmarks" in case.meta else {}


def check_landmarks(ds: Dataset, infos: dict[Path, FileInfo]) -> list[Problem]:
    """Every annotator's points must lie in the image, continuous coords [0, W] x [0, H]."""
    landmarks = ds.extra.get("landmarks")
    if landmarks is None:
        return []
    index = ds.root / "landmarks.json"
    problems = []
    for case in ds.cases:
        info = infos.get(case.images[0]) if case.images else None
        if info is None:
            continue
        width, height = info.shape[:2]
        for annotator, points in _annotations(case).items():
            pts = np.asarray(points, dtype=float)
            outside = (pts[:, 0] < 0) | (pts[:, 0] > width) | (pts[:, 1] < 0) | (pts[:, 1] > height)
            if outside.any():
                names = [landmarks.names[i] for i in np.flatnonzero(outside)]
                problems.append(
                    Problem(
                        index,
                        f"case {case.id} {annotator}: landmarks {', '.join(names)} lie outside "
                        f"the {width} x {height} image {info.path.name}",
                        "landmark",
                    )
                )
    return problems


def _swc_problem(path: Path, case_id: str) -> Problem | None:
    if not path.exists():
        return Problem(path, f"file not found (listed for case {case_id})", "missing")
    try:
        nodes = read_swc(path)
    except DataError as err:
        return Problem(path, _message(err, path), "swc")
    parents = nodes["parent"]
    orphans = parents[(parents != -1) & ~np.isin(parents, nodes["id"])]
    if orphans.size:
        shown = ", ".join(str(int(p)) for p in orphans[:5])
        return Problem(
            path, f"{orphans.size} nodes have parents that are not node ids ({shown})", "swc"
        )
    return None


def check_swc(ds: Dataset) -> list[Problem]:
    """Reference and automatic tracings must parse and form trees (every parent exists)."""
    problems = []
    for case in ds.cases:
        for path in [case.meta["swc"], *case.meta.get("swc_auto", {}).values()]:
            problem = _swc_problem(Path(path), case.id)
            problems += [problem] if problem else []
    return problems


def check_medmnist(npz: Path) -> tuple[list[Problem], str, list[str]]:
    """Arrays must load with images and labels paired up (``read_npz`` checks), and be finite.

    Returns the problems, the summary line and the remarks (the cases live in the npz, read
    here once): an npz of images only is unlabelled, which is no problem.
    """
    try:
        splits = read_npz(npz)
    except DataError as err:
        line = summary_line(0, 0, 0, "medmnist")
        return [Problem(npz, _message(err, npz), "medmnist")], line, []
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


# ------------------------------------------------------------------------------------------
# entry points
# ------------------------------------------------------------------------------------------


def count_problems(ds: Dataset) -> list[Problem]:
    """Fewer training cases than dataset.json's ``numTraining``: some were lost on the way.

    Only fewer: datasets here count all imagesTr cases (brats2018: 1 labelled + 8 unlabelled =
    9) or only the labelled ones (the seg3d phantom), so more cases than declared is fine. A
    multi-domain set is compared only when every domain is selected.
    """
    meta = ds.extra.get("dataset_json") or {}
    declared = meta.get("numTraining")
    if not isinstance(declared, int) or isinstance(declared, bool):
        return []
    if ds.layout == "multidomain" and set(ds.extra["domains"]) != set(meta.get("domains") or ()):
        return []
    training = [c for c in ds.cases if c.meta.get("split") != "test"]
    if len(training) >= declared:
        return []
    labelled = sum(c.has_label for c in training)
    return [
        Problem(
            ds.root / "dataset.json",
            f"numTraining is {declared} but {len(training)} training cases were found "
            f"({labelled} labelled); find the missing ones (the 'not used' files, if any) or "
            "correct numTraining",
            "count",
        )
    ]


def unused_problems(found: list[Unused]) -> list[Problem]:
    """Data files in a folder the layout reads cases from that no case uses (kind ``unused``)."""
    return [Problem(u.path, f"not used: {u.why}; {u.fix}", "unused") for u in found if u.problem]


def labels_problems(ds: Dataset) -> list[Problem]:
    """Label names a loose-files folder cannot derive: what makes its training fail."""
    err = ds.extra.get("labels_error")
    return [Problem(ds.root, _message(err, ds.root), "labels")] if err is not None else []


# Why a set of each layout has no labelled case, when it has none (SWC sets never have one:
# their tracings are the ground truth, so they get no remark).
UNLABELLED_WHY = {
    "medmnist": "no <split>_labels arrays",
    "files": "no <name>_label files",
    "msd": "no dataset.json entry names a label",
    "multidomain": "no dataset.json entry names a label",
    "manifest": "no manifest row has a label",
    "landmarks": "no case has landmarks",
}


def unlabelled_remark(root: Path, why: str) -> str:
    return (
        f"{root}: unlabelled, not a problem: {why}; use the set for pretraining or as the "
        "unlabelled pool of a semi-supervised run"
    )


def remarks(ds: Dataset) -> list[str]:
    """What is worth saying about the set without being a problem: no labels at all, and what
    an nnU-Net folder without dataset.json was read with."""
    found = []
    if "inferred" in ds.extra:
        found.append(f"{ds.root}: no dataset.json, not a problem: {ds.extra['inferred']}")
    if ds.cases and not ds.labeled and ds.layout != "swc":
        if ds.layout == "nnunet":
            has_folder = (ds.root / "labelsTr").is_dir()
            why = "labelsTr/ holds no label of an imagesTr/ case" if has_folder else "no labelsTr/"
        else:
            why = UNLABELLED_WHY.get(ds.layout, "no case has a label")
        found.append(unlabelled_remark(ds.root, why))
    return found


def summary_line(cases: int, labelled: int, test: int, layout: str) -> str:
    """``read 20 cases: 16 labelled, 4 unlabelled (nnunet layout)``; test cases counted apart."""
    text = (
        f"read {cases} case{'s' * (cases != 1)}: {labelled} labelled, {cases - labelled} unlabelled"
    )
    tests = f"{test} of them test cases; " if test > 1 else "1 of them a test case; "
    return f"{text} ({tests if test else ''}{layout} layout)"


def summary(ds: Dataset) -> str:
    test = sum(c.meta.get("split") == "test" for c in ds.unlabeled)
    return summary_line(len(ds.cases), len(ds.labeled), test, ds.layout)


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


def format_report(problems: list[Problem]) -> str:
    """One line per problem, the files not used (a report's notes), its remarks, then the counts.

    For a :class:`Report` the cases read come before the last line; a dataset whose only
    findings are notes or remarks still ends in ``no problems found``.
    """
    lines = [str(p) for p in problems]
    if isinstance(problems, Report):
        lines += [f"{u.path}: not used, not a problem: {u.why}" for u in problems.notes]
        lines += problems.remarks
        notes = len(problems.notes)
        tail = f"; {notes} file{'s' * (notes != 1)} not used, not problems (above)" if notes else ""
        lines.append(problems.summary + tail)
    if not problems:
        return "\n".join([*lines, "no problems found"])
    kinds = Counter(p.kind for p in problems)
    files = len({p.path for p in problems})
    by_kind = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    noun = "problem" if len(problems) == 1 else "problems"
    lines.append(f"{len(problems)} {noun} in {files} file{'s' * (files != 1)} ({by_kind})")
    return "\n".join(lines)
