"""Synthetic phantom datasets written in the standard on-disk layouts (``medssl data phantom``).

Why phantoms: the demo, the tests and the CPU benchmarks need data that can be generated in
seconds anywhere, with known ground truth, in exactly the layouts real data comes in, so the
same readers, trainers and metrics run on them. They are deliberately not trivial: organs differ
from their surroundings by position and a few tens of HU under noise and a bias field, lesions
differ from their organ by only ~20 HU, benign and malignant lesions overlap in size and
intensity, and landmark images come in random poses, so a model has to learn something.

Every random draw comes from a per-case generator seeded by ``(seed, kind, case index)``: the
same seed gives byte-identical voxel data, and a smaller ``cases`` gives a prefix of a larger
one (only the cls3d train/val split depends on the case count).
"""

from __future__ import annotations

import csv
import json
import math
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import ndimage, special
from threadpoolctl import threadpool_limits

from medssl.data.io import LandmarkSet, MedImage, write_image, write_landmarks
from medssl.errors import ConfigError, file_error

DEFAULT_CASES = {"seg3d": 24, "cls3d": 60, "landmark2d": 40}
MIN_CASES = {"seg3d": 2, "cls3d": 2, "landmark2d": 1}
KIND_CODE = {"seg3d": 1, "cls3d": 2, "landmark2d": 3}

# Shared CT intensities (HU); organ means are drawn around these per case.
AIR_HU = -1000.0
FAT_HU = -100.0
TISSUE_HU = 30.0

SEG_SHAPE = (64, 64, 48)
SEG_SPACING = (1.5, 1.5, 2.0)
SEG_LABELS = {"background": 0, "liver": 1, "kidney": 2, "lesion": 3}

CLS_SHAPE = (48, 48, 48)
CLS_SPACING = (1.0, 1.0, 1.0)
CLS_LABELS = {"benign": 0, "malignant": 1}

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


# --------------------------------------------------------------------------------------------
# Pure helpers: random fields, shapes, noise. Small and deterministic given the generator.
# --------------------------------------------------------------------------------------------


def case_rng(seed: int, kind: str, index: int) -> np.random.Generator:
    """The generator for one case, independent of how many cases are made."""
    return np.random.default_rng([seed, KIND_CODE[kind], index])


def dataset_rng(seed: int, kind: str) -> np.random.Generator:
    """The generator for dataset-level draws (the cls3d split), apart from all cases."""
    return np.random.default_rng([seed, 100 + KIND_CODE[kind]])


def smooth_field(shape: tuple[int, ...], rng: np.random.Generator, sigma: float) -> np.ndarray:
    """A zero-mean, unit-std random field with correlation length ``sigma`` voxels (float32).

    The building block of deformations, textures and bias fields: low-frequency structure
    that looks anatomical rather than like white noise. Large ``sigma`` sums Gaussian kernels
    centred on a coarse grid of random weights (separable, a few ms for a 64^3 volume);
    small ``sigma`` smooths white noise directly.
    """
    if sigma < 2.0:
        field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    else:
        kernels = [_node_kernel(n, sigma) for n in shape]
        field = rng.standard_normal(tuple(k.shape[1] for k in kernels)).astype(np.float32)
        for kernel in kernels:  # contracting the leading axis each time restores the axis order
            field = np.tensordot(field, kernel, axes=([0], [1]))
    field -= field.mean()
    std = float(field.std())
    return field / std if std > 0 else field


def _node_kernel(n: int, sigma: float) -> np.ndarray:
    """Gaussian weights (n voxels x nodes) from nodes every sigma, reaching 2 sigma past edges.

    At a node spacing of one sigma the summed variance ripples by only ~1e-4 (Poisson sum),
    so the field is stationary while the node grid stays coarse.
    """
    nodes = np.arange(-2 * sigma, n - 1 + 2 * sigma + 1e-6, sigma)
    diff = np.arange(n)[:, None] - nodes[None, :]
    return np.exp(-0.5 * (diff / sigma) ** 2).astype(np.float32)


def bias_field(
    shape: tuple[int, ...], rng: np.random.Generator, strength: float, sigma: float
) -> np.ndarray:
    """A smooth multiplicative gain around 1 (scanner/coil inhomogeneity), std ``strength``."""
    return 1.0 + strength * smooth_field(shape, rng, sigma)


