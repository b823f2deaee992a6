"""MONAI dictionary-transform pipelines per task, with the defaults a user would expect.

Segmentation: load through :class:`medssl.data.io.MedsslReader` (one IO path, one error policy),
channel first, RAS orientation, optional resampling to a target spacing, intensity normalisation
(CT window to [0, 1] or per-channel z-score for MRI and photographs), padding to the patch size,
then patch sampling with foreground oversampling (nnU-Net's one third) and light augmentation.
A 2D network on 3D volumes samples axial slices: a (H, W, 1) patch whose last axis is squeezed.

The deterministic prefix (up to normalisation) is what MONAI's CacheDataset caches; the random
suffix runs every step. Inference uses only the deterministic prefix, so Invertd can map a
prediction back to the input's grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from monai import transforms as mt
from monai.data import MetaTensor
from monai.utils import ImageMetaKey, ensure_tuple

from medssl.data.io import MedsslReader

IMAGE, LABEL = "image", "label"


class LoadMedImaged(mt.MapTransform):
    """Load through :class:`MedsslReader` only.

    MONAI's ``LoadImaged`` retries every other reader when the given one fails, which turns a
    clear "truncated file" DataError into a wall of tracebacks; this keeps medssl's error.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        super().__init__(keys)
        self.reader = MedsslReader()

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            array, meta = self.reader.get_data(self.reader.read(d[key]))
            meta[ImageMetaKey.FILENAME_OR_OBJ] = str(ensure_tuple(d[key])[0])
            d[key] = MetaTensor.ensure_torch_and_prune_meta(
                np.asarray(array, dtype=np.float32), meta
            )
        return d


def intensity_kind(channel_names: dict[str, str], requested: str) -> str:
    """``ct`` when the channels say CT, else ``mri`` (z-score); explicit choices win."""
    if requested != "auto":
        return requested
    names = " ".join(channel_names.values()).lower()
    return "ct" if "ct" in names.split() or names.strip() == "ct" else "mri"


def normalise(kind: str, keys: Sequence[str], ct_window: tuple[float, float]) -> list:
    if kind == "ct":
        lo, hi = ct_window
        return [mt.ScaleIntensityRanged(keys, a_min=lo, a_max=hi, b_min=0.0, b_max=1.0, clip=True)]
    if kind == "mri":
        return [mt.NormalizeIntensityd(keys, channel_wise=True)]
    return []


def load_and_normalise(
    with_label: bool,
    intensity: str = "mri",
    target_spacing: Sequence[float] | None = None,
    ct_window: tuple[float, float] = (-175.0, 250.0),
    data_dims: int = 3,
) -> list:
    """The deterministic, invertible prefix shared by training, validation and inference."""
    keys = [IMAGE, LABEL] if with_label else [IMAGE]
    steps: list = [
        LoadMedImaged(keys),
        mt.EnsureChannelFirstd(keys),
    ]
    if data_dims == 3:
        steps.append(mt.Orientationd(keys, axcodes="RAS", labels=None))
    if target_spacing:
        modes = ("bilinear", "nearest") if with_label else ("bilinear",)
        steps.append(mt.Spacingd(keys, pixdim=list(target_spacing), mode=modes))
    steps += normalise(intensity, [IMAGE], ct_window)
    steps.append(mt.EnsureTyped(keys, track_meta=True))
    return steps


def random_patches(
    patch_size: Sequence[int],
    with_label: bool,
    slice_2d: bool,
    foreground_ratio: float = 0.33,
    augment: bool = True,
    num_samples: int = 1,
) -> list:
    """Padding, patch sampling and augmentation: the random suffix of a training pipeline.

    ``slice_2d``: the data are 3D but the network is 2D; ``patch_size`` is (H, W) and a one-voxel
    deep patch is cut and squeezed.
    """
    keys = [IMAGE, LABEL] if with_label else [IMAGE]
    roi = list(patch_size) + [1] if slice_2d else list(patch_size)
    steps: list = [mt.SpatialPadd(keys, spatial_size=roi)]
    if with_label:
        pos = max(foreground_ratio, 1e-3)
        steps.append(
            mt.RandCropByPosNegLabeld(
                keys,
                label_key=LABEL,
                spatial_size=roi,
                pos=pos,
                neg=max(1.0 - pos, 0.0),
                num_samples=num_samples,
                allow_smaller=False,
            )
        )
    else:
        steps.append(
            mt.RandSpatialCropSamplesd(
                keys, roi_size=roi, num_samples=num_samples, random_size=False
            )
        )
    if slice_2d:
        steps.append(mt.SqueezeDimd(keys, dim=-1))
    if augment:
        dims = len(patch_size)
        steps += [mt.RandFlipd(keys, prob=0.5, spatial_axis=a) for a in range(dims)]
        steps += [
            mt.RandScaleIntensityd(IMAGE, factors=0.1, prob=0.3),
            mt.RandShiftIntensityd(IMAGE, offsets=0.1, prob=0.3),
            mt.RandGaussianNoised(IMAGE, std=0.05, prob=0.15),
        ]
    return steps
