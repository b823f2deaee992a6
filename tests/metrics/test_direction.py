"""Metric direction: every metric medssl reports says whether higher is better; rankings follow."""

from __future__ import annotations

import math

import pytest

from medssl.metrics import sdr_key
from medssl.metrics.direction import (
    HIGHER_IS_BETTER,
    UnknownMetricError,
    best_first,
    has_direction,
    higher_is_better,
    worst_first,
)

HIGHER = ["dice", "jaccard", "accuracy", "auc", "f1_macro", "balanced_accuracy", "psnr", "ssim"]
HIGHER += ["content_ssim", "sdr_2mm", "sdr_2.5mm", "sdr_4mm"]
LOWER = ["hd95", "asd", "mre", "mae", "hist_distance", "flicker"]


@pytest.mark.parametrize("name", HIGHER)
def test_scores_are_better_high(name: str):
    assert higher_is_better(name) is True


@pytest.mark.parametrize("name", LOWER)
def test_errors_and_distances_are_better_low(name: str):
    assert higher_is_better(name) is False


def test_names_as_written_by_metrics_and_logs():
    assert all(higher_is_better(sdr_key(t)) for t in (2.0, 2.5, 3.0, 4.0))
    assert higher_is_better("val/dice") and not higher_is_better("test/MRE")
    assert higher_is_better("sdr_10px")


@pytest.mark.parametrize("name", ["dice_loss", "sdr_mm", "sdr_2.5cm", "hausdorff", "loss", ""])
def test_an_unknown_metric_is_a_clear_error(name: str):
    assert not has_direction(name)
    with pytest.raises(UnknownMetricError, match="HIGHER_IS_BETTER") as err:
        higher_is_better(name)
    assert repr(name) in str(err.value) and "higher or lower" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_the_table_is_plain_booleans():
    assert all(isinstance(v, bool) for v in HIGHER_IS_BETTER.values())


def test_worst_and_best_first_follow_the_direction():
    dice = {"a": 0.9, "b": 0.4, "c": 0.7}
    assert worst_first(dice, "dice") == ["b", "c", "a"]
    assert best_first(dice, "dice") == ["a", "c", "b"]
    mre = {"a": 1.5, "b": 4.0, "c": 2.0}  # radial error in mm: high is bad
    assert worst_first(mre, "mre") == ["b", "c", "a"]
    assert best_first(mre, "mre") == ["a", "c", "b"]
    auc = {"x": 0.55, "y": 0.95}
    assert worst_first(auc, "auc") == ["x", "y"]


def test_ties_keep_their_order_and_missing_values_come_last():
    values = {"a": 0.5, "b": math.nan, "c": 0.5, "d": None, "e": 0.2}
    assert worst_first(values, "dice") == ["e", "a", "c", "b", "d"]
    assert best_first(values, "dice") == ["a", "c", "e", "b", "d"]
    assert best_first(values, "hd95") == ["e", "a", "c", "b", "d"]
    assert best_first({}, "dice") == []


def test_ranking_an_unknown_metric_is_an_error():
    with pytest.raises(UnknownMetricError):
        worst_first({"a": 1.0}, "loss")
