"""The skeletal class of a lateral cephalogram, judged from its landmarks by the ANB angle.

"Find points, then judge them": an orthodontist classes the sagittal jaw relation from the
ANB angle (Riedel), the angle at nasion between A point and B point. Here, as in the ISBI 2015
cephalometric challenge (Wang et al., "A benchmark for comparison of dental radiography analysis
algorithms", Med Image Anal 31, 2016, whose 19 landmarks the shared set carries in the same
order):

* ``ANB = SNA - SNB``: SNA is the angle at nasion (N) from sella (S) to A point, SNB the angle
  at N from S to B point, both unsigned, in degrees; B ahead of A gives a negative ANB.
* Landmarks (ISBI 2015 order, 1-based as the shared set names them ``l1`` .. ``l19``): sella
  ``l1``, nasion ``l2``, A point (subspinale) ``l5``, B point (supramentale) ``l6``.
* Classes (the challenge's thresholds): **Class I** 3.2 <= ANB <= 5.7 degrees (normal),
  **Class II** ANB > 5.7 (maxilla ahead of the mandible), **Class III** ANB < 3.2 (mandible
  ahead).

Angles are measured in the image's own pixels (square: the rule needs isotropic pixels, which
radiographs have); a case missing one of the four points has no class (-1).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix

from medssl.data.dataset import Case, Dataset
from medssl.errors import ConfigError, file_error

#: 0-based indices of the landmarks the rule reads (ISBI 2015 order: l1, l2, l5, l6)
SELLA, NASION, A_POINT, B_POINT = 0, 1, 4, 5
ISBI_LANDMARKS = 19
CLASS_NAMES = ["Class I", "Class II", "Class III"]
#: Class I lies in [LOWER, UPPER] degrees; above is Class II, below Class III
LOWER, UPPER = 3.2, 5.7
RULES = ("anb",)
RULE_TEXT = (
    "ANB = SNA - SNB at nasion from landmarks l1 (sella), l2 (nasion), l5 (A point), l6 "
    f"(B point); Class I {LOWER}-{UPPER} deg, Class II > {UPPER} deg, Class III < {LOWER} deg "
    "(ISBI 2015 challenge)"
)


def _angle(at: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Unsigned angle in degrees at ``at`` between the rays to ``a`` and to ``b``."""
    u, v = a - at, b - at
    cos = (u * v).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def anb_angle(points: np.ndarray) -> np.ndarray:
    """ANB in degrees of ``(..., L, 2)`` points (NaN where one of the four is missing)."""
    p = np.asarray(points, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        sna = _angle(p[..., NASION, :], p[..., SELLA, :], p[..., A_POINT, :])
        snb = _angle(p[..., NASION, :], p[..., SELLA, :], p[..., B_POINT, :])
    return sna - snb


def skeletal_class(anb: np.ndarray) -> np.ndarray:
    """Class index (0: I, 1: II, 2: III) of each ANB angle; -1 where it is NaN."""
    anb = np.asarray(anb, dtype=np.float64)
    out = np.where(anb > UPPER, 1, np.where(anb < LOWER, 2, 0))
    return np.where(np.isfinite(anb), out, -1).astype(np.int64)


def check_rule(rule: str | None, num_landmarks: int, root: Path) -> None:
    """The rule must be known and the landmarks the 19 it is defined on."""
    if rule is None:
        return
    if rule not in RULES:
        raise ConfigError(f"data.class_rule {rule!r}: choose one of {', '.join(RULES)} or null")
    if num_landmarks != ISBI_LANDMARKS:
        raise file_error(
            root / "landmarks.json",
            f"has {num_landmarks} landmarks; data.class_rule anb reads the 19 ISBI 2015 "
            "cephalometric landmarks (sella l1, nasion l2, A point l5, B point l6)",
            "drop data.class_rule, or give the 19 cephalometric landmarks in that order",
        )


def with_rule_classes(dataset: Dataset, rule: str | None) -> Dataset:
    """``dataset`` with each case's image class (``meta["class"]``) judged by ``rule`` from
    its reference points; unchanged without a rule."""
    if rule is None:
        return dataset
    if dataset.labels:
        raise ConfigError(
            f"{dataset.root}: data.class_rule {rule!r} would replace the image classes the "
            "dataset gives; drop data.class_rule or the dataset's classes"
        )
    cases = []
    for case in dataset.cases:
        if case.target is None:
            cases.append(case)
            continue
        meta = {**case.meta, "class": int(skeletal_class(anb_angle(case.target)))}
        cases.append(replace(case, meta=meta))
    labels = {name: i for i, name in enumerate(CLASS_NAMES)}
    return replace(dataset, cases=cases, labels=labels)


def rule_scores(truth: np.ndarray, judged: np.ndarray) -> dict[str, Any]:
    """The class the rule gives from ``judged`` points ``(N, L, 2)`` scored against the class
    it gives from ``truth``: mean ANB error in degrees, accuracy, balanced accuracy and the
    confusion matrix (rows: truth), over the cases where both have the four points."""
    return _angle_scores(anb_angle(truth), anb_angle(judged))


def _angle_scores(anb_truth: np.ndarray, anb_judged: np.ndarray) -> dict[str, Any]:
    """:func:`rule_scores` of the two sets' ANB angles."""
    y, p = skeletal_class(anb_truth), skeletal_class(anb_judged)
    keep = (y >= 0) & (p >= 0)
    if not keep.any():
        return {"cases": 0}
    y, p = y[keep], p[keep]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)  # a class absent from y
        balanced = float(balanced_accuracy_score(y, p))
    return {
        "anb_error_deg": float(np.abs(anb_judged[keep] - anb_truth[keep]).mean()),
        "class_accuracy_from_landmarks": float(accuracy_score(y, p)),
        "class_balanced_accuracy_from_landmarks": balanced,
        "confusion_matrix": confusion_matrix(y, p, labels=[0, 1, 2]).tolist(),
        "reference_counts": {n: int((y == k).sum()) for k, n in enumerate(CLASS_NAMES)},
        "cases": int(keep.sum()),
    }


#: the keys of :func:`rule_scores` that go into an evaluation's ``mean``
MEAN_KEYS = (
    "anb_error_deg",
    "class_accuracy_from_landmarks",
    "class_balanced_accuracy_from_landmarks",
)


def judged_from_points(
    cases: list[Case], target: np.ndarray, pred: np.ndarray
) -> tuple[dict[str, float], dict[str, Any], dict[str, dict[str, Any]]]:
    """(mean scores, the ``skeletal_class`` block, per-case columns): the class the rule
    gives from the predicted points against the class of the reference points."""
    anb_truth, anb_pred = anb_angle(target), anb_angle(pred)
    scores = _angle_scores(anb_truth, anb_pred)
    judged = skeletal_class(anb_pred)
    per_case = {
        c.id: {
            "anb_reference": float(anb_truth[i]),
            "anb_predicted": float(anb_pred[i]),
            "class_from_landmarks": CLASS_NAMES[judged[i]] if judged[i] >= 0 else None,
        }
        for i, c in enumerate(cases)
    }
    block = {"rule": RULE_TEXT, "class_names": CLASS_NAMES, "from_landmarks": scores}
    mean = {k: scores[k] for k in MEAN_KEYS if k in scores}
    return mean, {"skeletal_class": block}, per_case
