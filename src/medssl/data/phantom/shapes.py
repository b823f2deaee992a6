"""Pure geometric and intensity helpers shared by every phantom kind.

Each helper is small and deterministic given its generator, so the kinds are built from the
same few pieces: smooth random fields (deformation, texture, bias), ellipsoids and segments
as level functions, rotations, and the CT intensity model (HU constants, bias, noise, int16).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

# Shared CT intensities (HU); organ means are drawn around these per case.
AIR_HU = -1000.0
FAT_HU = -100.0
TISSUE_HU = 30.0


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


def scan_ct(
    image_hu: np.ndarray, rng: np.random.Generator, bias_sigma: float, noise_sd: tuple[float, float]
) -> np.ndarray:
    """What the scanner adds to ideal HU: a faint bias field, noise of a per-case sd, int16.

    The draws come in a fixed order (bias field, noise sd, noise), which every CT kind shares.
    """
    image = apply_bias(image_hu, bias_field(image_hu.shape, rng, 0.008, bias_sigma))
    return to_int16_hu(add_noise(image, rng, rng.uniform(*noise_sd)))


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


def _per_axis(values: ArrayLike, coords: np.ndarray) -> np.ndarray:
    """One float32 value per axis, shaped to broadcast against a ``(ndim, *shape)`` grid."""
    return np.asarray(values, dtype=np.float32).reshape(
        (coords.shape[0],) + (1,) * (coords.ndim - 1)
    )


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
    rel = coords - _per_axis(centre, coords)
    if rotation is not None:  # rel <- R^T rel, written out: tensordot copies the whole grid
        rel = np.stack(
            [sum(float(rotation[j, i]) * rel[j] for j in range(ndim)) for i in range(ndim)]
        )
    scaled = rel / _per_axis(radii, coords)
    return np.sqrt((scaled**2).sum(axis=0))


def blob(level: np.ndarray, wobble: np.ndarray | None = None, amount: float = 0.0) -> np.ndarray:
    """Boolean mask ``level < 1 + amount * wobble``: an ellipsoid with a smoothly bumpy surface."""
    if wobble is None or amount == 0.0:
        return level < 1.0
    return level < 1.0 + amount * wobble


def segment_distance(coords: np.ndarray, a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Distance of every grid point to the segment ``a``-``b`` (same units as ``coords``)."""
    a = _per_axis(a, coords)
    ab = _per_axis(b, coords) - a
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
