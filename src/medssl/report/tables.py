"""Terminal tables (rich) for evaluation results and benchmark rows."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _fmt(value: Any) -> str:
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


def rows_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Table:
    table = Table(title=title)
    for c in columns:
        table.add_column(c, justify="left" if c in ("method", "benchmark") else "right")
    for row in rows:
        table.add_row(*[_fmt(row.get(c, "")) for c in columns])
    return table
