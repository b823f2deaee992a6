"""Bench and evaluation tables: the best row of each metric column follows the metric's
direction (highest Dice or AUC, lowest HD95 or MRE)."""

from __future__ import annotations

import math

import pytest
from rich.console import Console

from medssl.metrics.direction import UnknownMetricError
from medssl.report.tables import best_row, rows_table

ROWS = [
    {"method": "supervised", "dice": 0.80, "hd95": 9.5, "auc": 0.70, "mre": 2.1, "train_s": 5.0},
    {"method": "mean_teacher", "dice": 0.86, "hd95": 12.0, "auc": 0.91, "mre": 1.4, "train_s": 9.0},
    {"method": "bcp", "dice": 0.84, "hd95": 7.25, "auc": 0.65, "mre": 3.0, "train_s": 7.0},
]


@pytest.mark.parametrize(
    ("metric", "best"), [("dice", 1), ("auc", 1), ("hd95", 2), ("mre", 1), ("sdr_2mm", None)]
)
def test_best_row_follows_the_direction(metric: str, best: int | None):
    assert best_row(ROWS, metric) == best  # no row has sdr_2mm: no best


def test_best_row_skips_missing_and_non_finite_values():
    rows = [{"hd95": math.inf}, {"hd95": math.nan}, {"hd95": "n/a"}, {"hd95": 3.0}, {}]
    assert best_row(rows, "hd95") == 3
    assert best_row([{"dice": 0.5}, {"dice": 0.5}], "dice") == 0  # the first of equals


def test_best_row_of_an_unknown_metric_is_a_clear_error():
    with pytest.raises(UnknownMetricError, match="train_s"):
        best_row(ROWS, "train_s")


def _render(rows: list[dict], columns: list[str]) -> list[str]:
    console = Console(width=200, record=True, color_system=None)
    console.print(rows_table("t", rows, columns))
    return console.export_text().splitlines()


def _line(lines: list[str], method: str) -> str:
    return next(line for line in lines if method in line)


def test_rows_table_marks_the_best_cell_of_each_metric_column():
    lines = _render(ROWS, ["method", "dice", "hd95", "mre", "train_s"])
    assert "0.8600*" in _line(lines, "mean_teacher")  # dice: the highest
    assert "7.2500*" in _line(lines, "bcp")  # hd95: the lowest
    assert "1.4000*" in _line(lines, "mean_teacher")  # mre: the lowest
    assert not any("*" in _line(lines, m) for m in ("supervised",))
    assert all("5.0000*" not in line for line in lines)  # train_s has no direction: no mark
    assert any("best of the column" in line for line in lines)


def test_a_single_row_has_nothing_to_compare():
    lines = _render(ROWS[:1], ["method", "dice"])
    assert not any("*" in line for line in lines)


def test_a_metric_without_a_per_class_value_shows_a_dash():
    from rich.console import Console

    from medssl.report.tables import evaluation_table

    result = {
        "mean": {"accuracy": 0.9, "auc": 0.95},
        "per_class": {"normal": {"auc": 0.95}, "pneumonia": {"auc": 0.95}},
        "cases": 4,
    }
    console = Console(width=120, record=True)
    console.print(evaluation_table(result))
    text = console.export_text()
    assert "None" not in text and "-" in text.splitlines()[4]
