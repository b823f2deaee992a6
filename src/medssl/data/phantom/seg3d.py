"""seg3d: abdomen-like CT with liver, paired kidneys and hypodense lesions (nnU-Net v2 layout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from medssl.data.phantom.files import ct_geometry, write_array, write_ct_dataset_json
from medssl.data.phantom.seeding import case_rng
from medssl.data.phantom.shapes import (
    AIR_HU,
    FAT_HU,
    TISSUE_HU,
    blob,
    ellipsoid_level,
    mm_grid,
    random_rotation,
    scan_ct,
    smooth_field,
    warp_coords,
)

SEG_SHAPE = (64, 64, 48)
SEG_SPACING = (1.5, 1.5, 2.0)
SEG_LABELS = {"background": 0, "liver": 1, "kidney": 2, "lesion": 3}
DEFAULT_CASES = 24
MIN_CASES = 2  # one labelled case and one for the unlabelled pool

SUMMARY = (
    "Abdomen-like CT volumes (int16 HU, 64x64x48 at 1.5x1.5x2.0 mm, non-trivial origin) in "
    "the nnU-Net v2 raw layout. Elliptical body with a fat layer, soft tissue with smooth "
    "texture, a bright spine and aorta, a liver (label 1, ~65 HU), paired kidneys (label 2, "
    "~85 HU), an unlabelled spleen-like distractor with liver-like HU, and 1-3 lesions "
    "(label 3) inside the organs, 15-30 HU darker than their organ. Shapes are ellipsoids "
    "deformed by a smooth random displacement field; a multiplicative bias field and "
    "Gaussian noise (sd 20-28 HU) are added. The first half of the cases have labels in "
    "labelsTr/; the rest are only in imagesTr/ and form the unlabelled pool."
)


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

    image = scan_ct(image, rng, bias_sigma=12.0, noise_sd=(20, 28))

    label = np.zeros(SEG_SHAPE, dtype=np.uint8)
    label[liver] = SEG_LABELS["liver"]
    label[kidneys] = SEG_LABELS["kidney"]
    for mask, _ in lesions:
        label[mask] = SEG_LABELS["lesion"]
    return image, label


def write_seg3d(root: Path, n: int, seed: int) -> dict:
    """nnU-Net v2 raw layout; the first ``n - n // 2`` cases labelled, the rest unlabelled."""
    n_labelled = n - n // 2
    (root / "imagesTr").mkdir()
    (root / "labelsTr").mkdir()
    for i in range(n):
        rng = case_rng(seed, "seg3d", i)
        image, label = seg3d_case(rng)
        geom = ct_geometry(rng, SEG_SPACING, SEG_SHAPE)
        case = f"phantom_{i:03d}"
        write_array(root / "imagesTr" / f"{case}_0000.nii.gz", image, **geom)
        if i < n_labelled:
            write_array(root / "labelsTr" / f"{case}.nii.gz", label, **geom)
    params = {
        "shape_xyz": list(SEG_SHAPE),
        "spacing_mm": list(SEG_SPACING),
        "labelled": n_labelled,
        "unlabelled": n - n_labelled,
    }
    write_ct_dataset_json(
        root,
        name="phantom_seg3d",
        description=(
            "Synthetic abdomen-like CT phantom (medssl data phantom --kind seg3d): int16 HU, "
            "liver, paired kidneys and hypodense lesions; cases without a label file are the "
            "unlabelled pool"
        ),
        labels=SEG_LABELS,
        n_training=n_labelled,
        seed=seed,
    )
    return params
