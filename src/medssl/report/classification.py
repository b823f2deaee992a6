"""Classification report sections: one-vs-rest ROC curves, the confusion matrix, the 2D
projection of the learned embedding and the radiomics features that weigh most.

Each reads the evaluate JSON of a classification run (``per_case`` with ``label`` and
``prob_<class>`` per case, ``confusion_matrix``, ``class_names``, ``embedding_2d``,
``radiomics_weights``) and writes one PNG atomically, returning its path, or ``None`` when the
evaluation has nothing to plot (an older evaluation, a method without radiomics).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from sklearn.metrics import roc_auc_score, roc_curve  # noqa: E402

from medssl.atomic import write_atomic  # noqa: E402
from medssl.report.plots import DPI, verify_png  # noqa: E402

__all__ = ["plot_confusion", "plot_embedding", "plot_radiomics", "plot_roc"]

#: one marker per class besides its colour, so classes stay apart in grey print
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


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


def _numbers(values: object) -> np.ndarray | None:
    """A list of finite numbers as a float array, else ``None``."""
    if not isinstance(values, list) or not values:
        return None
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in values):
        return None
    array = np.asarray(values, dtype=np.float64)
    return array if np.isfinite(array).all() else None


def plot_embedding(evaluation: dict, out_png: Path) -> Path | None:
    """The cases on the first two principal components of the embedding the classifier reads
    (``embedding_2d``), one colour and marker per true class, the share of the variance each
    axis explains in its label. ``None`` when the evaluation has no projection."""
    projection = evaluation.get("embedding_2d")
    if not isinstance(projection, Mapping):
        return None
    x, y = _numbers(projection.get("x")), _numbers(projection.get("y"))
    labels = projection.get("label")
    if (
        x is None
        or y is None
        or not isinstance(labels, list)
        or not len(x) == len(y) == len(labels)
    ):
        return None
    labels = [str(label) for label in labels]
    order = _class_names(evaluation)
    order += sorted({label for label in labels} - set(order))
    n = len(labels)
    size, alpha = (36, 0.85) if n <= 200 else (12, 0.6) if n <= 2000 else (4, 0.4)
    fig, ax = plt.subplots(figsize=(6.4, 4.5), dpi=DPI)
    colours = plt.get_cmap("tab10").colors
    for k, name in enumerate(order):
        mask = np.array([label == name for label in labels])
        if not mask.any():
            continue
        ax.scatter(
            x[mask],
            y[mask],
            s=size,
            alpha=alpha,
            marker=MARKERS[k % len(MARKERS)],
            color=colours[k % len(colours)],
            edgecolors="white",
            linewidths=0.4,
            label=f"{name} ({int(mask.sum())})",
        )
    ratio = projection.get("explained_variance_ratio")
    ratio = _numbers(ratio) if isinstance(ratio, list) and len(ratio) == 2 else None
    axes = [
        f"PC{k + 1}" + (f" ({ratio[k]:.0%} of variance)" if ratio is not None else "")
        for k in range(2)
    ]
    ax.set(xlabel=axes[0], ylabel=axes[1])
    source = str(projection.get("source") or "embedding")
    dim = projection.get("dim")
    what = f"{source} ({dim}-D)" if isinstance(dim, int) and not isinstance(dim, bool) else source
    ax.set_title(f"PCA of the {what}, {n} cases", fontsize=10)
    ax.axhline(0, color="grey", lw=0.5, zorder=0)
    ax.axvline(0, color="grey", lw=0.5, zorder=0)
    ax.legend(  # outside the axes: no point hidden under it
        title="true class", fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1)
    )
    return _save(fig, Path(out_png))


def _feature_class(name: str) -> str:
    """A pyradiomics feature's class (``original_glcm_Contrast``: ``glcm``), else ``other``."""
    parts = name.split("_", 2)
    return parts[1] if len(parts) == 3 else "other"


def plot_radiomics(evaluation: dict, out_png: Path) -> Path | None:
    """Horizontal bars of the radiomics features that weigh most in the model
    (``radiomics_weights``: ``[name, weight]`` pairs), heaviest on top, coloured by feature
    class, each named in full. ``None`` when the evaluation has none."""
    rows = evaluation.get("radiomics_weights")
    if not isinstance(rows, list):
        return None
    pairs = [
        (str(row[0]), float(row[1]))
        for row in rows
        if isinstance(row, list | tuple)
        and len(row) == 2
        and isinstance(row[1], int | float)
        and not isinstance(row[1], bool)
        and np.isfinite(row[1])
    ]
    if not pairs:
        return None
    names = [name for name, _ in pairs]
    weights = np.array([weight for _, weight in pairs])
    classes = list(dict.fromkeys(_feature_class(name) for name in names))
    colours = plt.get_cmap("tab10").colors
    colour_of = {c: colours[k % len(colours)] for k, c in enumerate(classes)}
    longest = max(len(name) for name in names)
    # the names are the y tick labels: room for the longest at 8 pt, the bars beside them
    fig, ax = plt.subplots(figsize=(5.2 + 0.062 * longest, 1.1 + 0.26 * len(names)), dpi=DPI)
    rows_at = np.arange(len(names))
    ax.barh(rows_at, weights, color=[colour_of[_feature_class(n)] for n in names], height=0.7)
    ax.set_yticks(rows_at, names, fontsize=8)
    ax.invert_yaxis()  # heaviest on top
    top = float(weights.max()) if weights.max() > 0 else 1.0
    ax.set_xlim(0, top * 1.18)  # room for the values at the bars' ends
    for row, weight in zip(rows_at, weights, strict=True):
        ax.text(weight + top * 0.01, row, f"{weight:.3g}", va="center", fontsize=7)
    ax.set_xlabel("weight (norm of the feature's first-layer weights)")
    ax.set_title(f"Top {len(names)} radiomics features by weight", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    if len(classes) > 1:
        handles = [Patch(color=colour_of[c], label=c) for c in classes]
        ax.legend(  # outside the axes: the bars may reach any height
            handles=handles,
            title="feature class",
            fontsize=8,
            title_fontsize=8,
            loc="upper left",
            bbox_to_anchor=(1.01, 1),
        )
    return _save(fig, Path(out_png))
