"""What ``medssl data check`` reports, and the findings about a dataset as a whole.

:class:`Problem` and :class:`Report` are what every other check module builds; the
dataset-level findings live here too because they come from the loaded :class:`Dataset`, not
from reading any file: what a layout silently leaves out (data files under the dataset folder
that no case uses, :mod:`medssl.data.unused`, names only; fewer cases than ``numTraining``),
label names a loose-files folder cannot derive, and the summary and remarks (an image-only set
is unlabelled, not broken) that :func:`format_report` prints around the problems.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from medssl.data.dataset import Dataset
from medssl.data.unused import Unused
from medssl.errors import DataError


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


def error_message(err: DataError, path: Path) -> str:
    """The error's text without its leading ``"<path>: "`` (Problem prints the path itself)."""
    text = str(err)
    return text[len(f"{path}: ") :] if text.startswith(f"{path}: ") else text


# ------------------------------------------------------------------------------------------
# dataset-level problems
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
    return [Problem(ds.root, error_message(err, ds.root), "labels")] if err is not None else []


# ------------------------------------------------------------------------------------------
# remarks and summary
# ------------------------------------------------------------------------------------------


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
