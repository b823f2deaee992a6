"""Landmark report sections: the error of each landmark, and the worst cases' points drawn.

Each reads the evaluate JSON of a landmarks run (``per_class``: one row per landmark with its
``mre``; ``unit``; ``inter_annotator``; ``overlays``: the worst cases' image path, reference
and predicted points) and writes one PNG atomically, returning its path, or ``None`` when the
evaluation has nothing to draw (no landmark rows; no overlay whose image can still be read).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from medssl.errors import MedsslError  # noqa: E402
from medssl.report.plots import DPI  # noqa: E402
from medssl.tasks.landmarks.overlay import display_array, draw_points, save_png  # noqa: E402

__all__ = ["plot_landmark_errors", "plot_landmark_overlay"]

#: worst cases drawn side by side
OVERLAY_PANELS = 4


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else float("nan")


def plot_landmark_errors(evaluation: dict, out_png: Path) -> Path | None:
    """One bar per landmark: its mean radial error, the standard deviation as an error bar when
    given, and the annotators' own disagreement on it as a tick where the evaluation has it."""
    rows = evaluation.get("per_class")
    if not isinstance(rows, Mapping) or not rows:
        return None
    names = [str(n) for n in rows]
    mre = np.array(
        [_number(r.get("mre")) if isinstance(r, Mapping) else np.nan for r in rows.values()]
    )
    if not np.isfinite(mre).any():
        return None
    sd = np.array(
        [_number(r.get("sd")) if isinstance(r, Mapping) else np.nan for r in rows.values()]
    )
    unit = str(evaluation.get("unit") or "")
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(min(16.0, max(5.0, 0.32 * len(names) + 2.0)), 3.8), dpi=DPI)
    ax.bar(x, mre, color="#377eb8", yerr=np.where(np.isfinite(sd), sd, 0.0), capsize=2,
           label="model")  # fmt: skip
    inter = evaluation.get("inter_annotator")
    human = inter.get("per_landmark") if isinstance(inter, Mapping) else None
    if isinstance(human, Mapping):
        ax.scatter(x, [_number(human.get(n)) for n in names], marker="_", s=120, color="black",
                   zorder=3, label="between annotators")  # fmt: skip
        ax.legend(fontsize=8)
    # contour sets (jsrt: 166 points) label every k-th landmark, or the ticks would overlap
    shown = x[:: max(1, len(names) // 30)] if len(names) > 60 else x
    crowded = len(names) > 8 or max(len(n) for n in names) > 6
    ax.set_xticks(shown)
    ax.set_xticklabels([names[i] for i in shown], rotation=90 if crowded else 0, fontsize=7)
    ax.set_ylabel(f"radial error ({unit})" if unit else "radial error")
    ax.set_title("error per landmark (mean, SD)", fontsize=10)
    return save_png(fig, out_png)


def plot_landmark_overlay(evaluation: dict, out_png: Path) -> Path | None:
    """The worst cases side by side: annotated (green) and predicted (red) points on the image,
    with the case's MRE in the title. Cases whose image cannot be read are left out."""
    overlays = evaluation.get("overlays")
    if not isinstance(overlays, list):
        return None
    unit = str(evaluation.get("unit") or "")
    panels = []
    for entry in overlays[:OVERLAY_PANELS]:
        if not isinstance(entry, Mapping):
            continue
        try:
            image = display_array(str(entry.get("image")))
        except (MedsslError, OSError, ValueError):
            continue  # the data moved since evaluate: draw the others
        panels.append((entry, image))
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 4.2), dpi=DPI)
    for ax, (entry, image) in zip(np.atleast_1d(axes), panels, strict=True):
        title = f"{entry.get('case')}: MRE {_number(entry.get('mre')):.2f} {unit}"
        draw_points(
            ax, image, _points(entry.get("pred")), _points(entry.get("target")), None, title
        )
    np.atleast_1d(axes)[0].legend(loc="lower left", fontsize=7)
    return save_png(fig, out_png)


def _points(values: object) -> np.ndarray:
    rows = values if isinstance(values, list) else []
    return np.array(
        [p if isinstance(p, list) and len(p) == 2 else [np.nan, np.nan] for p in rows],
        dtype=np.float64,
    ).reshape(-1, 2)


def plot_rule_confusion(evaluation: dict, out_png: Path) -> Path | None:
    """The class a rule judges from the predicted points (the cephalograms' skeletal class)
    against the class of the reference points; ``None`` when the run has no class rule."""
    from medssl.report.classification import plot_confusion

    block = evaluation.get("skeletal_class") or {}
    scores = block.get("from_landmarks") or {}
    if not scores.get("confusion_matrix"):
        return None
    matrix = {"confusion_matrix": scores["confusion_matrix"], "class_names": block["class_names"]}
    return plot_confusion(matrix, out_png)
