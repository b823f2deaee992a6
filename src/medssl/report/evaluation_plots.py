"""The evaluation plots a task can ask for by name (``Task.report_sections``): what draws each
and its caption; the report looks them up here, so a new task adds its plots without touching
the page builder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from medssl.report.classification import plot_confusion, plot_embedding, plot_radiomics, plot_roc
from medssl.report.landmarks import (
    plot_landmark_errors,
    plot_landmark_overlay,
    plot_rule_confusion,
)

#: name -> (draw(evaluation, png) -> png or None, caption)
EVALUATION_PLOTS: dict[str, tuple[Callable[[dict, Path], Path | None], str]] = {
    "roc": (plot_roc, "ROC curves (one-vs-rest), AUC in the legend"),
    "confusion": (plot_confusion, "confusion matrix (rows: true class)"),
    "embedding": (
        plot_embedding,
        "the learned embedding the classifier reads, projected on its first two principal "
        "components, coloured by true class",
    ),
    "radiomics": (plot_radiomics, "the radiomics features that weigh most in the model"),
    "landmark_errors": (
        plot_landmark_errors,
        "radial error per landmark (bar: mean, whisker: SD; tick: between annotators)",
    ),
    "landmark_overlay": (
        plot_landmark_overlay,
        "the worst cases: annotated (green circles) and predicted (red crosses) landmarks",
    ),
    "rule_confusion": (
        plot_rule_confusion,
        "skeletal class judged by the ANB rule from the predicted landmarks (columns) against "
        "the class of the reference landmarks (rows)",
    ),
}