def apply_bias(image_hu: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Scale attenuation (HU + 1000) by ``gain`` so that air stays at -1000 HU."""
    return (image_hu - AIR_HU) * gain + AIR_HU


def add_noise(image: np.ndarray, rng: np.random.Generator, sd: float) -> np.ndarray:
    """Add white Gaussian noise of standard deviation ``sd``."""
    return image + rng.normal(0.0, sd, image.shape).astype(np.float32)


def to_int16_hu(image: np.ndarray) -> np.ndarray:
    """Round and clip to the CT range stored as int16 (-1024 .. 3071 HU)."""
    return np.clip(np.rint(image), -1024, 3071).astype(np.int16)


def mm_grid(shape: tuple[int, ...], spacing: tuple[float, ...]) -> np.ndarray:
    """Voxel-centre coordinates in mm relative to the volume centre, shape ``(ndim, *shape)``."""
    axes = [
        (np.arange(n, dtype=np.float32) - (n - 1) / 2) * s
        for n, s in zip(shape, spacing, strict=True)
    ]
    return np.stack(np.meshgrid(*axes, indexing="ij"))


def rotation_matrix(angles: tuple[float, ...]) -> np.ndarray:
    """Rotation from Euler angles in radians: one angle -> 2x2, three (x, y, z) -> 3x3."""
    if len(angles) == 1:
        c, s = math.cos(angles[0]), math.sin(angles[0])
        return np.array([[c, -s], [s, c]])
    ax, ay, az = angles
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def ellipsoid_level(
    coords: np.ndarray,
    centre: tuple[float, ...],
    radii: tuple[float, ...],
    rotation: np.ndarray | None = None,
) -> np.ndarray:
    """Normalised radius ``|R^T (p - c) / r|``: < 1 inside the (rotated) ellipsoid.

    Returned as a level function rather than a mask so callers can perturb the surface
    (``level < 1 + wobble``) or make shells (``1 - t < level < 1``).
    """
    ndim = coords.shape[0]
    rel = coords - np.asarray(centre, dtype=np.float32).reshape((ndim,) + (1,) * (coords.ndim - 1))
    if rotation is not None:  # rel <- R^T rel, written out: tensordot copies the whole grid
        rel = np.stack(
            [sum(float(rotation[j, i]) * rel[j] for j in range(ndim)) for i in range(ndim)]
        )
    scaled = rel / np.asarray(radii, dtype=np.float32).reshape((ndim,) + (1,) * (coords.ndim - 1))
    return np.sqrt((scaled**2).sum(axis=0))


def blob(level: np.ndarray, wobble: np.ndarray | None = None, amount: float = 0.0) -> np.ndarray:
    """Boolean mask ``level < 1 + amount * wobble``: an ellipsoid with a smoothly bumpy surface."""
    if wobble is None or amount == 0.0:
        return level < 1.0
    return level < 1.0 + amount * wobble


def segment_distance(coords: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of every grid point to the segment ``a``-``b`` (same units as ``coords``)."""
    ndim = coords.shape[0]
    shape = (ndim,) + (1,) * (coords.ndim - 1)
    a = np.asarray(a, dtype=np.float32).reshape(shape)
    ab = np.asarray(b, dtype=np.float32).reshape(shape) - a
    rel = coords - a
    t = np.clip((rel * ab).sum(axis=0) / max(float((ab**2).sum()), 1e-12), 0.0, 1.0)
    return np.sqrt(((rel - t * ab) ** 2).sum(axis=0))


def random_rotation(rng: np.random.Generator, max_deg: tuple[float, float, float]) -> np.ndarray:
    """A 3D rotation with each Euler angle uniform in ``±max_deg``."""
    return rotation_matrix(tuple(math.radians(rng.uniform(-m, m)) for m in max_deg))


def warp_coords(
    coords: np.ndarray, rng: np.random.Generator, amplitude_mm: float, sigma: float
) -> np.ndarray:
    """Coordinates displaced by a smooth random field: every shape drawn on them deforms."""
    disp = np.stack([smooth_field(coords.shape[1:], rng, sigma) for _ in range(coords.shape[0])])
    return coords + amplitude_mm * disp


def balanced_labels(n: int, seed: int, kind: str) -> np.ndarray:
    """0/1 per case with one of each in every pair (2k, 2k+1), in random order.

    Balanced by construction (to within one for odd ``n``), and a case's class does not
    depend on ``n``, so a smaller dataset stays a prefix of a larger one.
    """
    code = 200 + KIND_CODE[kind]
    firsts = [int(np.random.default_rng([seed, code, k]).integers(2)) for k in range((n + 1) // 2)]
    return np.array([(f + j) % 2 for f in firsts for j in (0, 1)][:n], dtype=np.int64)


def stratified_split(
    labels: np.ndarray, rng: np.random.Generator, val_fraction: float = 0.2
) -> list[str]:
    """``"train"``/``"val"`` per case, ``val_fraction`` of each class in val (>= 1 if >= 2)."""
    split = np.array(["train"] * len(labels), dtype=object)
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_val = max(1, round(val_fraction * len(members))) if len(members) >= 2 else 0
        split[members[:n_val]] = "val"
    return split.tolist()


# --------------------------------------------------------------------------------------------
# seg3d: abdomen-like CT with liver, paired kidneys and hypodense lesions (nnU-Net v2 layout)
# --------------------------------------------------------------------------------------------


def _body(
    coords: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Elliptical body outline, its inner (non-fat) part and the semi-axes ``a``, ``b`` (mm)."""
    a, b = rng.uniform(39, 44), rng.uniform(29, 34)
    fat = rng.uniform(3.0, 6.0)
    level = ellipsoid_level(coords[:2], (0.0, 0.0), (a, b))
    body = level < 1.0
    inner = level < 1.0 - fat / min(a, b)
    return body, inner, a, b


def _organ(
    coords: np.ndarray,
    rng: np.random.Generator,
    centre: tuple[float, float, float],
    radii: tuple[float, float, float],
    wobble: np.ndarray,
    amount: float,
) -> np.ndarray:
    """A randomly oriented, jittered, bumpy ellipsoid (the organ shape model)."""
    centre = tuple(c + rng.normal(0, 2.5) for c in centre)
    radii = tuple(r * rng.uniform(0.85, 1.15) for r in radii)
    level = ellipsoid_level(coords, centre, radii, random_rotation(rng, (15, 15, 30)))
    return blob(level, wobble, amount)


def _lesions(
    coords: np.ndarray, rng: np.random.Generator, organs: list[np.ndarray]
) -> list[tuple[np.ndarray, int]]:
    """1-3 small bumpy spheres, each centred on a voxel of an organ and clipped to it.

    Returns (mask, organ index) pairs so the caller can darken each relative to its organ.
    """
    out = []
    for _ in range(int(rng.integers(1, 4))):
        host = 0 if rng.random() < 0.7 or not organs[1].any() else 1
        voxels = np.flatnonzero(ndimage.binary_erosion(organs[host], iterations=2))
        if voxels.size == 0:
            voxels = np.flatnonzero(organs[host])
        idx = np.unravel_index(rng.choice(voxels), organs[host].shape)
        centre = tuple(float(coords[(d, *idx)]) for d in range(3))
        radii = tuple(rng.uniform(3.5, 7.0) * rng.uniform(0.8, 1.2) for _ in range(3))
        level = ellipsoid_level(coords, centre, radii, random_rotation(rng, (90, 90, 90)))
        out.append((level < 1.0, host))
    return [(mask & organs[host], host) for mask, host in out]


def seg3d_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One abdomen-like volume (int16 HU, (x, y, z)) and its label map (uint8).

    Liver (~65 HU) on one side, kidneys (~85 HU) paired beside a bright spine, an unlabelled
    spleen-like distractor with liver-like HU opposite the liver and an aorta: organs are
    told apart by position and context, not by one threshold. Lesions are ~15-30 HU darker
    than their organ, i.e. close to the surrounding soft tissue.
    """
    grid = mm_grid(SEG_SHAPE, SEG_SPACING)
    coords = warp_coords(grid, rng, amplitude_mm=4.0, sigma=8.0)
    wobble = [smooth_field(SEG_SHAPE, rng, 5.0) for _ in range(2)]
    body, inner, a, b = _body(coords, rng)

    spine_y = b * 0.68
    spine = ellipsoid_level(coords[:2], (0.0, spine_y), (7.0, 6.5))
    aorta = ellipsoid_level(coords[:2], (rng.uniform(-3, 3), spine_y - 11.0), (4.5, 4.5)) < 1
    liver = _organ(
        coords, rng, (-a * 0.38, -b * 0.05, 12.0), (a * 0.42, b * 0.55, 24.0), wobble[0], 0.12
    )
    spleen = _organ(coords, rng, (a * 0.55, b * 0.2, 16.0), (8.0, 12.0, 16.0), wobble[1], 0.1)
    kidneys = np.zeros(SEG_SHAPE, dtype=bool)
    for side in (-1.0, 1.0):
        kidneys |= _organ(
            coords, rng, (side * 20.0, b * 0.42, -8.0), (8.0, 11.0, 16.0), wobble[1], 0.1
        )
    spine_mask = spine < 1.0
    liver &= inner & ~spine_mask
    kidneys &= inner & ~spine_mask & ~liver
    spleen &= inner & ~spine_mask & ~liver & ~kidneys
    lesions = _lesions(grid, rng, [liver, kidneys])

    texture = smooth_field(SEG_SHAPE, rng, 2.5)
    image = np.full(SEG_SHAPE, AIR_HU, dtype=np.float32)
    image[body] = FAT_HU + rng.normal(0, 8)
    image[inner] = TISSUE_HU + rng.normal(0, 4) + 8.0 * texture[inner]
    organ_hu = [rng.uniform(58, 72), rng.uniform(78, 92)]
    for mask, hu in ((liver, organ_hu[0]), (kidneys, organ_hu[1]), (spleen, rng.uniform(55, 70))):
        image[mask] = hu + 3.0 * texture[mask]
    image[aorta & inner] = rng.normal(150, 15)
    image[spine_mask] = np.where(spine[spine_mask] > 0.7, 650.0, 250.0)
    for mask, host in lesions:
        image[mask] = organ_hu[host] - rng.uniform(15, 30) + 3.0 * texture[mask]

    image = apply_bias(image, bias_field(SEG_SHAPE, rng, 0.008, 12.0))
    image = add_noise(image, rng, rng.uniform(20, 28))

    label = np.zeros(SEG_SHAPE, dtype=np.uint8)
    label[liver] = SEG_LABELS["liver"]
    label[kidneys] = SEG_LABELS["kidney"]
    for mask, _ in lesions:
        label[mask] = SEG_LABELS["lesion"]
    return to_int16_hu(image), label


def _ct_geometry(
    rng: np.random.Generator, spacing: tuple[float, ...], shape: tuple[int, ...]
) -> dict[str, tuple[float, ...]]:
    """A non-trivial origin (table position) for a volume centred near the scanner isocentre."""
    origin = tuple(
        -(n - 1) / 2 * s + rng.uniform(-30, 30) for n, s in zip(shape, spacing, strict=True)
    )
    return {"spacing": spacing, "origin": tuple(round(o, 3) for o in origin)}


def _write_seg3d(root: Path, n: int, seed: int) -> dict:
    """nnU-Net v2 raw layout; the first ``n - n // 2`` cases labelled, the rest unlabelled."""
    n_labelled = n - n // 2
    (root / "imagesTr").mkdir()
    (root / "labelsTr").mkdir()
    for i in range(n):
        rng = case_rng(seed, "seg3d", i)
        image, label = seg3d_case(rng)
        geom = _ct_geometry(rng, SEG_SPACING, SEG_SHAPE)
        case = f"phantom_{i:03d}"
        write_image(root / "imagesTr" / f"{case}_0000.nii.gz", MedImage.from_array(image, **geom))
        if i < n_labelled:
            write_image(root / "labelsTr" / f"{case}.nii.gz", MedImage.from_array(label, **geom))
    params = {
        "shape_xyz": list(SEG_SHAPE),
        "spacing_mm": list(SEG_SPACING),
        "labelled": n_labelled,
        "unlabelled": n - n_labelled,
    }
    dataset = {
        "name": "phantom_seg3d",
        "description": (
            "Synthetic abdomen-like CT phantom (medssl data phantom --kind seg3d): int16 HU, "
            "liver, paired kidneys and hypodense lesions; cases without a label file are the "
            "unlabelled pool"
        ),
        "reference": "generated by medssl.data.phantom",
        "licence": "synthetic, no restrictions",
        "tensorImageSize": "3D",
        "channel_names": {"0": "CT"},
        "labels": SEG_LABELS,
        "numTraining": n_labelled,
        "file_ending": ".nii.gz",
        "seed": seed,
    }
    (root / "dataset.json").write_text(json.dumps(dataset, indent=1) + "\n")
    return params


# --------------------------------------------------------------------------------------------
# cls3d: lesion crops, benign (smooth, homogeneous) vs malignant (lobulated, heterogeneous)
# --------------------------------------------------------------------------------------------


def _lesion_shape(coords: np.ndarray, rng: np.random.Generator, malignant: bool) -> np.ndarray:
    """Benign: a smooth round ellipsoid. Malignant: lobulated blobs plus thin spicules.

    Sizes overlap between classes (malignant only slightly larger on average), so size alone
    does not classify.
    """
    shape = coords.shape[1:]
    centre = rng.uniform(-4, 4, 3)
    r = rng.uniform(5.0, 11.0) if malignant else rng.uniform(4.0, 10.0)
    radii = r * rng.uniform(0.8, 1.0, 3) if malignant else r * rng.uniform(0.85, 1.0, 3)
    rot = random_rotation(rng, (90, 90, 90))
    if not malignant:
        level = ellipsoid_level(coords, tuple(centre), tuple(radii), rot)
        return blob(level, smooth_field(shape, rng, 4.0), rng.uniform(0.0, 0.08))
    wobble = smooth_field(shape, rng, 1.8)
    mask = blob(ellipsoid_level(coords, tuple(centre), tuple(radii), rot), wobble, 0.2)
    for _ in range(int(rng.integers(2, 5))):
        offset = rng.normal(0, 1, 3)
        offset *= r * rng.uniform(0.5, 0.8) / np.linalg.norm(offset)
        lobe = ellipsoid_level(coords, tuple(centre + offset), (r * rng.uniform(0.4, 0.6),) * 3)
        mask |= blob(lobe, wobble, 0.2)
    for _ in range(int(rng.integers(0, 8))):
        direction = rng.normal(0, 1, 3)
        direction /= np.linalg.norm(direction)
        tip = centre + direction * r * rng.uniform(1.3, 1.8)
        mask |= segment_distance(coords, centre, tip) < rng.uniform(0.6, 1.1)
    return mask


def cls3d_case(rng: np.random.Generator, malignant: bool) -> tuple[np.ndarray, np.ndarray]:
    """One lesion-centred crop (int16 HU) inside a liver-like organ, and the lesion mask.

    Malignant texture is speckled and sometimes necrotic; benign is homogeneous. Contrast to
    the organ overlaps between classes, and per-case noise levels blur the texture cue.
    """
    grid = mm_grid(CLS_SHAPE, CLS_SPACING)
    coords = warp_coords(grid, rng, amplitude_mm=2.0, sigma=6.0)
    normal = rng.normal(0, 1, 3)
    normal /= np.linalg.norm(normal)
    depth = (coords * normal.reshape(3, 1, 1, 1).astype(np.float32)).sum(axis=0)
    wall = rng.uniform(17, 23)
    organ_level = ellipsoid_level(coords, (0.0, 0.0, 0.0), tuple(rng.uniform(18, 26, 3)))
    organ = (organ_level < 1.0) & (depth < wall - 3)

    texture = smooth_field(CLS_SHAPE, rng, 2.0)
    image = np.full(CLS_SHAPE, AIR_HU, dtype=np.float32)
    image[depth < wall + 5] = FAT_HU + rng.normal(0, 8)
    image[depth < wall] = TISSUE_HU + 6.0 * texture[depth < wall]
    organ_hu = rng.normal(60, 5)
    image[organ] = organ_hu + 3.0 * texture[organ]

    mask = _lesion_shape(grid, rng, malignant) & (depth < wall - 1)
    lesion_hu = organ_hu - rng.uniform(10, 40)
    if malignant:
        speckle = smooth_field(CLS_SHAPE, rng, 0.8)
        lesion = lesion_hu + rng.uniform(12, 28) * speckle
        if rng.random() < 0.5:  # necrotic core: the deepest part of the lesion, darker
            depth_in = ndimage.distance_transform_edt(mask)
            lesion = lesion - 25.0 * (depth_in > 0.6 * depth_in.max())
    else:
        lesion = lesion_hu + rng.uniform(1, 5) * texture
    image[mask] = lesion[mask]

    image = apply_bias(image, bias_field(CLS_SHAPE, rng, 0.008, 10.0))
    image = add_noise(image, rng, rng.uniform(12, 25))
    return to_int16_hu(image), mask.astype(np.uint8)


def _write_cls3d(root: Path, n: int, seed: int) -> dict:
    """CSV manifest layout: images/, masks/, manifest.csv (stratified 80/20) and dataset.json."""
    (root / "images").mkdir()
    (root / "masks").mkdir()
    labels = balanced_labels(n, seed, "cls3d")
    split = stratified_split(labels, dataset_rng(seed, "cls3d"))
    rows = []
    for i in range(n):
        rng = case_rng(seed, "cls3d", i)
        image, mask = cls3d_case(rng, bool(labels[i]))
        geom = _ct_geometry(rng, CLS_SPACING, CLS_SHAPE)
        case = f"case_{i:03d}"
        write_image(root / "images" / f"{case}.nii.gz", MedImage.from_array(image, **geom))
        write_image(root / "masks" / f"{case}.nii.gz", MedImage.from_array(mask, **geom))
        rows.append(
            [case, f"images/{case}.nii.gz", f"masks/{case}.nii.gz", int(labels[i]), split[i]]
        )
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "image", "mask", "label", "split"])
        writer.writerows(rows)
    dataset = {
        "name": "phantom_cls3d",
        "description": (
            "Synthetic lesion-classification CT phantom (medssl data phantom --kind cls3d): "
            "benign = smooth round homogeneous lesion, malignant = lobulated/spiculated "
            "heterogeneous lesion; sizes and contrasts overlap"
        ),
        "reference": "generated by medssl.data.phantom",
        "licence": "synthetic, no restrictions",
        "tensorImageSize": "3D",
        "channel_names": {"0": "CT"},
        "labels": CLS_LABELS,
        "numTraining": n,
        "file_ending": ".nii.gz",
        "manifest": "manifest.csv",
        "seed": seed,
    }
    (root / "dataset.json").write_text(json.dumps(dataset, indent=1) + "\n")
    return {
        "shape_xyz": list(CLS_SHAPE),
        "spacing_mm": list(CLS_SPACING),
        "malignant": int(labels.sum()),
        "benign": int(n - labels.sum()),
        "val": split.count("val"),
    }


# --------------------------------------------------------------------------------------------
# landmark2d: skull-like radiographs with 8 landmarks; "abnormal" = elongated, opened mandible
# --------------------------------------------------------------------------------------------


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

    def ring(centre, radii, width):
        return _soft(np.abs(ellipsoid_level(canon, centre, radii) - 1.0) * min(radii), width)

    def bar(a, b, width):
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


def _write_landmark2d(root: Path, n: int, seed: int) -> dict:
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
        write_image(root / "images" / f"{case}.png", MedImage.from_array(image.T))
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


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

WRITERS: dict[str, Callable[[Path, int, int], dict]] = {
    "seg3d": _write_seg3d,
    "cls3d": _write_cls3d,
    "landmark2d": _write_landmark2d,
}

SUMMARIES = {
    "seg3d": (
        "Abdomen-like CT volumes (int16 HU, 64x64x48 at 1.5x1.5x2.0 mm, non-trivial origin) in "
        "the nnU-Net v2 raw layout. Elliptical body with a fat layer, soft tissue with smooth "
        "texture, a bright spine and aorta, a liver (label 1, ~65 HU), paired kidneys (label 2, "
        "~85 HU), an unlabelled spleen-like distractor with liver-like HU, and 1-3 lesions "
        "(label 3) inside the organs, 15-30 HU darker than their organ. Shapes are ellipsoids "
        "deformed by a smooth random displacement field; a multiplicative bias field and "
        "Gaussian noise (sd 20-28 HU) are added. The first half of the cases have labels in "
        "labelsTr/; the rest are only in imagesTr/ and form the unlabelled pool."
    ),
    "cls3d": (
        "Lesion-centred CT crops (int16 HU, 48^3 at 1 mm) in the CSV manifest layout: "
        "images/, masks/ (lesion mask), manifest.csv (id,image,mask,label,split; stratified "
        "~80/20 train/val) and dataset.json. Benign (0): smooth round, homogeneous lesion. "
        "Malignant (1): lobulated, sometimes spiculated, speckled and sometimes necrotic lesion. "
        "Sizes, contrast to the organ and noise levels overlap between classes."
    ),
    "landmark2d": (
        "Skull-like radiographs (uint8 PNG, 256x256, 0.5 mm nominal pixel spacing) in the "
        "landmark-set layout of shared/data/cephalometric: images/ and landmarks.json with 8 "
        "landmarks at ring centres, bar tips and corners, two annotators (annotator2 = "
        "annotator1 + ~1 px error) and their mean, a split (sorted ids, index % 4 == 3 -> val) "
        "and a per-image class (normal / abnormal = longer, further opened mandible body). "
        "Each image has a random affine pose, soft-tissue gradient, bias field and noise."
    ),
}


def _check_out(out: Path) -> None:
    """Refuse to write into anything that already holds files."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise file_error(out, "exists", "choose a new OUT or delete it")


def _readme(kind: str, n: int, seed: int, params: dict) -> str:
    """What the folder is and exactly how to regenerate it."""
    lines = [
        f"# medssl phantom: {kind}",
        "",
        SUMMARIES[kind],
        "",
        f"Generated by `medssl data phantom OUT --kind {kind} --cases {n} --seed {seed}` "
        "(medssl.data.phantom.make_phantom). The same seed gives identical voxel data; each "
        "case is drawn from its own generator seeded by (seed, kind, case index).",
        "",
        "Parameters:",
        "",
        f"- kind: {kind}",
        f"- cases: {n}",
        f"- seed: {seed}",
    ]
    lines += [f"- {key}: {value}" for key, value in params.items()]
    return "\n".join(lines) + "\n"


def make_phantom(out: str | Path, kind: str, cases: int | None = None, seed: int = 0) -> Path:
    """Write a synthetic ``kind`` dataset (seg3d, cls3d, landmark2d) to ``out``; return it.

    ``out`` must not exist or be empty. Everything is built in a temporary sibling folder and
    renamed into place at the end, so a failure leaves no partial dataset behind.
    """
    if kind not in WRITERS:
        raise ConfigError(f"--kind {kind}: unknown phantom kind; use one of {', '.join(WRITERS)}")
    n = DEFAULT_CASES[kind] if cases is None else int(cases)
    if n < MIN_CASES[kind]:
        raise ConfigError(f"--cases {n}: too few for {kind}; use at least {MIN_CASES[kind]}")
    if seed < 0:
        raise ConfigError(f"--seed {seed}: the seed must be >= 0; pass a non-negative integer")
    out = Path(out)
    _check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir()  # unlike tempfile.mkdtemp (0700), this honours the umask the result keeps
    try:
        # The BLAS calls here are many and tiny: threads only add spin-waiting (3x slower).
        with threadpool_limits(limits=1, user_api="blas"):
            params = WRITERS[kind](tmp, n, seed)
        (tmp / "README.md").write_text(_readme(kind, n, seed, params))
        _check_out(out)
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


__all__ = [
    "add_noise",
    "apply_bias",
    "balanced_labels",
    "bias_field",
    "blob",
    "ellipsoid_level",
    "make_phantom",
    "mm_grid",
    "rotation_matrix",
    "segment_distance",
    "smooth_field",
    "stratified_split",
    "to_int16_hu",
    "warp_coords",
]
