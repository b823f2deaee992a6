"""Flips, rotations and scalings move the landmarks with the image; declared pairs swap."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose

from medssl.data.landmark_transforms import (
    LandmarkAugmentation,
    landmark_pipeline,
    landmark_spatial_steps,
    swap_pairs,
)

SIZE = (64, 48)
POINTS = np.array([[12.5, 10.5], [50.25, 14.75], [30.0, 36.5], [20.5, 30.25]])


def blob_image(points: np.ndarray, size=SIZE, sigma: float = 1.2) -> MetaTensor:
    """One bright Gaussian blob at each point (continuous coordinates)."""
    x = np.arange(size[0]) + 0.5
    y = np.arange(size[1]) + 0.5
    xx, yy = np.meshgrid(x, y, indexing="ij")
    image = sum(np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / (2 * sigma**2)) for px, py in points)
    return MetaTensor(torch.as_tensor(image[None], dtype=torch.float32))


def blob_centre(image: np.ndarray, near: np.ndarray, radius: float = 4.0) -> np.ndarray:
    """The intensity centroid of ``image`` (X, Y) within ``radius`` of ``near``."""
    x = np.arange(image.shape[0]) + 0.5
    y = np.arange(image.shape[1]) + 0.5
    xx, yy = np.meshgrid(x, y, indexing="ij")
    weight = np.clip(image, 0, None) * (np.hypot(xx - near[0], yy - near[1]) < radius)
    return np.array([(weight * xx).sum(), (weight * yy).sum()]) / weight.sum()


def augment(augmentation: LandmarkAugmentation, seed: int, points=POINTS, **extra) -> dict:
    pipeline = Compose(landmark_spatial_steps(augmentation, swap_keys=list(extra)))
    pipeline.set_random_state(seed)
    return pipeline({"image": blob_image(points), "landmarks": points.copy(), **extra})


def test_a_horizontal_flip_mirrors_x_exactly():
    out = augment(LandmarkAugmentation(flip_prob=1.0, prob=0.0), seed=0)
    expected = POINTS.copy()
    expected[:, 0] = SIZE[0] - expected[:, 0]
    np.testing.assert_allclose(out["landmarks"], expected, atol=1e-9)
    image = np.asarray(out["image"][0])
    for point in out["landmarks"]:
        np.testing.assert_allclose(blob_centre(image, point), point, atol=0.05)


@pytest.mark.parametrize(
    "augmentation",
    [
        LandmarkAugmentation(rotate_deg=25.0, scale=0.0, prob=1.0),
        LandmarkAugmentation(rotate_deg=0.0, scale=0.3, prob=1.0),
        LandmarkAugmentation(flip_prob=0.5, rotate_deg=15.0, scale=0.15, prob=1.0),
    ],
    ids=["rotation", "scaling", "flip+rotation+scaling"],
)
def test_the_points_follow_the_image(augmentation: LandmarkAugmentation):
    """Each transformed landmark sits on its transformed blob, to a tenth of a pixel."""
    moved = 0
    for seed in range(6):
        out = augment(augmentation, seed)
        image = np.asarray(out["image"][0])
        points = out["landmarks"]
        assert image.shape == SIZE and points.shape == POINTS.shape
        for point in points[np.isfinite(points).all(axis=1)]:
            np.testing.assert_allclose(blob_centre(image, point), point, atol=0.15)
        moved += int(np.abs(np.nan_to_num(points) - POINTS).max() > 1.0)
    assert moved >= 4  # the augmentation did move them


def test_a_rotation_turns_the_points_about_the_image_centre():
    out = augment(LandmarkAugmentation(rotate_deg=30.0, scale=0.0, prob=1.0), seed=3)
    centre = np.array(SIZE) / 2
    before = POINTS - centre
    after = out["landmarks"] - centre
    np.testing.assert_allclose(np.linalg.norm(after, axis=1), np.linalg.norm(before, axis=1))
    angles = np.arctan2(after[:, 1], after[:, 0]) - np.arctan2(before[:, 1], before[:, 0])
    angles = (angles + math.pi) % (2 * math.pi) - math.pi
    assert np.ptp(angles) < 1e-6 and 0 < abs(angles[0]) <= math.radians(30.0) + 1e-9


def test_declared_pairs_swap_under_a_flip_and_only_then():
    """Landmark 0 is the left one, 1 the right one: after a flip the left one is the one now on
    the left (the former right one), with its per-landmark class."""
    classes = np.array([7, 8, 1, 2])
    flip = LandmarkAugmentation(flip_prob=1.0, prob=0.0, flip_pairs=((0, 1),))
    out = augment(flip, seed=0, landmark_class=classes)
    mirrored = POINTS.copy()
    mirrored[:, 0] = SIZE[0] - mirrored[:, 0]
    np.testing.assert_allclose(out["landmarks"][0], mirrored[1])
    np.testing.assert_allclose(out["landmarks"][1], mirrored[0])
    np.testing.assert_allclose(out["landmarks"][2:], mirrored[2:])
    assert out["landmark_class"].tolist() == [8, 7, 1, 2]
    assert out["landmarks"][0, 0] < out["landmarks"][1, 0]  # left stays left
    rotate = LandmarkAugmentation(rotate_deg=20.0, prob=1.0, flip_pairs=((0, 1),))
    kept = augment(rotate, seed=1, landmark_class=classes)
    assert kept["landmark_class"].tolist() == [7, 8, 1, 2]
    assert kept["landmarks"][0, 0] < kept["landmarks"][1, 0]


def test_points_pushed_out_of_the_image_become_missing_and_nulls_stay_null():
    points = POINTS.copy()
    points[0] = [0.6, 0.6]  # a corner: a rotation about the centre pushes it out
    points[3] = np.nan
    out = augment(LandmarkAugmentation(rotate_deg=40.0, scale=0.0, prob=1.0), seed=2, points=points)
    assert np.isnan(out["landmarks"][0]).all() and np.isnan(out["landmarks"][3]).all()
    assert np.isfinite(out["landmarks"][1:3]).all()


def test_swap_pairs_exchanges_rows():
    values = np.array([[0, 0], [1, 1], [2, 2]])
    assert swap_pairs(values, [(0, 2)]).tolist() == [[2, 2], [1, 1], [0, 0]]


def test_the_pipeline_resizes_then_augments_a_file(tmp_path):
    """The whole pipeline on an image file: resized, augmented, points on their blobs."""
    from medssl.data.phantom.files import write_array

    path = tmp_path / "blobs.png"
    image = np.asarray(blob_image(POINTS * 2, size=(128, 96), sigma=2.4)[0])
    write_array(path, np.round(image / image.max() * 255).astype(np.uint8))
    pipeline = landmark_pipeline(
        [64, 48], spatial=LandmarkAugmentation(flip_prob=0.5, rotate_deg=20.0, prob=1.0)
    )
    for seed in range(3):
        pipeline.set_random_state(seed)
        out = pipeline({"image": str(path), "landmarks": POINTS * 2})
        np.testing.assert_allclose(out["landmarks_scale"], [0.5, 0.5])
        resized = np.asarray(out["image"][0])
        for point in out["landmarks"][np.isfinite(out["landmarks"]).all(axis=1)]:
            np.testing.assert_allclose(blob_centre(resized, point), point, atol=0.25)
