"""landmark2d: skull-like radiographs with 8 landmarks; "abnormal" = elongated, opened mandible."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage, special

from medssl.data.io import LandmarkSet, write_landmarks
from medssl.data.phantom.files import write_array
from medssl.data.phantom.seeding import balanced_labels, case_rng
from medssl.data.phantom.shapes import (
    add_noise,
    bias_field,
    ellipsoid_level,
    rotation_matrix,
    segment_distance,
)

LM_SIZE = 256
LM_SPACING_MM = 0.5
LM_PX_PER_UNIT = 85.0
LM_NAMES = [
    "sella",
    "nasion",
    "nasal_tip",
    "orbit_centre",
    "porion",
    "condylion",
    "gonion",
    "menton",
]
LM_DESCRIPTIONS = [
    "centre of the small ring inside the cranium",
    "junction of the nasal bar with the front of the cranial ring",
    "free tip of the nasal bar",
    "centre of the orbit ring",
    "centre of the small ear ring behind the jaw",
    "upper end of the ramus (condyle head)",
    "corner of the L-shaped mandible",
    "front tip of the mandible body",
]
LM_CLASSES = ["normal", "abnormal"]
DEFAULT_CASES = 40
MIN_CASES = 1

SUMMARY = (
    "Skull-like radiographs (uint8 PNG, 256x256, 0.5 mm nominal pixel spacing) in the "
    "landmark-set layout of shared/data/cephalometric: images/ and landmarks.json with 8 "
    "landmarks at ring centres, bar tips and corners, two annotators (annotator2 = "
    "annotator1 + ~1 px error) and their mean, a split (sorted ids, index % 4 == 3 -> val) "
    "and a per-image class (normal / abnormal = longer, further opened mandible body). "
    "Each image has a random affine pose, soft-tissue gradient, bias field and noise."
)


def skull_points(rng: np.random.Generator, abnormal: bool) -> dict[str, np.ndarray]:
    """Landmark positions in the canonical skull frame (units ~ 85 px), jittered per case.

    Abnormal cases have a longer mandible body opened further down (prognathism-like), so
    the class is visible in landmark geometry (e.g. gonion-menton vs sella-nasion length).
    """

    def jitter(x: float, y: float, sd: float = 0.02) -> np.ndarray:
        return np.array([x, y]) + rng.normal(0, sd, 2)

    nasion_angle = math.radians(rng.uniform(10, 20))
    nasion = np.array([0.72 * math.cos(nasion_angle), -0.2 + 0.6 * math.sin(nasion_angle)])
    nasal_dir = math.radians(rng.uniform(50, 70))
    gonion = jitter(-0.25, 0.68)
    length = 0.75 * (rng.uniform(1.12, 1.35) if abnormal else rng.uniform(0.9, 1.1))
    angle = math.radians(rng.uniform(-2, 8) if abnormal else rng.uniform(-14, -4))
    return {
        "sella": jitter(-0.18, -0.1),
        "nasion": nasion,
        "nasal_tip": nasion + 0.2 * np.array([math.cos(nasal_dir), math.sin(nasal_dir)]),
        "orbit_centre": jitter(0.42, -0.15),
        "porion": jitter(-0.48, 0.05),
        "condylion": jitter(-0.3, 0.22),
        "gonion": gonion,
        "menton": gonion + length * np.array([math.cos(angle), math.sin(angle)]),
    }


def random_pose(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random affine (2x2 matrix, offset) from the canonical frame to pixel coordinates."""
    scale = LM_PX_PER_UNIT * rng.uniform(0.9, 1.05)
    stretch = np.diag([rng.uniform(0.95, 1.05), 1.0])
    shear = np.array([[1.0, rng.uniform(-0.05, 0.05)], [0.0, 1.0]])
    matrix = scale * rotation_matrix((math.radians(rng.uniform(-12, 12)),)) @ stretch @ shear
    centre = np.array([0.07, 0.0])  # canonical centre of the structure
    offset = np.array([LM_SIZE / 2, LM_SIZE / 2]) + rng.uniform(-10, 10, 2) - matrix @ centre
    return matrix, offset


def _soft(distance: np.ndarray, half_width: float, edge: float = 0.012) -> np.ndarray:
    """A smooth 0..1 profile: ~1 within ``half_width`` of a curve, falling off over ``edge``."""
    return special.expit((half_width - distance) / edge)


