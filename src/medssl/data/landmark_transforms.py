"""MONAI dictionary transforms for 2D landmark tasks: resize, augment and index the landmarks
with the image (continuous pixel coordinates; missing points stay NaN)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from monai import transforms as mt

from medssl.data.transforms import IMAGE, LoadMedImaged


class ResizeWithLandmarksd(mt.MapTransform):
    """Resize a 2D image (C, X, Y) and scale its landmarks (L, 2) in [x, y] pixel units alike.

    Coordinates are continuous (the image spans [0, W] x [0, H]), so resizing multiplies them by
    new size / old size; NaN (missing) points stay NaN. ``<points_key>_scale`` records that
    factor per axis, so that predictions map back to the original pixels; an image without
    points (``predict``) is resized alone.
    """

    def __init__(self, size: Sequence[int], image_key: str = IMAGE, points_key: str = "landmarks"):
        super().__init__([image_key])
        self.size, self.image_key, self.points_key = list(size), image_key, points_key
        self.resize = mt.Resize(spatial_size=self.size, mode="area")

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        d = dict(data)
        old = d[self.image_key].shape[1:]
        d[self.image_key] = self.resize(d[self.image_key])
        scale = np.asarray(self.size, dtype=np.float64) / np.asarray(old, dtype=np.float64)
        if self.points_key in d:
            d[self.points_key] = np.asarray(d[self.points_key], dtype=np.float64) * scale
        d[f"{self.points_key}_scale"] = scale
        return d


@dataclass(frozen=True)
class LandmarkAugmentation:
    """Spatial augmentation that moves the landmarks with the image.

    ``flip_prob``: a horizontal flip (along x); landmarks named in ``flip_pairs`` (index pairs
    of left / right landmarks) swap under it, so that "left gonion" still names the left one.
    ``prob``: a rotation of up to ``rotate_deg`` degrees and a scaling by up to ``scale`` (a
    fraction) about the image centre. Landmarks moved outside the image become missing.
    """

    flip_prob: float = 0.0
    rotate_deg: float = 10.0
    scale: float = 0.1
    prob: float = 0.5
    flip_pairs: tuple[tuple[int, int], ...] = ()


_HANDEDNESS = "_landmark_handedness"


def _handedness(image: Any) -> float:
    """+1 or -1: the sign of the determinant of the image's index-to-world affine (a flip
    changes it, rotations and scalings do not)."""
    affine = np.asarray(image.affine, dtype=np.float64)
    dims = image.ndim - 1
    return float(np.sign(np.linalg.det(affine[:dims, :dims])))


class LandmarksToIndexd(mt.MapTransform):
    """(L, D) continuous landmarks -> (1, L, D) MONAI index coordinates (pixel centres at
    integers: minus 0.5), the shape :class:`monai.transforms.ApplyTransformToPointsd` takes;
    the image's handedness is kept to detect a flip later."""

    def __init__(self, points_key: str = "landmarks", image_key: str = IMAGE) -> None:
        super().__init__([points_key])
        self.points_key, self.image_key = points_key, image_key

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        d = dict(data)
        points = np.asarray(d[self.points_key], dtype=np.float64) - 0.5
        d[self.points_key] = torch.as_tensor(points[None])
        d[_HANDEDNESS] = _handedness(d[self.image_key])
        return d


