"""Classification report sections: one-vs-rest ROC curves and the confusion matrix.

Both read the evaluate JSON of a classification run (``per_case`` with ``label`` and
``prob_<class>`` per case, ``confusion_matrix``, ``class_names``) and write one PNG atomically,
returning its path, or ``None`` when the evaluation has nothing to plot.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score, roc_curve  # noqa: E402

from medssl.atomic import write_atomic  # noqa: E402
from medssl.report.plots import DPI, verify_png  # noqa: E402

__all__ = ["plot_confusion", "plot_roc"]


def _save(fig: plt.Figure, out_png: Path) -> Path:
    try:
        fig.tight_layout()
        write_atomic(out_png, lambda tmp: fig.savefig(tmp, format="png"), verify_png)
    finally:
        plt.close(fig)
    return Path(out_png)


def _class_names(evaluation: Mapping) -> list[str]:
    names = evaluation.get("class_names")
    if names:
        return [str(n) for n in names]
    per_class = evaluation.get("per_class")
    return [str(n) for n in per_class] if isinstance(per_class, Mapping) else []


def _labels_and_probs(evaluation: Mapping, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(N,) class indices and (N, K) probabilities of the cases that have them all."""
    index = {name: k for k, name in enumerate(names)}
    labels, probs = [], []
    for case in (evaluation.get("per_case") or {}).values():
        if not isinstance(case, Mapping) or str(case.get("label")) not in index:
            continue
        row = [case.get(f"prob_{name}") for name in names]
        if any(not isinstance(p, int | float) for p in row):
            continue
        labels.append(index[str(case["label"])])
        probs.append(row)
    return np.asarray(labels, dtype=np.int64), np.asarray(probs, dtype=np.float64)


def plot_roc(evaluation: dict, out_png: Path) -> Path | None:
    """One-vs-rest ROC curve per class (a binary task: the positive class only), AUC in the
    legend. ``None`` when no class has both positive and negative cases."""
    names = _class_names(evaluation)
    y, prob = _labels_and_probs(evaluation, names)
    if len(names) < 2 or y.size == 0:
        return None
    classes = [1] if len(names) == 2 else list(range(len(names)))
    curves = []
    for k in classes:
        positive = y == k
        if positive.all() or not positive.any():
            continue  # one-vs-rest undefined without both kinds (metrics' nan policy)
        fpr, tpr, _ = roc_curve(positive, prob[:, k])
        curves.append((names[k], fpr, tpr, roc_auc_score(positive, prob[:, k])))
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(4.8, 4.5), dpi=DPI)
    for name, fpr, tpr, auc in curves:
        ax.plot(fpr, tpr, lw=1.6, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate")
    ax.set_title(f"ROC, one vs rest ({y.size} cases)")
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, Path(out_png))


def plot_confusion(evaluation: dict, out_png: Path) -> Path | None:
    """The confusion matrix with counts (rows: true class, columns: predicted), shaded by the
    share of each true class. ``None`` when the evaluation has no matrix."""
    matrix = np.asarray(evaluation.get("confusion_matrix") or [], dtype=np.int64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        return None
    names = _class_names(evaluation)
    if len(names) != matrix.shape[0]:
        names = [str(k) for k in range(matrix.shape[0])]
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    side = 2.2 + 0.6 * len(names)
    fig, ax = plt.subplots(figsize=(side + 0.8, side), dpi=DPI)
    shown = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for i, j in np.ndindex(matrix.shape):
        colour = "white" if share[i, j] > 0.5 else "black"
        ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=colour, fontsize=9)
    ticks = range(len(names))
    ax.set_xticks(ticks, names, rotation=45 if len(names) > 4 else 0)
    ax.set_yticks(ticks, names)
    ax.set(xlabel="predicted", ylabel="true", title=f"Confusion matrix ({matrix.sum()} cases)")
    fig.colorbar(shown, ax=ax, fraction=0.046, label="share of the true class")
    return _save(fig, Path(out_png))