def render_skull(
    points: dict[str, np.ndarray], matrix: np.ndarray, offset: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Render a radiograph-like (H, W) uint8 image of the skull drawn through the pose.

    Pixel (i, j) covers [i, i+1) x [j, j+1), so it is sampled at its centre (i + 0.5, j + 0.5)
    mapped back into the canonical frame. Bones add up like attenuation.
    """
    px = np.arange(LM_SIZE, dtype=np.float32) + 0.5
    xy = np.stack(np.meshgrid(px, px, indexing="xy"))  # (2, H, W): x varies along columns
    inv = np.linalg.inv(matrix).astype(np.float32)
    canon = np.tensordot(inv, xy - offset.astype(np.float32).reshape(2, 1, 1), axes=1)

    def ring(centre: tuple[float, float], radii: tuple[float, float], width: float) -> np.ndarray:
        return _soft(np.abs(ellipsoid_level(canon, centre, radii) - 1.0) * min(radii), width)

    def bar(a: ArrayLike, b: ArrayLike, width: float) -> np.ndarray:
        return _soft(segment_distance(canon, a, b), width)

    p = points
    head = _soft(ellipsoid_level(canon, (0.12, 0.05), (0.98, 0.95)) - 1.0, 0.0, 0.03)
    gradient = 0.5 + 0.5 * (canon[0] + 1.0) / 2.0
    bone = (
        1.0 * ring((0.0, -0.2), (0.72, 0.6), 0.035)
        + 0.7 * ring(tuple(p["sella"]), (0.07, 0.06), 0.015)
        + 0.7 * ring(tuple(p["orbit_centre"]), (0.13, 0.12), 0.02)
        + 0.8 * ring(tuple(p["porion"]), (0.05, 0.05), 0.012)
        + 0.9 * bar(p["nasion"], p["nasal_tip"], 0.02)
        + 0.9 * bar(p["condylion"], p["gonion"], 0.045)
        + 0.9 * bar(p["gonion"], p["menton"], 0.045)
        + 0.6 * _soft(np.linalg.norm(canon - p["condylion"].reshape(2, 1, 1), axis=0), 0.06)
        + 0.6 * bar((0.15, 0.38), (0.62, 0.42), 0.04)
    )
    image = 15.0 + 70.0 * head * gradient + 120.0 * bone
    image = image * bias_field(image.shape, rng, 0.06, 30.0)
    image = ndimage.gaussian_filter(image, 0.7)
    image = add_noise(image, rng, rng.uniform(4.0, 8.0))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def write_landmark2d(root: Path, n: int, seed: int) -> dict:
    """Landmark-set layout like ``shared/data/cephalometric``: images/ and landmarks.json."""
    (root / "images").mkdir()
    classes = balanced_labels(n, seed, "landmark2d")
    cases: dict[str, dict[str, np.ndarray]] = {}
    for i in range(n):
        rng = case_rng(seed, "landmark2d", i)
        points = skull_points(rng, bool(classes[i]))
        matrix, offset = random_pose(rng)
        image = render_skull(points, matrix, offset, rng)
        case = f"lm_{i:03d}"
        write_array(root / "images" / f"{case}.png", image.T)
        truth = np.stack([matrix @ points[name] + offset for name in LM_NAMES])
        second = truth + rng.normal(0, 0.7, truth.shape)
        cases[case] = {
            "annotator1": np.round(truth, 3),
            "annotator2": np.round(second, 3),
            "mean": np.round((truth + second) / 2, 3),
        }
    ids = sorted(cases)
    extra = {
        "landmark_descriptions": LM_DESCRIPTIONS,
        "coordinates": (
            "pixels, [x, y], continuous: image spans [0, W] x [0, H], pixel (i, j) covers "
            "[i, i+1) x [j, j+1)"
        ),
        "split": {case: "val" if k % 4 == 3 else "train" for k, case in enumerate(ids)},
        "split_rule": "sorted case ids, index % 4 == 3 -> val, others -> train",
        "class_names": LM_CLASSES,
        "classes": {f"lm_{i:03d}": int(classes[i]) for i in range(n)},
        "description": (
            "Synthetic skull-like radiographs (medssl data phantom --kind landmark2d); "
            "annotator1 = exact landmark, annotator2 = annotator1 + N(0, 0.7 px) per axis; "
            "abnormal = longer, further opened mandible body"
        ),
        "seed": seed,
    }
    landmarks = LandmarkSet(
        names=LM_NAMES,
        spacing_mm=LM_SPACING_MM,
        image_size_wh=(LM_SIZE, LM_SIZE),
        cases=cases,
        extra=extra,
    )
    write_landmarks(root / "landmarks.json", landmarks)
    return {
        "image_size_wh": [LM_SIZE, LM_SIZE],
        "pixel_spacing_mm": LM_SPACING_MM,
        "abnormal": int(classes.sum()),
        "normal": int(n - classes.sum()),
    }
