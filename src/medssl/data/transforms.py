"""MONAI dictionary-transform pipelines per task, with the defaults a user would expect.

Segmentation: load through :class:`medssl.data.io.MedsslReader` (one IO path, one error policy),
channel first, RAS orientation, optional resampling to a target spacing, intensity normalisation
(CT window to [0, 1] or per-channel z-score for MRI and photographs), padding to the patch size,
then padding and foreground indices (cached), patch sampling with foreground oversampling
(nnU-Net's one third) and augmentation (flips, 90-degree turns, a small affine in 2D).
A 2D network on 3D volumes samples axial slices: a (H, W, 1) patch whose last axis is squeezed.

The deterministic prefix (up to normalisation) is what MONAI's CacheDataset caches; the random
suffix runs every step. Inference uses only the deterministic prefix, so Invertd can map a
prediction back to the input's grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from monai import transforms as mt
from monai.data import MetaTensor, get_track_meta, set_track_meta
from monai.utils import ImageMetaKey, ensure_tuple

from medssl.data.derived import DerivedChannelsd
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
    if kind == "minmax":  # per image and channel to [0, 1] (SSL4MIS's ACDC preprocessing)
        return [mt.ScaleIntensityd(keys, minv=0.0, maxv=1.0, channel_wise=True)]
    return []


def load_and_normalise(
    with_label: bool,
    intensity: str = "mri",
    target_spacing: Sequence[float] | None = None,
    ct_window: tuple[float, float] = (-175.0, 250.0),
    data_dims: int = 3,
    derived_channels: Sequence[str] = (),
    network_dims: int | None = None,
    slice_size: Sequence[int] | None = None,
) -> list:
    """The deterministic, invertible prefix shared by training, validation and inference.

    ``derived_channels``: append these derivations of the image as extra channels
    (:mod:`medssl.data.derived`; KP-Net's ``edge``), in-plane when a 2D network
    (``network_dims`` 2) reads 3D volumes. ``slice_size``: resize
    every slice (the first two axes) to this size and keep the slice count, as SSL4MIS zooms each
    ACDC slice to 256x256: when the spacing is unknown, the field of view is the scale that
    matches across scanners.
    """
    keys = [IMAGE, LABEL] if with_label else [IMAGE]
    steps: list = [
        LoadMedImaged(keys),
        mt.EnsureChannelFirstd(keys),
    ]
    if data_dims == 3 and network_dims != 2:
        # A 2D network reads the slices as acquired (the file's last axis): reorienting first
        # would turn a coronal single-slice file (160x192x1) into 160x1x192 and cut rows.
        steps.append(mt.Orientationd(keys, axcodes="RAS", labels=None))
    if target_spacing:
        modes = ("bilinear", "nearest") if with_label else ("bilinear",)
        steps.append(mt.Spacingd(keys, pixdim=list(target_spacing), mode=modes))
    if slice_size:
        steps.append(resize_slices(keys, slice_size, data_dims))
    steps += normalise(intensity, [IMAGE], ct_window)
    if derived_channels:
        in_plane = data_dims == 3 and network_dims == 2
        steps.append(DerivedChannelsd(IMAGE, derived_channels, in_plane=in_plane))
    steps.append(mt.EnsureTyped(keys, track_meta=True))
    return steps


def resize_slices(keys: Sequence[str], slice_size: Sequence[int], data_dims: int) -> mt.Resized:
    """Resize the first two axes to ``slice_size`` (linear for the image, nearest for labels),
    leaving a third axis as it is; invertible, so predictions map back to the input grid."""
    if len(slice_size) != 2:
        raise ValueError(f"slice_size {list(slice_size)}: give two numbers (height, width)")
    size = list(slice_size) + [-1] * (data_dims - 2)
    linear = "bilinear" if data_dims == 2 else "trilinear"
    modes = [linear, "nearest"][: len(keys)]
    smooth = [True, False][: len(keys)]  # smooth the image when shrinking, never the labels
    return mt.Resized(keys, spatial_size=size, mode=modes, anti_aliasing=smooth)


SPATIAL_AUGMENTS = ("flip", "rot_flip", "affine", "ssl4mis")


def patch_prefix(patch_size: Sequence[int], with_label: bool, slice_2d: bool) -> list:
    """Deterministic part of patch sampling: pad to the patch, precompute foreground indices.

    Cached with the load/normalise prefix, so a random crop does not rescan the whole label map
    every step (MONAI's ``FgBgToIndicesd``); that rescan was most of a 2D-on-3D step's data wait.
    """
    keys = [IMAGE, LABEL] if with_label else [IMAGE]
    roi = list(patch_size) + [1] if slice_2d else list(patch_size)
    steps: list = [mt.SpatialPadd(keys, spatial_size=roi)]
    if with_label:
        steps.append(mt.FgBgToIndicesd(LABEL, fg_postfix="_fg", bg_postfix="_bg"))
    return steps


def random_patches(
    patch_size: Sequence[int],
    with_label: bool,
    slice_2d: bool,
    foreground_ratio: float = 0.33,
    augment: bool = True,
    num_samples: int = 1,
    spatial_augment: str = "flip",
    intensity_augment: bool = True,
) -> list:
    """Patch sampling and augmentation: the random suffix of a training pipeline (one
    :class:`WithoutMeta` step: the patches come out as plain tensors).

    Expects :func:`patch_prefix` before it. ``slice_2d``: the data are 3D but the network is 2D;
    ``patch_size`` is (H, W) and a one-voxel deep patch is cut and squeezed. ``spatial_augment``:
    ``flip`` (every axis), ``rot_flip`` (plus 90-degree turns in the first two axes when the
    patch is square there: UA-MT's and SSL4MIS's RandomRotFlip) or ``affine`` (plus a rotation
    of up to 20 degrees in that plane and 0.85-1.15 scaling, as SSL4MIS's random_rotate) or
    ``ssl4mis`` (SSL4MIS's RandomGenerator as written: one of a 90-degree turn plus a flip, a
    rotation of up to 20 degrees, or nothing). ``intensity_augment``: random intensity scale,
    shift and noise on top (SSL4MIS and UA-MT have none).
    """
    if spatial_augment not in SPATIAL_AUGMENTS:
        raise ValueError(f"spatial_augment {spatial_augment!r}: use one of {SPATIAL_AUGMENTS}")
    keys = [IMAGE, LABEL] if with_label else [IMAGE]
    roi = list(patch_size) + [1] if slice_2d else list(patch_size)
    if with_label:
        pos = max(foreground_ratio, 1e-3)
        steps: list = [
            mt.RandCropByPosNegLabeld(
                keys,
                label_key=LABEL,
                spatial_size=roi,
                pos=pos,
                neg=max(1.0 - pos, 0.0),
                num_samples=num_samples,
                fg_indices_key=f"{LABEL}_fg",
                bg_indices_key=f"{LABEL}_bg",
                allow_smaller=False,
            ),
            mt.DeleteItemsd([f"{LABEL}_fg", f"{LABEL}_bg"]),
        ]
    else:
        steps = [
            mt.RandSpatialCropSamplesd(
                keys, roi_size=roi, num_samples=num_samples, random_size=False
            )
        ]
    if slice_2d:
        steps.append(mt.SqueezeDimd(keys, dim=-1))
    if augment:
        steps += spatial_augmentation(keys, list(patch_size), spatial_augment)
    if augment and intensity_augment:
        steps += [
            mt.RandScaleIntensityd(IMAGE, factors=0.1, prob=0.3),
            mt.RandShiftIntensityd(IMAGE, offsets=0.1, prob=0.3),
            mt.RandGaussianNoised(IMAGE, std=0.05, prob=0.15),
        ]
    return [WithoutMeta(steps)]


class WithoutMeta(mt.Compose):
    """Run transforms with MONAI's metadata tracking off, and restore it afterwards.

    Training patches are never inverted, and tracking made each ACDC slice patch several times
    slower to cut and augment (6.7 ms with it, 1.0-3.0 ms without, measured beside a running
    benchmark); in the main process that was a third of a 2D step. Being randomisable, it also
    marks where CacheDataset stops caching.
    """

    def __call__(self, data: Any, *args: Any, **kwargs: Any) -> Any:
        previous = get_track_meta()
        set_track_meta(False)
        try:
            return super().__call__(data, *args, **kwargs)
        finally:
            set_track_meta(previous)


def spatial_augmentation(keys: list[str], patch_size: list[int], kind: str) -> list:
    """Flips on every axis; 90-degree turns and a small affine in the first two axes."""
    dims = len(patch_size)
    if kind == "ssl4mis":
        return [ssl4mis_augmentation(keys, dims, square=patch_size[0] == patch_size[1])]
    steps: list = [mt.RandFlipd(keys, prob=0.5, spatial_axis=a) for a in range(dims)]
    if kind in ("rot_flip", "affine") and patch_size[0] == patch_size[1]:
        steps.append(mt.RandRotate90d(keys, prob=0.5, max_k=3, spatial_axes=(0, 1)))
    if kind == "affine":
        angle = math.radians(20)
        steps.append(
            mt.RandAffined(
                keys,
                prob=0.3,
                rotate_range=[angle] if dims == 2 else [0.0, 0.0, angle],
                scale_range=[0.15] * dims,
                mode=["bilinear", "nearest"][: len(keys)],
                padding_mode="zeros",
            )
        )
    return steps


def ssl4mis_augmentation(keys: list[str], dims: int, square: bool) -> mt.OneOf:
    """SSL4MIS's ``RandomGenerator``: with probability 1/2 a 90-degree turn (k = 0..3) in the
    first two axes and a flip of one random axis, else with 1/2 a rotation of up to 20 degrees
    in that plane, else nothing. Labels are resampled by nearest neighbour (the original uses
    order 0 for the image too)."""
    turn_flip: list = [mt.RandAxisFlipd(keys, prob=1.0)]
    if square:  # a turn of a non-square patch would change its shape
        turn_flip.insert(0, mt.RandRotate90d(keys, prob=1.0, max_k=3, spatial_axes=(0, 1)))
    angle = math.radians(20)
    rotate = mt.RandRotated(
        keys,
        range_x=angle if dims == 2 else 0.0,
        range_z=angle if dims == 3 else 0.0,
        prob=1.0,
        mode=["bilinear", "nearest"][: len(keys)],
        padding_mode="zeros",
        keep_size=True,
    )
    return mt.OneOf([mt.Compose(turn_flip), rotate, mt.Identityd(keys)], weights=[0.5, 0.25, 0.25])


def array_to_unit(channel_last: bool = False) -> list:
    """An in-memory uint8 image (MedMNIST) channel first (``channel_last``: RGB's trailing axis)
    and scaled from 0-255 to [0, 1]: how classification and pretraining read such arrays."""
    return [
        mt.EnsureChannelFirstd(IMAGE, channel_dim=-1 if channel_last else "no_channel"),
        mt.ScaleIntensityRanged(IMAGE, a_min=0.0, a_max=255.0, b_min=0.0, b_max=1.0),
    ]


def classification_pipeline(
    size: Sequence[int],
    from_array: bool,
    intensity: str = "mri",
    ct_window: tuple[float, float] = (-175.0, 250.0),
    augment: bool = False,
    derived_channels: Sequence[str] = (),
    region: Sequence[Any] = (),
) -> mt.Compose:
    """Whole-image classification: load (or take a MedMNIST array), normalise, resize, add the
    derived channels, augment.

    In-memory arrays (MedMNIST, uint8 without a channel axis) are scaled to [0, 1]; files follow
    the CT window / z-score rule of segmentation. ``region``: steps that crop the image to a
    region of interest after normalisation and add its ``lesion`` mask, which is then resized
    (nearest) and augmented with the image.
    """
    if from_array:
        steps: list = array_to_unit()
    else:
        steps = [LoadMedImaged([IMAGE]), mt.EnsureChannelFirstd(IMAGE)]
        steps += normalise(intensity, [IMAGE], ct_window)
    steps += list(region)
    keys, modes = ([IMAGE, "lesion"], ["area", "nearest"]) if region else ([IMAGE], ["area"])
    steps.append(mt.Resized(keys, spatial_size=list(size), mode=modes))
    if derived_channels:
        steps.append(DerivedChannelsd(IMAGE, derived_channels, in_plane=False))
    if augment:
        dims = len(size)
        steps += [mt.RandFlipd(keys, prob=0.5, spatial_axis=a) for a in range(dims)]
        steps += [
            mt.RandAffined(
                keys,
                prob=0.3,
                rotate_range=[0.2] * (1 if dims == 2 else 3),
                scale_range=0.1,
                mode=["bilinear", "nearest"][: len(keys)],
            ),
            mt.RandGaussianNoised(IMAGE, std=0.03, prob=0.2),
        ]
    steps.append(mt.EnsureTyped(keys, track_meta=False))
    return mt.Compose(steps)
