"""MONAI's ImageReader over medssl's readers, so LoadImage(d) gets the same IO and errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from monai.data import ImageReader
from monai.utils import MetaKeys, SpaceKeys, ensure_tuple

from medssl.data.io._common import suffix_of
from medssl.data.io.formats import READ_SUFFIXES, read_image
from medssl.data.io.image import MedImage
from medssl.errors import file_error


class MedsslReader(ImageReader):
    """A MONAI ImageReader over :func:`read_image`: LoadImage(d) gets medssl's IO and errors.

    Several paths are the channels of one image (nnU-Net ``_0000``, ``_0001``): they must share
    one grid. The output follows MONAI's own readers: spatial axes in (x, y, z) order, channels
    stacked on axis 0 (``original_channel_dim`` 0), NaN for one scalar image, -1 for RGB.
    """

    def verify_suffix(self, filename: Sequence[str | Path] | str | Path) -> bool:
        return all(
            Path(f).is_dir() or suffix_of(Path(f)) in READ_SUFFIXES for f in ensure_tuple(filename)
        )

    def read(self, data: Sequence[str | Path] | str | Path) -> list[MedImage]:
        return [read_image(f) for f in ensure_tuple(data)]

    def get_data(self, img: MedImage | Sequence[MedImage]) -> tuple[np.ndarray, dict]:
        images = [img] if isinstance(img, MedImage) else list(img)
        first = images[0]
        for other in images[1:]:
            _check_same_grid(first, other)
        if len(images) == 1:
            array = first.array
            channel_dim: float = float("nan") if first.components == 1 else -1
        elif first.components == 1:
            array, channel_dim = np.stack([i.array for i in images], axis=0), 0
        else:
            array, channel_dim = np.concatenate([i.array for i in images], axis=-1), -1
        affine = first.affine_ras()
        meta = {
            MetaKeys.AFFINE: affine,
            MetaKeys.ORIGINAL_AFFINE: affine.copy(),
            MetaKeys.SPATIAL_SHAPE: np.asarray(first.spatial_shape),
            MetaKeys.SPACE: SpaceKeys.RAS,
            MetaKeys.ORIGINAL_CHANNEL_DIM: channel_dim,
            "spacing": np.asarray(first.spacing),
            "filename_or_obj": str(first.path),
        }
        return array, meta


def _check_same_grid(first: MedImage, other: MedImage) -> None:
    """Channels of one image: same grid and same kind of voxel, or the stack is meaningless."""
    name = Path(first.path).name if first.path else "the first channel"
    if other.spatial_shape != first.spatial_shape or other.components != first.components:
        raise file_error(
            other.path,
            f"shape {other.array.shape} differs from {name} {first.array.shape}",
            "channels of one case must share one grid: resample them onto one",
        )
    if not np.allclose(other.affine_ras(), first.affine_ras()):
        raise file_error(
            other.path,
            f"geometry (spacing/origin/direction) differs from {name}",
            "channels of one case must share one grid: resample them onto one",
        )
