"""Landmark metrics against hand-computed displacements."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medssl.metrics import (
    SDR_THRESHOLDS_MM,
    landmark_metrics,
    landmark_unit,
    per_landmark_metrics,
    radial_errors,
)


def test_three_four_five_triangle():
    target = np.array([[[10.0, 20.0]]])
    pred = target + np.array([3.0, 4.0])
    assert radial_errors(pred, target)[0, 0] == pytest.approx(5.0)
    assert radial_errors(pred, target, spacing=0.1)[0, 0] == pytest.approx(0.5)
    assert radial_errors(pred, target, spacing=(0.1, 0.1))[0, 0] == pytest.approx(0.5)
    # anisotropic: 3 px * 2 mm along axis 0, 4 px * 1 mm along axis 1
    assert radial_errors(pred, target, spacing=(2.0, 1.0))[0, 0] == pytest.approx(math.sqrt(52))
    m = landmark_metrics(pred, target, spacing=0.1)
    assert m["mre"] == pytest.approx(0.5)
    assert m["sdr_2mm"] == 1.0


def test_single_case_input_and_3d():
    target = np.zeros((2, 3))
    pred = np.array([[1.0, 2.0, 2.0], [0.0, 0.0, 0.0]])  # errors 3 and 0
    err = radial_errors(torch.tensor(pred), torch.tensor(target))
    assert err.shape == (1, 2)
    np.testing.assert_allclose(err, [[3.0, 0.0]])
    assert landmark_metrics(pred, target)["mre"] == pytest.approx(1.5)


def test_sdr_threshold_boundary_counts_as_success():
    errors = np.array([2.0, 2.5, 3.0, 4.0, 5.0])
    target = np.zeros((1, 5, 2))
    pred = np.stack([errors, np.zeros(5)], axis=1)[None]
    m = landmark_metrics(pred, target, spacing=1.0)
    assert m["sdr_2mm"] == pytest.approx(1 / 5)
    assert m["sdr_2.5mm"] == pytest.approx(2 / 5)
    assert m["sdr_3mm"] == pytest.approx(3 / 5)
    assert m["sdr_4mm"] == pytest.approx(4 / 5)
    assert m["mre"] == pytest.approx(errors.mean())
    assert m["sd"] == pytest.approx(errors.std())
    assert m["n"] == 5.0 and m["missed"] == 0.0
    assert SDR_THRESHOLDS_MM == (2.0, 2.5, 3.0, 4.0)


def test_nan_targets_are_excluded():
    target = np.zeros((2, 2, 2))
    target[1, 0] = np.nan  # landmark 0 of case 1 not annotated
    pred = np.zeros((2, 2, 2))
    pred[:, :, 0] = [[1.0, 3.0], [100.0, 5.0]]  # the 100 sits on the missing target
    err = radial_errors(pred, target)
    assert math.isnan(err[1, 0])
    m = landmark_metrics(pred, target)
    assert m["n"] == 3.0
    assert m["mre"] == pytest.approx(3.0)
    assert m["sdr_2mm"] == pytest.approx(1 / 3)
    assert m["sdr_4mm"] == pytest.approx(2 / 3)


def test_missed_prediction_fails_sdr_and_is_counted():
    target = np.zeros((1, 3, 2))
    pred = np.zeros((1, 3, 2))
    pred[0, 1] = [1.0, 0.0]
    pred[0, 2] = [np.nan, np.nan]
    err = radial_errors(pred, target)
    assert np.isinf(err[0, 2])
    m = landmark_metrics(pred, target)
    assert m["missed"] == 1.0
    assert m["n"] == 3.0
    assert m["mre"] == pytest.approx(0.5)  # over the two finite errors
    assert m["sdr_4mm"] == pytest.approx(2 / 3)


def test_per_landmark_metrics_and_per_case_spacing():
    target = np.zeros((2, 2, 2))
    pred = np.zeros((2, 2, 2))
    pred[:, 0, 0] = 10.0  # landmark "sella": 10 px in both cases
    pred[:, 1, 1] = 1.0  # landmark "nasion": 1 px
    spacing = np.array([[0.1, 0.1], [0.2, 0.2]])  # per-case pixel size
    per = per_landmark_metrics(pred, target, names=["sella", "nasion"], spacing=spacing)
    assert list(per) == ["sella", "nasion"]
    assert per["sella"]["mre"] == pytest.approx((1.0 + 2.0) / 2)
    assert per["sella"]["sdr_2mm"] == 1.0
    assert per["nasion"]["mre"] == pytest.approx(0.15)
    default = per_landmark_metrics(pred, target)
    assert list(default) == ["1", "2"]
    assert default["1"]["mre"] == pytest.approx(10.0)
    assert default["1"]["sdr_4mm"] == 0.0  # thresholds apply in pixels without spacing


def test_all_targets_missing_gives_nan():
    target = np.full((1, 2, 2), np.nan)
    m = landmark_metrics(np.zeros((1, 2, 2)), target)
    assert math.isnan(m["mre"]) and math.isnan(m["sdr_2mm"])
    assert m["n"] == 0.0


def test_errors_and_units():
    with pytest.raises(ValueError, match="shape"):
        radial_errors(np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="spacing"):
        radial_errors(np.zeros((3, 2)), np.zeros((3, 2)), spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="names"):
        per_landmark_metrics(np.zeros((3, 2)), np.zeros((3, 2)), names=["a"])
    assert landmark_unit(None) == "pixel"
    assert landmark_unit(0.1) == "mm"
