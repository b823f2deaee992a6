"""Per-class segmentation metrics: Dice, Jaccard, HD95 and ASD, computed with MONAI.

Metrics are computed per case and per class on integer label maps; MONAI does the overlap and
surface-distance work (edge extraction and distance transforms). This module only adds input
validation and one explicit policy for empty masks, because MONAI returns ``nan``/``inf`` there
and a ``nan`` silently drops the case from a mean.

Empty-mask policy (applied to every class of every case, see :data:`EMPTY_POLICY`):

* class absent from both ground truth and prediction: dice = jaccard = 1, hd95 = asd = 0 (a
  correct "nothing here");
* class absent from exactly one of them: dice = jaccard = 0, hd95 = asd = the length of the image
  diagonal, ``sqrt(sum((shape_i * spacing_i) ** 2))`` (the field-of-view diagonal, no smaller
  than any distance between two voxels), so the error is penalised, not dropped, and means stay
  finite.

Distances: ``hd95`` is MONAI's symmetric 95th-percentile Hausdorff distance (the larger of the
two directed 95th percentiles); ``asd`` is MONAI's symmetric average surface distance (the mean
over the surface points of both masks). Both are in mm when ``spacing`` is given, otherwise in
voxels; record which with :func:`distance_unit`.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import (
    compute_average_surface_distance,
    compute_dice,
    compute_hausdorff_distance,
    compute_iou,
)

__all__ = [
    "EMPTY_POLICY",
    "METRIC_KEYS",
    "distance_unit",
    "image_diagonal",
    "mean_over_classes",
    "segmentation_metrics",
]

METRIC_KEYS = ("dice", "jaccard", "hd95", "asd")

EMPTY_POLICY = (
    "Empty masks, per class and per case: if a class is absent from both ground truth and "
    "prediction, dice = jaccard = 1 and hd95 = asd = 0 (a correct 'nothing here'); if it is "
    "absent from exactly one of them, dice = jaccard = 0 and hd95 = asd = the image diagonal "
    "sqrt(sum((shape_i * spacing_i)^2)) in the same unit as the distances (the largest possible "
    "error, finite so means stay defined and the miss is penalised, not dropped)."
)


def distance_unit(spacing: float | Sequence[float] | None) -> str:
    """Unit of ``hd95``/``asd``: ``"mm"`` with a voxel spacing, ``"voxel"`` without."""
    return "voxel" if spacing is None else "mm"


def segmentation_metrics(
    pred: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    num_classes: int,
    spacing: float | Sequence[float] | None = None,
    class_names: Sequence[str] | None = None,
    include_background: bool = False,
) -> dict[str, dict[str, float]]:
    """Dice, Jaccard, HD95 and ASD per class for one case.

    ``pred`` and ``target`` are integer label maps of one spatial shape (2D or 3D) with values in
    ``0..num_classes-1``. ``spacing`` (mm per voxel, one per axis or one for all) turns distances
    into mm. ``class_names`` names every label value (length ``num_classes``, index 0 is the
    background) or only the foreground (length ``num_classes - 1``); default names are the label
    values as strings. Returns ``{class_name: {"dice", "jaccard", "hd95", "asd"}}`` for each
    foreground class, plus the background when ``include_background``.
    """
    p, t = _as_label_map(pred, "pred"), _as_label_map(target, "target")
    if p.shape != t.shape:
        raise ValueError(f"pred shape {tuple(p.shape)} != target shape {tuple(t.shape)}")
    if p.ndim not in (2, 3):
        raise ValueError(f"label maps must be 2D or 3D, got shape {tuple(p.shape)}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    _check_range(p, num_classes, "pred")
    _check_range(t, num_classes, "target")
    sp = _spacing_tuple(spacing, p.ndim)
    names = _class_names(class_names, num_classes)
    diagonal = image_diagonal(p.shape, sp)
    first = 0 if include_background else 1
    return {
        names[c]: _class_metrics(p == c, t == c, sp, diagonal) for c in range(first, num_classes)
    }


def mean_over_classes(per_class: dict[str, dict[str, float]]) -> dict[str, float]:
    """Unweighted mean of each metric over classes (``{}`` for no classes).

    A plain mean, not ``nanmean``: under the empty-mask policy no metric is ``nan``, so a ``nan``
    here would be a bug worth seeing.
    """
    if not per_class:
        return {}
    keys = next(iter(per_class.values())).keys()
    return {k: float(np.mean([m[k] for m in per_class.values()])) for k in keys}


def image_diagonal(shape: Sequence[int], spacing: Sequence[float] | None = None) -> float:
    """Length of the field-of-view diagonal, the distance assigned to one-sided empty masks."""
    sp = spacing if spacing is not None else (1.0,) * len(shape)
    return float(math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, sp, strict=True))))


def _class_metrics(
    p: np.ndarray, t: np.ndarray, spacing: tuple[float, ...] | None, diagonal: float
) -> dict[str, float]:
    """Metrics of one binary class, applying the empty-mask policy before MONAI sees it."""
    p_any, t_any = bool(p.any()), bool(t.any())
    if not p_any and not t_any:
        return {"dice": 1.0, "jaccard": 1.0, "hd95": 0.0, "asd": 0.0}
    if p_any != t_any:
        return {"dice": 0.0, "jaccard": 0.0, "hd95": diagonal, "asd": diagonal}
    # MONAI wants one-hot (B, C, *spatial); a single binary channel is one "class" here.
    yp = torch.from_numpy(p)[None, None].float()
    yt = torch.from_numpy(t)[None, None].float()
    sp = list(spacing) if spacing is not None else None
    with warnings.catch_warnings():
        # MONAI 1.5+ passes its own deprecated ``always_return_as_numpy`` argument internally.
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*")
        return {
            "dice": _scalar(compute_dice(yp, yt, include_background=True)),
            "jaccard": _scalar(compute_iou(yp, yt, include_background=True)),
            "hd95": _scalar(
                compute_hausdorff_distance(
                    yp, yt, include_background=True, percentile=95, spacing=sp
                )
            ),
            "asd": _scalar(
                compute_average_surface_distance(
                    yp, yt, include_background=True, symmetric=True, spacing=sp
                )
            ),
        }


def _scalar(x: torch.Tensor) -> float:
    return float(x.reshape(-1)[0].item())


def _as_label_map(x: np.ndarray | torch.Tensor, what: str) -> np.ndarray:
    """CPU integer numpy array; float maps are accepted only when every value is whole."""
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)):
            raise ValueError(f"{what} must be an integer label map, got dtype {arr.dtype}")
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{what} has non-integer values; pass a label map, not scores")
    return arr.astype(np.int64)


def _check_range(x: np.ndarray, num_classes: int, what: str) -> None:
    lo, hi = int(x.min()), int(x.max())
    if lo < 0 or hi > num_classes - 1:
        raise ValueError(
            f"{what} values must lie in 0..{num_classes - 1} (num_classes={num_classes}), "
            f"found {lo}..{hi}"
        )


def _spacing_tuple(spacing: float | Sequence[float] | None, ndim: int) -> tuple[float, ...] | None:
    """One positive float per axis; MONAI requires the elements to share one type."""
    if spacing is None:
        return None
    values = (
        (float(spacing),) * ndim
        if isinstance(spacing, numbers.Real)
        else tuple(float(s) for s in spacing)
    )
    if len(values) != ndim:
        raise ValueError(f"spacing {tuple(values)} has {len(values)} values for a {ndim}D image")
    if not all(math.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"spacing must be positive and finite, got {values}")
    return values


def _class_names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    """Name per label value: all ``num_classes`` names, or foreground-only names."""
    if class_names is None:
        return [str(c) for c in range(num_classes)]
    names = [str(n) for n in class_names]
    if len(names) == num_classes - 1:
        names = ["0", *names]
    if len(names) != num_classes:
        raise ValueError(
            f"class_names has {len(class_names)} names; give {num_classes} (background included) "
            f"or {num_classes - 1} (foreground only)"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"class_names must be unique, got {names}")
    return names
