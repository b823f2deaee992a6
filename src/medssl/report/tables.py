"""Terminal tables (rich) for evaluation results and benchmark rows."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from medssl.metrics.direction import best_first, has_direction

BEST_MARK = "*"


def _fmt(value: Any) -> str:
    if value is None:  # a metric with no per-class value (accuracy of one class): no "None"
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def evaluation_table(result: dict[str, Any]) -> Table:
    """Per-class and mean metrics of one ``evaluate`` result."""
    units = result.get("units", {})
    metrics = list(result["mean"])
    post = ", largest component" if result.get("postprocess") == "largest_component" else ""
    table = Table(
        title=f"{result.get('method', '')} on {result.get('data', '')} "
        f"({result.get('cases', '?')} cases{post})"
    )
    table.add_column("class")
    for m in metrics:
        table.add_column(f"{m} ({units[m]})" if m in units else m, justify="right")
    for name, scores in result.get("per_class", {}).items():
        table.add_row(name, *[_fmt(scores.get(m)) for m in metrics])
    table.add_row("mean", *[_fmt(result["mean"][m]) for m in metrics], style="bold")
    return table


def best_row(rows: Sequence[Mapping[str, Any]], metric: str) -> int | None:
    """Index of the row with the best value of ``metric`` (highest Dice or AUC, lowest HD95 or
    MRE); the first of equal ones; ``None`` when no row has a finite value."""
    values = {i: _number(row.get(metric)) for i, row in enumerate(rows)}
    ranked = best_first(values, metric)
    return ranked[0] if ranked and values[ranked[0]] is not None else None


def rows_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Table:
    """One row per entry; with two rows or more, the best value of every metric column whose
    direction is known is bold and marked ``*``."""
    best: dict[str, int] = {}
    if len(rows) > 1:
        marked = (c for c in columns if has_direction(c))
        best = {c: i for c in marked if (i := best_row(rows, c)) is not None}
    table = Table(title=title, caption=f"{BEST_MARK} best of the column" if best else None)
    for c in columns:
        table.add_column(c, justify="left" if c in ("method", "benchmark") else "right")
    for i, row in enumerate(rows):
        cells = [_fmt(row.get(c, "")) for c in columns]
        cells = [
            f"[bold]{cell}{BEST_MARK}[/bold]" if best.get(c) == i else cell
            for c, cell in zip(columns, cells, strict=True)
        ]
        table.add_row(*cells)
    return table


def _number(value: Any) -> float | None:
    """A finite float from a table cell; ``None`` for text, booleans, NaN and infinities."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None
