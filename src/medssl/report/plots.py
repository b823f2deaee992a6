"""Figures for the run report: learning curves, per-case and comparison plots (slice overlays:
:mod:`medssl.report.overlays`).

Every function writes one or more PNGs and returns their paths, so the HTML side only links
files and never touches matplotlib. The Agg backend is forced before pyplot is imported: the
report is built on headless training machines where no display exists.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from medssl.atomic import write_atomic
from medssl.errors import file_error  # noqa: E402
from medssl.metrics.direction import has_direction, worst_first  # noqa: E402

#: Metrics bounded in [0, 1]; their axes are pinned so plots of different runs compare by eye.
UNIT_INTERVAL_METRICS = frozenset(
    {"dice", "iou", "jaccard", "precision", "recall", "sensitivity", "specificity", "accuracy"}
)
#: Columns that index rows rather than measure anything.
INDEX_COLUMNS = ("step", "epoch")
DPI = 110


# --------------------------------------------------------------------------- learning curves


def read_metric_series(metrics_csv: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read a Lightning CSVLogger file into ``{column: (x, y)}`` with one point per x.

    Lightning logs train and validation rows separately, so most cells are empty; those and
    non-finite values are skipped per column. A step logged twice (resumed runs, a val row at
    the same step as a train row) keeps its last value so lines never zig-zag back in time.
    The x axis is ``step`` when present, else ``epoch``, else the row number.
    """
    try:
        with open(metrics_csv, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise file_error(
            metrics_csv, f"cannot read the training log ({err})", "re-run medssl train"
        ) from err
    if not rows:
        return {}
    columns = [c for c in rows[0] if c is not None]
    x_column = next((c for c in INDEX_COLUMNS if c in columns), None)
    points: dict[str, dict[float, float]] = {}
    for row_number, row in enumerate(rows):
        x = _to_float(row.get(x_column)) if x_column else float(row_number)
        if x is None:
            continue
        for column in columns:
            if column in INDEX_COLUMNS:
                continue
            y = _to_float(row.get(column))
            if y is not None:
                points.setdefault(column, {})[x] = y
    return {
        column: (np.array(sorted(xy)), np.array([xy[k] for k in sorted(xy)]))
        for column, xy in points.items()
    }


def group_series(names: Iterable[str]) -> dict[str, list[str]]:
    """Split logged columns into one figure each: train losses, train metrics, val, lr, other.

    Losses and bounded metrics live on different scales, so they get separate axes; learning
    rates are their own figure because they are hyper-parameters, not results.
    """
    groups: dict[str, list[str]] = {}
    for name in sorted(names):
        lower = name.lower()
        if lower.startswith("lr"):
            key = "lr"
        elif lower.startswith("train"):
            key = "train_loss" if "loss" in lower else "train_metrics"
        elif lower.startswith("val"):
            key = "val_loss" if "loss" in lower else "val_metrics"
        else:
            key = "other"
        groups.setdefault(key, []).append(name)
    return groups


GROUP_TITLES = {
    "train_loss": "Training losses",
    "train_metrics": "Training metrics",
    "val_loss": "Validation losses",
    "val_metrics": "Validation metrics",
    "lr": "Learning rate",
    "other": "Other logged values",
}


def plot_learning_curves(metrics_csv: Path, out_dir: Path) -> list[Path]:
    """Plot every metric group of ``metrics_csv`` into ``out_dir/curves_<group>.png``.

    Returns the written paths in a stable reading order (losses, metrics, lr); an empty list
    means the log holds nothing plottable, which the report states instead of showing blanks.
    """
    series = read_metric_series(Path(metrics_csv))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    groups = group_series(series)
    for key in GROUP_TITLES:
        if key in groups:
            out_png = out_dir / f"curves_{key}.png"
            _plot_group(GROUP_TITLES[key], {n: series[n] for n in groups[key]}, out_png)
            written.append(out_png)
    return written


def _plot_group(
    title: str, series: Mapping[str, tuple[np.ndarray, np.ndarray]], out_png: Path
) -> None:
    """Draw several series on one axis; a single point is drawn as a marker so it is visible."""
    fig, ax = plt.subplots(figsize=(7.0, 4.0), dpi=DPI)
    for name, (x, y) in series.items():
        ax.plot(x, y, label=name, marker="o" if len(x) < 30 else None, markersize=3, linewidth=1.4)
    values = np.concatenate([y for _, y in series.values()])
    if _spans_decades(values, 2.0):
        ax.set_yscale("log")
    if all(is_unit_metric(n) for n in series):
        ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    _save(fig, out_png)


# --------------------------------------------------------------------------- evaluation


def per_case_values(evaluation: Mapping, metric: str = "dice") -> tuple[str, dict[str, float]]:
    """Pick ``metric`` from ``per_case`` or else the first metric found, preferring one whose
    direction is known (so that it can be ranked); return finite values only."""
    per_case = evaluation.get("per_case") or {}
    available = [m for case in per_case.values() if isinstance(case, Mapping) for m in case]
    if metric not in available:
        if not available:
            return metric, {}
        metric = next((m for m in available if has_direction(m)), available[0])
    values = {}
    for case, scores in per_case.items():
        value = _to_float(scores.get(metric)) if isinstance(scores, Mapping) else None
        if value is not None:
            values[str(case)] = value
    return metric, values


def plot_per_case(evaluation: dict, out_png: Path, metric: str = "dice") -> Path | None:
    """Box plot with every case as a jittered dot; the three worst cases are labelled (by the
    metric's direction; none when it is not known).

    A mean hides outliers; a researcher wants to see which cases fail. Uses the first
    per-case metric when ``metric`` is absent; returns ``None`` when there is nothing to plot.
    """
    metric, values = per_case_values(evaluation, metric)
    if not values:
        return None
    out_png = Path(out_png)
    cases, y = list(values), np.array(list(values.values()))
    x = 1.0 + np.random.default_rng(0).uniform(-0.08, 0.08, size=len(y))
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=DPI)
    ax.boxplot(y, widths=0.4, showfliers=False)
    ax.scatter(x, y, s=16, alpha=0.7, color="tab:blue", zorder=3)
    worst = worst_first(dict(enumerate(y.tolist())), metric) if has_direction(metric) else []
    for i in worst[:3]:
        ax.annotate(cases[i], (x[i], y[i]), xytext=(6, 0), textcoords="offset points", fontsize=7)
    if is_unit_metric(metric):
        ax.set_ylim(-0.02, 1.02)
    ax.set_xticks([1], [f"{metric} (n={len(y)})"])
    ax.set_title(f"Per-case {metric}")
    ax.grid(True, axis="y", alpha=0.3)
    _save(fig, out_png)
    return out_png


