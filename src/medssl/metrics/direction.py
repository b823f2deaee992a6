"""Which way is better for each metric medssl reports.

Reports rank per-case tables worst case first and bench tables mark the best method; both must
know the direction of every task's metrics (a low Dice is bad, a low MRE is good), so it is
stated once here rather than guessed from the name's range. A metric missing from the table is
an error, never a silent guess.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Mapping
from typing import TypeVar

__all__ = [
    "HIGHER_IS_BETTER",
    "UnknownMetricError",
    "best_first",
    "has_direction",
    "higher_is_better",
    "worst_first",
]

K = TypeVar("K", bound=Hashable)

#: metric family -> whether a higher value is better
HIGHER_IS_BETTER: dict[str, bool] = {
    # segmentation
    "dice": True,
    "jaccard": True,
    "iou": True,
    "hd95": False,
    "asd": False,
    # classification (overall, then per class)
    "accuracy": True,
    "auc": True,
    "f1_macro": True,
    "balanced_accuracy": True,
    "precision": True,
    "recall": True,
    "sensitivity": True,
    "specificity": True,
    "f1": True,
    # landmarks: mean radial error, its SD, missed landmarks; sdr_<threshold>mm, see below
    "mre": False,
    "sd": False,
    "missed": False,
    "sdr": True,
    # a class judged from landmarks by a rule (the cephalograms' skeletal class from ANB)
    "anb_error_deg": False,
    "class_accuracy_from_landmarks": True,
    "class_balanced_accuracy_from_landmarks": True,
    # image translation, harmonisation and video
    "psnr": True,
    "ssim": True,
    "content_ssim": True,
    "mae": False,
    "hist_distance": False,
    "flicker": False,
}

# A family measured at a threshold: ``sdr_2mm``, ``sdr_2.5mm`` (``sdr_key``), ``sdr_4px``.
_AT_THRESHOLD = re.compile(r"(?P<family>sdr)_\d+(?:\.\d+)?(?:mm|px)?")


class UnknownMetricError(ValueError):
    """A metric whose direction medssl does not know."""


def _family(name: str) -> str | None:
    """``val/dice`` -> ``dice``, ``sdr_2.5mm`` -> ``sdr``; ``None`` for an unknown metric."""
    base = name.rsplit("/", 1)[-1].lower()
    if base in HIGHER_IS_BETTER:
        return base
    match = _AT_THRESHOLD.fullmatch(base)
    return match["family"] if match else None


def has_direction(name: str) -> bool:
    """Whether :func:`higher_is_better` knows ``name``."""
    return _family(name) is not None


def higher_is_better(name: str) -> bool:
    """True for scores (Dice, AUC, SDR, PSNR), False for errors and distances (HD95, MRE, MAE).

    Accepts a logged name (``val/dice``) and thresholded names (``sdr_2.5mm``); raises
    :class:`UnknownMetricError` for a metric not in :data:`HIGHER_IS_BETTER`.
    """
    family = _family(name)
    if family is None:
        known = ", ".join(sorted(HIGHER_IS_BETTER))
        raise UnknownMetricError(
            f"unknown metric {name!r}: whether higher or lower is better is not known for it "
            f"(known: {known}, sdr_<threshold>mm); add it to "
            "medssl.metrics.direction.HIGHER_IS_BETTER"
        )
    return HIGHER_IS_BETTER[family]


def best_first(values: Mapping[K, float], metric: str) -> list[K]:
    """The keys of ``values`` (case, method, row) ordered best value first for ``metric``.

    Ties keep their order; NaN and missing (``None``) values come last, in their order.
    """
    return _ranked(values, metric, best=True)


def worst_first(values: Mapping[K, float], metric: str) -> list[K]:
    """The keys ordered worst value first (the cases to look at); NaN and ``None`` last."""
    return _ranked(values, metric, best=False)


def _ranked(values: Mapping[K, float], metric: str, best: bool) -> list[K]:
    descending = higher_is_better(metric) == best
    scored = [k for k, v in values.items() if v is not None and not math.isnan(v)]
    unscored = [k for k, v in values.items() if v is None or math.isnan(v)]
    return sorted(scored, key=lambda k: values[k], reverse=descending) + unscored
