"""Segmentation defaults planned from the fingerprint, in the manner of nnU-Net.

Decisions, each with its reason in the plan: 2D or 3D (thin or strongly anisotropic volumes are
trained on slices); the target spacing (the median; for an anisotropic volume trained in 3D, the
10th percentile of the coarse axis, as nnU-Net); the field of view a patch must cover (the median
bounding box of the foreground with a margin, at most the median image); on the ``cpu`` profile the
spacing coarsened until that field fits the profile's patch budget (at most :attr:`Budget.coarsen`
times); the patch grown towards the whole image within the budget; network depth so that the
bottleneck keeps at least 4 voxels per axis, widths doubling from the profile's base; batch, steps,
learning rate; intensity normalisation from the modality (CT: the foreground's 0.5-99.5 %
window; anything else: z-score per channel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from medssl.data.dataset import Dataset
from medssl.data.fingerprint import Fingerprint

MARGIN = 1.25  # the field of view around the median foreground box
MIN_BOTTLENECK = 4  # voxels per axis at the deepest level (nnU-Net)
MAX_POOLS = 4  # five levels at most
THIN = 24  # fewer slices than this: train on slices
ANISOTROPIC = 3.0  # nnU-Net's threshold on the largest / smallest spacing


@dataclass(frozen=True)
class Budget:
    """What one profile may spend per run at the network's dimensions."""

    voxels: int  # patch voxels (pixels in 2D)
    batch: int  # labelled (and unlabelled) patches per step
    steps: int
    lr: float  # SGD, poly schedule
    base: int  # first level width, doubled per level up to ``cap``
    cap: int
    res_units: int
    coarsen: float  # the most the median spacing may be coarsened to fit the field of view
    net: str = "unet"  # MONAI's UNet (first level strided) or "ssl4mis_unet" (full resolution)


BUDGETS: dict[tuple[str, int], Budget] = {
    # cpu: a supervised run of several minutes and a semi-supervised one of tens on 2 cores;
    # 0.02 / 0.1 are the steps the LA and ACDC cpu protocols learn with in a short schedule
    ("cpu", 3): Budget(64**3, 2, 2000, 0.02, 16, 128, 1, 4.0),
    # cpu 2D: a full-resolution first level (SSL4MIS's UNet, as nnU-Net's 2D) at 128x128 costs
    # about what MONAI's strided UNet costs at 160x160 twice over, and on ACDC it is worth
    # about 10 Dice (docs/RESULTS.md, plan-check)
    ("cpu", 2): Budget(128**2, 8, 3000, 0.1, 16, 256, 1, 4.0, net="ssl4mis_unet"),
    # gpu: the published scale (UA-MT / SSL4MIS schedules, nnU-Net-sized patches), native spacing
    ("gpu", 3): Budget(128**3, 2, 6000, 0.01, 32, 320, 2, 1.0),
    ("gpu", 2): Budget(512**2, 12, 30000, 0.01, 32, 512, 2, 1.0),
}