def plot_comparison(rows: Sequence[Mapping], metrics: Sequence[str], out_png: Path) -> Path | None:
    """Grouped bars, one panel per metric: label budgets on x, one bar per method.

    Metrics have different scales (Dice vs HD95 in mm), so each gets its own axis.
    Returns ``None`` when no row holds a finite value for any metric.
    """
    metrics = [m for m in metrics if any(_to_float(r.get(m)) is not None for r in rows)]
    if not metrics:
        return None
    methods = list(dict.fromkeys(str(r.get("method", "?")) for r in rows))
    budgets = list(dict.fromkeys(str(r.get("labeled", "")) for r in rows))
    width = 0.8 / len(methods)
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(4.2 * len(metrics), 4.0), dpi=DPI, squeeze=False
    )
    for ax, metric in zip(axes[0], metrics, strict=True):
        for j, method in enumerate(methods):
            heights = [_comparison_value(rows, method, b, metric) for b in budgets]
            positions = np.arange(len(budgets)) + (j - (len(methods) - 1) / 2) * width
            bars = ax.bar(positions, np.nan_to_num(heights), width, label=method)
            labels = ["" if math.isnan(h) else f"{h:.3g}" for h in heights]
            ax.bar_label(bars, labels=labels, fontsize=7, padding=2)
        ax.set_xticks(np.arange(len(budgets)), budgets)
        ax.set_xlabel("labeled")
        ax.set_title(metric)
        if is_unit_metric(metric):
            ax.set_ylim(0, 1.05)
        else:
            ax.margins(y=0.12)  # room for the value labels
        ax.grid(True, axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    _save(fig, Path(out_png))
    return Path(out_png)


def _comparison_value(rows: Sequence[Mapping], method: str, budget: str, metric: str) -> float:
    """Value of ``metric`` for (method, budget); NaN (no bar) when that run is not in the table."""
    for row in rows:
        if str(row.get("method", "?")) == method and str(row.get("labeled", "")) == budget:
            value = _to_float(row.get(metric))
            return math.nan if value is None else value
    return math.nan


# --------------------------------------------------------------------------- helpers


def _to_float(value: object) -> float | None:
    """Parse a cell into a finite float; empty, NaN, inf and junk become ``None``."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _spans_decades(values: np.ndarray, decades: float) -> bool:
    """True when all values are positive and max/min exceeds ``10**decades`` (log-y helps)."""
    return bool(values.size) and values.min() > 0 and values.max() / values.min() > 10**decades


def _base_metric(name: str) -> str:
    """``val/dice_class1`` -> ``dice``: the metric family, used to pick axis limits."""
    return name.rsplit("/", 1)[-1].split("_", 1)[0].lower()


def is_unit_metric(name: str) -> bool:
    """Whether ``name`` is a [0, 1] score such as Dice."""
    return _base_metric(name) in UNIT_INTERVAL_METRICS


def _save(fig: plt.Figure, out_png: Path, tight: bool = True) -> None:
    """Write ``fig`` and close it so long report builds do not accumulate open figures.

    ``tight=False`` keeps a layout the caller already set (room for a figure legend).
    """
    try:
        if tight:
            fig.tight_layout()
        write_atomic(out_png, lambda tmp: fig.savefig(tmp, format="png"), verify_png)
    finally:
        plt.close(fig)


def verify_png(path: Path) -> None:
    """A PNG that decodes whole (a write cut short by a full disk does not)."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()


__all__ = [
    "per_case_values",
    "plot_comparison",
    "plot_learning_curves",
    "plot_per_case",
    "read_metric_series",
]