class LandmarksFromIndexd(mt.MapTransform):
    """Back from :class:`LandmarksToIndexd`: (L, D) continuous coordinates; points outside the
    image become NaN; when the image was mirrored, each declared pair swaps (in the points and
    in ``swap_keys``, per-landmark values such as a landmark's class)."""

    def __init__(
        self,
        pairs: Sequence[tuple[int, int]] = (),
        points_key: str = "landmarks",
        image_key: str = IMAGE,
        swap_keys: Sequence[str] = (),
    ) -> None:
        super().__init__([points_key])
        self.pairs, self.points_key, self.image_key = list(pairs), points_key, image_key
        self.swap_keys = list(swap_keys)

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        d = dict(data)
        points = np.asarray(torch.as_tensor(d[self.points_key])[0], dtype=np.float64) + 0.5
        size = np.asarray(d[self.image_key].shape[1:], dtype=np.float64)
        outside = ((points < 0) | (points > size)).any(axis=1)
        points[outside] = np.nan
        d[self.points_key] = points
        if d.pop(_HANDEDNESS) != _handedness(d[self.image_key]) and self.pairs:
            for key in [self.points_key, *(k for k in self.swap_keys if k in d)]:
                d[key] = swap_pairs(np.asarray(d[key]), self.pairs)
        return d


def swap_pairs(values: np.ndarray, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """``values`` (one row per landmark) with the rows of each pair ``(a, b)`` exchanged."""
    out = np.array(values, copy=True)
    for a, b in pairs:
        out[[a, b]] = values[[b, a]]
    return out


def landmark_spatial_steps(
    augmentation: LandmarkAugmentation, points_key: str = "landmarks", swap_keys=()
) -> list:
    """The spatial augmentation of a 2D image and its landmarks: the points are taken to world
    coordinates through the image's affine, MONAI flips, rotates and scales the image (updating
    its affine), and the points come back through the new affine
    (:class:`monai.transforms.ApplyTransformToPointsd`)."""
    to_world, to_index = (
        mt.ApplyTransformToPointsd(
            points_key,
            refer_keys=IMAGE,
            dtype=torch.float64,
            affine_lps_to_ras=False,
            invert_affine=invert,
        )
        for invert in (False, True)
    )
    # as a plain tensor: MONAI composes the affine a MetaTensor of points carries with the one
    # it applies, and the points' world coordinates must go back through the new affine alone
    steps: list = [
        LandmarksToIndexd(points_key),
        to_world,
        mt.EnsureTyped(points_key, track_meta=False),
    ]
    if augmentation.flip_prob > 0:
        steps.append(mt.RandFlipd(IMAGE, prob=augmentation.flip_prob, spatial_axis=0))
    if augmentation.prob > 0:
        steps.append(
            mt.RandAffined(
                IMAGE,
                prob=augmentation.prob,
                rotate_range=math.radians(augmentation.rotate_deg),
                scale_range=augmentation.scale,
                mode="bilinear",
                padding_mode="zeros",
            )
        )
    steps += [
        to_index,
        LandmarksFromIndexd(augmentation.flip_pairs, points_key, swap_keys=swap_keys),
    ]
    return steps


def landmark_pipeline(
    size: Sequence[int],
    augment: bool = False,
    spatial: LandmarkAugmentation | None = None,
    swap_keys: Sequence[str] = (),
) -> mt.Compose:
    """Radiograph landmarks: load, scale intensities to [0, 1], resize image and points together
    (records ``landmarks_scale``); ``spatial`` adds flips, rotations and scalings that move the
    landmarks (:func:`landmark_spatial_steps`), ``augment`` intensity changes. A record without
    ``landmarks`` (an image to predict on) is loaded and resized only.
    """
    steps: list = [
        LoadMedImaged([IMAGE]),
        mt.EnsureChannelFirstd(IMAGE),
        mt.ScaleIntensityd(IMAGE, minv=0.0, maxv=1.0),
        ResizeWithLandmarksd(size),
    ]
    if spatial is not None:
        steps += landmark_spatial_steps(spatial, swap_keys=swap_keys)
    if augment:
        steps += [
            mt.RandScaleIntensityd(IMAGE, factors=0.15, prob=0.5),
            mt.RandAdjustContrastd(IMAGE, gamma=(0.7, 1.5), prob=0.3),
            mt.RandGaussianNoised(IMAGE, std=0.02, prob=0.2),
        ]
    steps.append(mt.EnsureTyped(IMAGE, track_meta=False))
    return mt.Compose(steps)
