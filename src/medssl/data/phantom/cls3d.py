"""cls3d: lesion crops, benign (smooth, homogeneous) vs malignant (lobulated, heterogeneous)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from scipy import ndimage

from medssl.data.phantom.files import ct_geometry, write_array, write_ct_dataset_json
from medssl.data.phantom.seeding import balanced_labels, case_rng, dataset_rng, stratified_split
from medssl.data.phantom.shapes import (
    AIR_HU,
    FAT_HU,
    TISSUE_HU,
    blob,
    ellipsoid_level,
    mm_grid,
    random_rotation,
    scan_ct,
    segment_distance,
    smooth_field,
    warp_coords,
)

CLS_SHAPE = (48, 48, 48)
CLS_SPACING = (1.0, 1.0, 1.0)
CLS_LABELS = {"benign": 0, "malignant": 1}
DEFAULT_CASES = 60
MIN_CASES = 2  # one case of each class

SUMMARY = (
    "Lesion-centred CT crops (int16 HU, 48^3 at 1 mm) in the CSV manifest layout: "
    "images/, masks/ (lesion mask), manifest.csv (id,image,mask,label,split; stratified "
    "~80/20 train/val) and dataset.json. Benign (0): smooth round, homogeneous lesion. "
    "Malignant (1): lobulated, sometimes spiculated, speckled and sometimes necrotic lesion. "
    "Sizes, contrast to the organ and noise levels overlap between classes."
)


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

    return scan_ct(image, rng, bias_sigma=10.0, noise_sd=(12, 25)), mask.astype(np.uint8)


def write_cls3d(root: Path, n: int, seed: int) -> dict:
    """CSV manifest layout: images/, masks/, manifest.csv (stratified 80/20) and dataset.json."""
    (root / "images").mkdir()
    (root / "masks").mkdir()
    labels = balanced_labels(n, seed, "cls3d")
    split = stratified_split(labels, dataset_rng(seed, "cls3d"))
    rows = []
    for i in range(n):
        rng = case_rng(seed, "cls3d", i)
        image, mask = cls3d_case(rng, bool(labels[i]))
        geom = ct_geometry(rng, CLS_SPACING, CLS_SHAPE)
        case = f"case_{i:03d}"
        write_array(root / "images" / f"{case}.nii.gz", image, **geom)
        write_array(root / "masks" / f"{case}.nii.gz", mask, **geom)
        rows.append(
            [case, f"images/{case}.nii.gz", f"masks/{case}.nii.gz", int(labels[i]), split[i]]
        )
    with (root / "manifest.csv").open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["id", "image", "mask", "label", "split"])
        writer.writerows(rows)
    write_ct_dataset_json(
        root,
        name="phantom_cls3d",
        description=(
            "Synthetic lesion-classification CT phantom (medssl data phantom --kind cls3d): "
            "benign = smooth round homogeneous lesion, malignant = lobulated/spiculated "
            "heterogeneous lesion; sizes and contrasts overlap"
        ),
        labels=CLS_LABELS,
        n_training=n,
        seed=seed,
        manifest="manifest.csv",
    )
    return {
        "shape_xyz": list(CLS_SHAPE),
        "spacing_mm": list(CLS_SPACING),
        "malignant": int(labels.sum()),
        "benign": int(n - labels.sum()),
        "val": split.count("val"),
    }
