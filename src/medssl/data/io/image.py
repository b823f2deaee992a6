"""The image model every reader returns: voxels in (x, y[, z]) order plus ITK/LPS geometry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(eq=False, repr=False)
class MedImage:
    """Voxels plus the physical geometry needed to write a prediction back onto the input grid.

    ``array`` has the spatial axes first in (x, y[, z]) order (the nibabel / ITK index order,
    the transpose of ``SimpleITK.GetArrayFromImage``); multi-component images (RGB) carry a
    trailing component axis. ``spacing`` (mm), ``origin`` and ``direction`` (columns = axes)
    follow ITK's LPS convention.
    """

    array: np.ndarray
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: np.ndarray
    path: Path | None = None

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        self.spacing = tuple(float(s) for s in self.spacing)
        self.origin = tuple(float(o) for o in self.origin)
        self.direction = np.asarray(self.direction, dtype=np.float64)
        d = len(self.spacing)
        if (
            d not in (2, 3)
            or len(self.origin) != d
            or self.direction.shape != (d, d)
            or self.array.ndim not in (d, d + 1)
        ):
            raise ValueError(
                f"inconsistent MedImage: array {self.array.shape}, spacing {self.spacing}, "
                f"origin {self.origin}, direction {self.direction.shape}"
            )

    def __repr__(self) -> str:
        return (
            f"MedImage(shape={self.array.shape}, dtype={self.array.dtype}, "
            f"spacing={self.spacing}, origin={self.origin}, path={self.path})"
        )

    @property
    def spatial_dims(self) -> int:
        return len(self.spacing)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape[: self.spatial_dims])

    @property
    def components(self) -> int:
        return 1 if self.array.ndim == self.spatial_dims else int(self.array.shape[-1])

    @classmethod
    def from_array(
        cls,
        array: np.ndarray,
        spacing: Sequence[float] | None = None,
        origin: Sequence[float] | None = None,
        direction: np.ndarray | None = None,
    ) -> MedImage:
        """An image with default geometry (1 mm, origin 0, identity) where none is given.

        The number of spatial axes comes from ``spacing``/``origin``/``direction`` when given;
        otherwise a 3-D array whose last axis has size 3 or 4 is a 2-D RGB(A) image and any
        other array is scalar (pass ``spacing`` to make a 3-slice volume unambiguous).
        """
        array = np.asarray(array)
        d = _spatial_dims_of(array, spacing, origin, direction)
        return cls(
            array,
            tuple(spacing) if spacing is not None else (1.0,) * d,
            tuple(origin) if origin is not None else (0.0,) * d,
            np.asarray(direction) if direction is not None else np.eye(d),
        )

    def affine_ras(self) -> np.ndarray:
        """4x4 voxel -> world affine in RAS (nibabel / MONAI); a 2-D image is embedded as 3-D."""
        d = self.spatial_dims
        direction, spacing, origin = np.eye(3), np.ones(3), np.zeros(3)
        direction[:d, :d] = self.direction
        spacing[:d] = self.spacing
        origin[:d] = self.origin
        affine = np.eye(4)
        affine[:3, :3] = direction * spacing
        affine[:3, 3] = origin
        affine[:2] *= -1.0  # LPS -> RAS
        return affine

    def with_array(self, array: np.ndarray) -> MedImage:
        """Same geometry, new voxels: how a prediction gets the input's grid for writing."""
        array = np.asarray(array)
        if tuple(array.shape[: self.spatial_dims]) != self.spatial_shape or array.ndim not in (
            self.spatial_dims,
            self.spatial_dims + 1,
        ):
            raise ValueError(f"array {array.shape} does not fit the grid {self.spatial_shape}")
        return MedImage(array, self.spacing, self.origin, self.direction.copy())


def _spatial_dims_of(
    array: np.ndarray,
    spacing: Sequence[float] | None,
    origin: Sequence[float] | None,
    direction: np.ndarray | None,
) -> int:
    for given in (spacing, origin):
        if given is not None:
            return len(given)
    if direction is not None:
        return int(np.asarray(direction).shape[0])
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        return 2
    return array.ndim


@dataclass(eq=False)
class ImageHeader:
    """An image's geometry without its voxels: what ``data check`` compares across a dataset."""

    path: Path
    spatial_shape: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: np.ndarray
    dtype: str
    components: int

    @property
    def spatial_dims(self) -> int:
        return len(self.spatial_shape)


def flip_index_order(array: np.ndarray, spatial_dims: int) -> np.ndarray:
    """(z, y, x[, c]) <-> (x, y, z[, c]): reverse the spatial axes, keep a component axis last."""
    axes = tuple(reversed(range(spatial_dims))) + tuple(range(spatial_dims, array.ndim))
    return array.transpose(axes)