def plan_segmentation(
    fp: Fingerprint, dataset: Dataset, profile: str, requested_dims: int | None
) -> tuple[int, dict[str, Any], list[str]]:
    """(network dims, config values, reasons) for ``profile`` (``cpu`` or ``gpu``)."""
    reasons: list[str] = []
    dims = choose_dims(fp, dataset, requested_dims, reasons)
    budget = BUDGETS[(profile, dims)]
    shape = fp.shape.median[:dims]
    data: dict[str, Any] = {}
    if fp.spacing_known:
        spacing = target_spacing(fp, dims, reasons)
        shape = [n * s / t for n, s, t in zip(shape, fp.spacing.median, spacing, strict=False)]
        fov = field_of_view(fp, spacing, shape, dims)
        coarsen = min(budget.coarsen, max(1.0, (math.prod(fov) / budget.voxels) ** (1 / dims)))
        if coarsen > 1.0:
            spacing = [s * coarsen for s in spacing]
            shape, fov = [n / coarsen for n in shape], [n / coarsen for n in fov]
            reasons.append(
                f"spacing coarsened x{coarsen:.2f} to {_axes(spacing, 3)} mm so that the median "
                f"foreground box and a margin fit the {profile} patch budget "
                f"({budget.voxels} voxels)"
            )
        varies = fp.spacing.p10[:dims] != fp.spacing.p90[:dims]
        if coarsen > 1.0 or varies or spacing != fp.spacing.median[:dims]:
            keep = [0.0] * (fp.file_dims - dims)  # <= 0: that axis keeps its spacing (slices)
            data["target_spacing"] = [round(s, 4) for s in spacing] + keep
        else:
            reasons.append(f"native spacing {_axes(spacing, 3)} mm kept (every case has it)")
    elif dims == 2 and fp.file_dims == 3 and fp.shape.p10[:2] != fp.shape.p90[:2]:
        side = _square_side(budget.voxels, shape)
        data["slice_size"] = [side, side]
        shape = fov = [side, side]
        reasons.append(
            f"no spacing and slices of different sizes: every slice zoomed to {side}x{side} "
            "(SSL4MIS zooms ACDC's to 256x256)"
        )
    else:
        box = fp.foreground_bbox_mm or shape
        fov = [min(n, b * MARGIN) for n, b in zip(shape, box, strict=False)]
        reasons.append("no spacing: the voxel grid is kept")
    patch, pools = fit_patch(fov, shape, budget.voxels)
    reasons.append(
        f"patch {_axes(patch)} (median image {_axes([round(n) for n in shape])} at the planned "
        f"spacing), {pools} poolings to a {_axes([p // 2**pools for p in patch])} bottleneck"
    )
    channels = [min(budget.base * 2**i, budget.cap) for i in range(pools + 1)]
    reasons.append(
        f"network {budget.net} {'-'.join(map(str, channels))}, batch {budget.batch}, "
        f"{budget.steps} steps, SGD {budget.lr} poly ({profile} budget)"
    )
    data.update(intensity_plan(fp, reasons))
    data.update(
        {
            "patch_size": patch,
            "batch_size": budget.batch,
            "unlabeled_batch_size": budget.batch,
        }
    )
    config = {
        "data": data,
        "net": {
            "name": budget.net,
            "channels": channels,  # a 2x downsampling between levels (MONAI's: in each level)
            "num_res_units": budget.res_units,  # MONAI's UNet only
        },
        "optim": {"lr": budget.lr},
        "train": {"max_steps": budget.steps, "val_every": max(1, budget.steps // 10)},
    }
    return dims, config, reasons


def choose_dims(
    fp: Fingerprint, dataset: Dataset, requested: int | None, reasons: list[str]
) -> int:
    if requested:
        reasons.append(f"{requested}D: data.spatial_dims asks for it")
        return requested
    slices = fp.shape.median[-1]
    if fp.file_dims == 2 or dataset.spatial_dims == 2 or slices <= 1:
        reasons.append("2D: the images are 2D")
        return 2
    if slices < THIN:
        reasons.append(f"2D on slices: a median of {slices:g} slices is too thin for 3D patches")
        return 2
    if fp.spacing_known and fp.anisotropy > ANISOTROPIC:
        reasons.append(
            f"2D on slices: spacing {fp.anisotropy:.1f}x coarser across slices than within "
            f"them (nnU-Net's threshold {ANISOTROPIC:g})"
        )
        return 2
    reasons.append("3D: volumes with enough slices at near-isotropic spacing")
    return 3


def target_spacing(fp: Fingerprint, dims: int, reasons: list[str]) -> list[float]:
    """The median spacing; for an anisotropic 3D plan the coarse axis takes the 10th percentile
    of its spacings (nnU-Net: resampling the thinnest slices to the median would blur them)."""
    spacing = list(fp.spacing.median[:dims])
    if dims == 3 and fp.anisotropy > ANISOTROPIC:
        axis = spacing.index(max(spacing))
        spacing[axis] = fp.spacing.p10[axis]
        reasons.append(
            f"anisotropic spacing ({fp.anisotropy:.1f}x): axis {axis} at its 10th percentile "
            f"{spacing[axis]:g} mm, the others at the median"
        )
    return spacing


def field_of_view(
    fp: Fingerprint, spacing: list[float], shape: list[float], dims: int
) -> list[float]:
    """Voxels per axis the patch should cover: the median foreground box with a margin, at
    most the median image."""
    box = fp.foreground_bbox_mm
    if not box:
        return list(shape)
    return [min(n, b / s * MARGIN) for n, b, s in zip(shape, box[:dims], spacing, strict=False)]


def fit_patch(fov: list[float], shape: list[float], voxels: int) -> tuple[list[int], int]:
    """A patch covering ``fov`` grown towards ``shape`` within ``voxels``, in multiples of the
    network's factor; returns it with the number of poolings."""
    patch = [max(1.0, min(f, n)) for f, n in zip(fov, shape, strict=False)]
    if math.prod(patch) > voxels:  # the field does not fit: shrink it evenly
        patch = [p * (voxels / math.prod(patch)) ** (1 / len(patch)) for p in patch]
    while math.prod(patch) < voxels:  # more context: grow the axes still below the image
        growable = [i for i, (p, n) in enumerate(zip(patch, shape, strict=False)) if p < n]
        if not growable:
            break
        for i in growable:
            patch[i] = min(shape[i], patch[i] * 1.05)
    pools = max(1, min(MAX_POOLS, *(int(math.log2(max(p, 2) / MIN_BOTTLENECK)) for p in patch)))
    factor = 2**pools
    fitted = [max(factor, round(p / factor) * factor) for p in patch]
    while math.prod(fitted) > voxels * 1.15:  # rounding up may overshoot the budget
        largest = max(range(len(fitted)), key=lambda i: fitted[i])
        if fitted[largest] <= factor:
            break
        fitted[largest] -= factor
    return fitted, pools


def intensity_plan(fp: Fingerprint, reasons: list[str]) -> dict[str, Any]:
    if fp.is_ct and fp.intensity:
        window = [fp.intensity[0].p00_5, fp.intensity[0].p99_5]
        reasons.append(f"CT: window {window[0]:g} .. {window[1]:g} HU (foreground 0.5-99.5 %)")
        return {"intensity": "ct", "ct_window": window}
    names = ", ".join(fp.modality.values()) or "not CT"
    reasons.append(f"z-score per channel ({names}; nnU-Net's normalisation for non-CT)")
    return {"intensity": "mri"}


def _square_side(voxels: int, shape: list[float]) -> int:
    side = min(int(math.sqrt(voxels)), int(max(shape)))
    return max(16, side // 16 * 16)


def _axes(values: list[float] | list[int], digits: int = 0) -> str:
    return "x".join(f"{v:.{digits}f}" if digits else str(int(v)) for v in values)
