"""Segmentation metrics against hand-computed cases (MONAI does the distances)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medssl.metrics import (
    EMPTY_POLICY,
    distance_unit,
    image_diagonal,
    mean_over_classes,
    segmentation_metrics,
)


def square(shape, rows, cols, label=1):
    x = np.zeros(shape, dtype=np.int64)
    x[rows[0] : rows[1], cols[0] : cols[1]] = label
    return x


def cube(shape, start, size, label=1):
    x = np.zeros(shape, dtype=np.int64)
    sl = tuple(slice(s, s + size) for s in start)
    x[sl] = label
    return x


def test_overlapping_squares_dice_jaccard():
    # 4x4 squares overlapping in a 2x2 block: dice = 2*4/(16+16), jaccard = 4/(16+16-4).
    gt = square((8, 8), (0, 4), (0, 4))
    pred = square((8, 8), (2, 6), (2, 6))
    m = segmentation_metrics(pred, gt, num_classes=2)["1"]
    assert m["dice"] == pytest.approx(0.25)
    assert m["jaccard"] == pytest.approx(1 / 7)


def test_square_shifted_by_one_row_asd_and_hd95():
    # 4x4 squares, pred one row lower: overlap 12 of 16 -> dice 0.75, jaccard 12/20.
    # Surfaces (12 border pixels each): on each mask, 4 border pixels lie at distance 1 from the
    # other's border along the shifted edge, 2 more on the inner side of the overlapping edge,
    # the other 6 are on the other's border. ASD = (6 * 1) / 12 = 0.5 per side, HD95 = 1.
    gt = square((10, 10), (2, 6), (2, 6))
    pred = square((10, 10), (3, 7), (2, 6))
    m = segmentation_metrics(pred, gt, num_classes=2)["1"]
    assert m["dice"] == pytest.approx(0.75)
    assert m["jaccard"] == pytest.approx(0.6)
    assert m["hd95"] == pytest.approx(1.0)
    assert m["asd"] == pytest.approx(0.5)


def test_single_pixels_three_apart():
    gt = np.zeros((9, 9), dtype=np.int64)
    pred = np.zeros_like(gt)
    gt[4, 1] = 1
    pred[4, 4] = 1
    m = segmentation_metrics(pred, gt, num_classes=2)["1"]
    assert (m["dice"], m["jaccard"]) == (0.0, 0.0)
    assert m["hd95"] == pytest.approx(3.0)
    assert m["asd"] == pytest.approx(3.0)
    # shift is along axis 1: only that spacing matters
    mm = segmentation_metrics(pred, gt, num_classes=2, spacing=(5.0, 0.5))["1"]
    assert mm["hd95"] == pytest.approx(1.5)
    assert mm["asd"] == pytest.approx(1.5)


def test_perfect_prediction_3d():
    gt = cube((12, 12, 12), (3, 3, 3), 5)
    m = segmentation_metrics(gt.copy(), gt, num_classes=2, spacing=(1.0, 2.0, 3.0))["1"]
    assert m == {"dice": 1.0, "jaccard": 1.0, "hd95": 0.0, "asd": 0.0}


def test_cube_shifted_two_voxels_hd95():
    gt = cube((20, 20, 20), (5, 5, 5), 6)
    pred = cube((20, 20, 20), (7, 5, 5), 6)
    vox = segmentation_metrics(pred, gt, num_classes=2)["1"]
    assert vox["hd95"] == pytest.approx(2.0)
    assert vox["dice"] == pytest.approx(2 * 4 * 36 / (2 * 216))
    mm = segmentation_metrics(pred, gt, num_classes=2, spacing=(1.5, 1.0, 1.0))["1"]
    assert mm["hd95"] == pytest.approx(2 * 1.5)
    # spacing of the other axes does not change a shift along axis 0
    mm2 = segmentation_metrics(pred, gt, num_classes=2, spacing=(2.5, 0.3, 0.7))["1"]
    assert mm2["hd95"] == pytest.approx(2 * 2.5)
    assert mm2["asd"] < mm2["hd95"]


def test_both_empty_policy():
    gt = square((8, 8), (1, 3), (1, 3), label=1)
    pred = gt.copy()
    m = segmentation_metrics(pred, gt, num_classes=3)  # class 2 absent from both
    assert m["2"] == {"dice": 1.0, "jaccard": 1.0, "hd95": 0.0, "asd": 0.0}


@pytest.mark.parametrize("empty_side", ["pred", "target"])
def test_one_empty_policy_uses_image_diagonal(empty_side):
    full = square((10, 6), (2, 5), (2, 5))
    empty = np.zeros_like(full)
    pred, gt = (empty, full) if empty_side == "pred" else (full, empty)
    vox = segmentation_metrics(pred, gt, num_classes=2)["1"]
    assert vox == {"dice": 0.0, "jaccard": 0.0, "hd95": math.hypot(10, 6), "asd": math.hypot(10, 6)}
    mm = segmentation_metrics(pred, gt, num_classes=2, spacing=(2.0, 0.5))["1"]
    assert mm["hd95"] == pytest.approx(math.hypot(20, 3))
    assert mm["asd"] == pytest.approx(math.hypot(20, 3))


def test_image_diagonal_3d():
    assert image_diagonal((2, 3, 6)) == pytest.approx(7.0)
    assert image_diagonal((2, 3, 6), (1.0, 2.0, 0.5)) == pytest.approx(math.sqrt(4 + 36 + 9))


def test_multiclass_with_names_and_background():
    gt = square((10, 10), (0, 4), (0, 4), label=1) + square((10, 10), (6, 10), (6, 10), label=2)
    pred = gt.copy()
    pred[6:10, 6:8] = 0  # half of class 2 missed
    names = ["background", "liver", "tumor"]
    m = segmentation_metrics(pred, gt, num_classes=3, class_names=names)
    assert list(m) == ["liver", "tumor"]
    assert m["liver"]["dice"] == 1.0
    assert m["tumor"]["dice"] == pytest.approx(2 * 8 / (8 + 16))
    assert m["tumor"]["jaccard"] == pytest.approx(0.5)
    fg_only = segmentation_metrics(pred, gt, num_classes=3, class_names=["liver", "tumor"])
    assert fg_only == m
    with_bg = segmentation_metrics(
        pred, gt, num_classes=3, class_names=names, include_background=True
    )
    assert list(with_bg) == names
    # background: 100-32 = 68 true, 76 predicted, all 68 overlap
    assert with_bg["background"]["dice"] == pytest.approx(2 * 68 / (68 + 76))
    mean = mean_over_classes(m)
    assert mean["dice"] == pytest.approx((1.0 + 2 / 3) / 2)
    assert set(mean) == {"dice", "jaccard", "hd95", "asd"}


def test_default_names_and_torch_input():
    gt = torch.from_numpy(cube((8, 8, 8), (1, 1, 1), 3, label=2))
    m = segmentation_metrics(gt.clone(), gt, num_classes=4)
    assert list(m) == ["1", "2", "3"]
    assert m["2"]["dice"] == 1.0


def test_random_case_is_finite():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 3, size=(16, 16, 8))
    pred = rng.integers(0, 3, size=(16, 16, 8))
    m = segmentation_metrics(pred, gt, num_classes=3, spacing=(0.8, 0.8, 2.0))
    assert all(math.isfinite(v) for cls in m.values() for v in cls.values())


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(4, 4\).*\(4, 5\)"):
        segmentation_metrics(np.zeros((4, 4), int), np.zeros((4, 5), int), num_classes=2)


def test_values_out_of_range():
    gt = np.zeros((4, 4), int)
    bad = gt.copy()
    bad[0, 0] = 3
    with pytest.raises(ValueError, match="0..2"):
        segmentation_metrics(bad, gt, num_classes=3)
    bad[0, 0] = -1
    with pytest.raises(ValueError):
        segmentation_metrics(gt, bad, num_classes=3)


def test_bad_inputs():
    gt = np.zeros((4, 4), int)
    with pytest.raises(ValueError, match="2D or 3D"):
        segmentation_metrics(np.zeros(4, int), np.zeros(4, int), num_classes=2)
    with pytest.raises(ValueError, match="spacing"):
        segmentation_metrics(gt, gt, num_classes=2, spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="non-integer"):
        segmentation_metrics(gt + 0.5, gt, num_classes=2)
    with pytest.raises(ValueError, match="class_names"):
        segmentation_metrics(gt, gt, num_classes=3, class_names=["a"])


def test_units_and_policy_text():
    assert distance_unit(None) == "voxel"
    assert distance_unit((1.0, 1.0)) == "mm"
    assert "both" in EMPTY_POLICY and "diagonal" in EMPTY_POLICY
