"""Classification metrics from class probabilities, computed with scikit-learn.

Predictions are ``argmax(y_prob, axis=1)``. Inputs: ``y_true`` (N,) integer labels in
``0..C-1`` and ``y_prob`` (N, C) probabilities whose rows sum to 1 (a binary task may pass
(N, 2), or (N,) as the probability of class 1).

Policies for classes that a small or skewed test set lacks (AUC and some ratios are then
undefined; we report ``nan`` rather than an invented number):

* AUC: binary uses the class-1 probability (``roc_auc_score``); multiclass is the macro
  one-vs-rest AUC (scikit-learn's ``multi_class="ovr", average="macro"``). A class's one-vs-rest
  AUC is ``nan`` when ``y_true`` has no samples of it (or only samples of it); the macro AUC then
  averages the classes where it is defined, and is ``nan`` when none is (binary with one class).
* precision / recall / f1 per class follow scikit-learn with ``zero_division=0`` (a ratio with an
  empty denominator counts as 0), except for a class absent from both ``y_true`` and the
  predictions, where all three are ``nan`` (nothing to measure). ``f1_macro`` averages the
  classes present in ``y_true`` or the predictions, i.e. the ``nanmean`` of the per-class f1.
* ``balanced_accuracy`` is the mean recall over classes present in ``y_true`` (scikit-learn).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

__all__ = ["classification_metrics", "per_class_metrics"]

ArrayLike = np.ndarray | torch.Tensor | Sequence


def classification_metrics(
    y_true: ArrayLike, y_prob: ArrayLike, class_names: Sequence[str] | None = None
) -> dict[str, float]:
    """``accuracy``, ``auc``, ``f1_macro`` and ``balanced_accuracy`` over all samples."""
    y, prob = _validate(y_true, y_prob, class_names)
    pred = prob.argmax(axis=1)
    present = np.unique(np.concatenate([y, pred]))
    with warnings.catch_warnings():
        # "y_pred contains classes not in y_true": expected on small or skewed test sets.
        warnings.filterwarnings("ignore", category=UserWarning)
        balanced = balanced_accuracy_score(y, pred)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "auc": _macro_auc(y, prob),
        "f1_macro": float(f1_score(y, pred, labels=present, average="macro", zero_division=0)),
        "balanced_accuracy": float(balanced),
    }


def per_class_metrics(
    y_true: ArrayLike, y_prob: ArrayLike, class_names: Sequence[str] | None = None
) -> dict[str, dict[str, float]]:
    """Per class: ``precision``, ``recall``, ``f1``, one-vs-rest ``auc`` and ``support`` (count)."""
    y, prob = _validate(y_true, y_prob, class_names)
    n_classes = prob.shape[1]
    names = _names(class_names, n_classes)
    pred = prob.argmax(axis=1)
    labels = list(range(n_classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0
    )
    out: dict[str, dict[str, float]] = {}
    for k in labels:
        seen = bool(np.any(y == k) or np.any(pred == k))
        out[names[k]] = {
            "precision": _nan_unless(seen, precision[k]),
            "recall": _nan_unless(seen, recall[k]),
            "f1": _nan_unless(seen, f1[k]),
            "auc": _ovr_auc(y, prob, k),
            "support": float(support[k]),
        }
    return out


def _nan_unless(seen: bool, value: float) -> float:
    return float(value) if seen else float("nan")


def _ovr_auc(y: np.ndarray, prob: np.ndarray, k: int) -> float:
    """One-vs-rest AUC of class ``k``; ``nan`` when ``y`` lacks positives or negatives for it."""
    positives = y == k
    if positives.all() or not positives.any():
        return float("nan")
    return float(roc_auc_score(positives, prob[:, k]))


def _macro_auc(y: np.ndarray, prob: np.ndarray) -> float:
    n_classes = prob.shape[1]
    if n_classes == 2:
        return _ovr_auc(y, prob, 1)
    per_class = np.array([_ovr_auc(y, prob, k) for k in range(n_classes)])
    if np.all(np.isfinite(per_class)):
        return float(
            roc_auc_score(y, prob, multi_class="ovr", average="macro", labels=range(n_classes))
        )
    defined = per_class[np.isfinite(per_class)]
    return float(defined.mean()) if defined.size else float("nan")


def _validate(
    y_true: ArrayLike, y_prob: ArrayLike, class_names: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray]:
    """(N,) int labels and (N, C) probabilities, or a ValueError saying what is wrong."""
    y = _numpy(y_true)
    prob = _numpy(y_prob).astype(np.float64)
    if prob.ndim == 1:  # binary: probability of class 1
        prob = np.stack([1.0 - prob, prob], axis=1)
    if prob.ndim != 2 or prob.shape[1] < 2:
        raise ValueError(f"y_prob must be (N, C) with C >= 2, got shape {prob.shape}")
    if y.ndim != 1 or y.shape[0] != prob.shape[0]:
        raise ValueError(f"y_true shape {y.shape} does not match y_prob shape {prob.shape}")
    if y.size == 0:
        raise ValueError("no samples: y_true is empty")
    if not np.all(y == np.round(y)) or y.min() < 0 or y.max() >= prob.shape[1]:
        raise ValueError(f"y_true must hold integer labels in 0..{prob.shape[1] - 1}")
    if not np.all(np.isfinite(prob)) or prob.min() < 0 or prob.max() > 1:
        raise ValueError("y_prob must be probabilities in [0, 1]; apply softmax to logits")
    if not np.allclose(prob.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("y_prob rows must sum to 1; apply softmax to logits")
    _names(class_names, prob.shape[1])
    return y.astype(np.int64), prob


def _numpy(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _names(class_names: Sequence[str] | None, n_classes: int) -> list[str]:
    if class_names is None:
        return [str(k) for k in range(n_classes)]
    if len(class_names) != n_classes:
        raise ValueError(f"class_names has {len(class_names)} names for {n_classes} classes")
    return [str(n) for n in class_names]
