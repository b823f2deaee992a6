"""The lesion in its context: what a lesion-aware classifier (BKC-Net) reads besides the image.

Two inputs, each asked for by the method (:class:`LesionInputs`):

- **a region of interest**: the image cropped to a box around the lesion, widened on every side
  by ``context_margin`` times the lesion's largest extent so that the surrounding tissue is in
  view (BKC-Net's focus-perceive input; ``0``: the lesion's own box), with the lesion mask
  cropped alike as a second key (``lesion``) for the segmentation that teaches the network where
  to look. The box is a cube (square) centred on the lesion, padded with zeros where it leaves
  the image, then resized to ``data.patch_size`` like any classification input.
- **radiomics**: one row of standardised pyradiomics features per case
  (:mod:`medssl.data.radiomics`), extracted once per case and cached in medssl's cache, the
  statistics taken on the training cases only (the run keeps them to standardise new cases).

Where the lesion is comes from the case (:func:`~medssl.data.radiomics.masks.case_lesion`): a
manifest's ``mask``, a position (``x``, ``y``[, ``z``], ``diameter_mm``), a label map, or the
volume itself when it is a binary shape volume (AdrenalMNIST3D).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import monai.transforms as mt
import numpy as np
import torch
from monai.data import MetaTensor

from medssl.data.dataset import Case, Dataset
from medssl.data.radiomics import (
    RadiomicsSettings,
    RadiomicsTable,
    Standardisation,
    dataset_table,
    standardise,
)
from medssl.data.radiomics.extract import lesion_roi
from medssl.data.radiomics.masks import case_lesion
from medssl.data.radiomics.table import default_cache_dir
from medssl.errors import ConfigError, file_error

IMAGE, LESION, RADIOMICS = "image", "lesion", "radiomics"
MIN_BOX = 8  # pixels (voxels) a side: a lesion of one pixel still gets some context


@dataclass(frozen=True)
class LesionInputs:
    """What a method reads besides the image: the lesion region (``context_margin`` not None)
    and radiomics features (``radiomics`` not None)."""

    context_margin: float | None = None
    radiomics: RadiomicsSettings | None = None

    @property
    def any(self) -> bool:
        return self.context_margin is not None or self.radiomics is not None


def lesion_spec(case: Case) -> Any:
    """The case's lesion as the region transform and the radiomics layer take it; a clear error
    when it has none."""
    spec = case_lesion(case)
    if spec is None:
        where = case.images[0] if case.images else case.id
        problem = f"case {case.id} has" if case.images else "has"
        raise file_error(
            where,
            f"{problem} no lesion mask or position",
            "give a mask column, x / y / diameter_mm (or diameter_px) columns, or label maps; "
            "or read whole images (method_config.context_margin: null)",
            ConfigError,
        )
    return spec


def context_box(mask: np.ndarray, margin: float) -> tuple[list[int], list[int]]:
    """``(start, end)`` of a cube around the lesion ``mask`` (spatial axes): centred on its
    bounding box, side = its largest extent times ``1 + 2 * margin``, at least ``MIN_BOX``;
    it may leave the image (the crop pads)."""
    where = np.argwhere(mask)
    low, high = where.min(axis=0), where.max(axis=0) + 1
    side = max(MIN_BOX, int(np.ceil((high - low).max() * (1.0 + 2.0 * margin))))
    centre = (low + high) / 2.0
    start = [int(np.floor(c - side / 2.0)) for c in centre]
    return start, [s + side for s in start]


class LesionRegiond(mt.MapTransform):
    """Turn ``lesion`` (a case's lesion spec) into its mask ``(1, *spatial)`` on the image's
    grid, then crop image and mask to :func:`context_box` (zero padding outside the image).
    ``spacing`` is the pixel size positions in mm are measured in (PNG files carry none)."""

    def __init__(self, margin: float, spacing: Sequence[float] | None = None) -> None:
        super().__init__([IMAGE, LESION])
        self.margin, self.spacing = float(margin), spacing
        self.cropper = mt.CropForeground(allow_smaller=False)

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        d = dict(data)
        image = d[IMAGE] if torch.is_tensor(d[IMAGE]) else torch.as_tensor(d[IMAGE])
        spatial = tuple(image.shape[1:])
        if self.spacing:
            spacing = tuple(float(s) for s in self.spacing)
        elif isinstance(image, MetaTensor):
            spacing = tuple(float(s) for s in image.pixdim[: len(spatial)])
        else:
            spacing = (1.0,) * len(spatial)
        pixels = np.asarray(image[0].detach().cpu())
        mask = lesion_roi(pixels, spacing, d[LESION], name=str(d.get("id", "")))
        start, end = (np.asarray(b) for b in context_box(mask, self.margin))
        lesion = torch.as_tensor(mask[None].astype(np.float32))
        d[IMAGE] = self.cropper.crop_pad(image, start, end)
        d[LESION] = self.cropper.crop_pad(lesion, start, end)
        return d


def region_steps(inputs: LesionInputs, spacing: Sequence[float] | None) -> list:
    """The pipeline steps that crop the lesion region (none when the method reads no region)."""
    if inputs.context_margin is None:
        return []
    return [LesionRegiond(inputs.context_margin, spacing)]


# -- radiomics ---------------------------------------------------------------------------------
def radiomics_table(dataset: Dataset, ids: Sequence[str], inputs: LesionInputs) -> RadiomicsTable:
    """The raw features of the cases ``ids`` (in that order), from the per-case cache: of each
    case's lesion; when the method reads whole images, of the whole image where a case has no
    lesion (a diffuse finding)."""
    subset = dataset.subset(list(ids))
    whole = inputs.context_margin is None
    if not whole:
        for case in subset.cases:
            lesion_spec(case)  # a clear error before any extraction
    cache = default_cache_dir(dataset.root)
    table = dataset_table(subset, inputs.radiomics, cache_dir=cache, whole_image=whole)
    order = [table.ids.index(i) for i in ids]
    return RadiomicsTable(list(ids), table.columns, table.values[order], meta=table.meta)


def fit_radiomics(
    dataset: Dataset,
    split: dict[str, list[str]],
    inputs: LesionInputs,
    columns: Sequence[str],
) -> tuple[dict[str, np.ndarray], Standardisation]:
    """Standardised rows (``columns``, in that order) of the training and validation cases by
    id, and the statistics of the training cases they were standardised with."""
    ids = [*split["labeled"], *split.get("val", [])]
    scaled, stats = standardise(
        aligned(radiomics_table(dataset, ids, inputs), columns), split["labeled"]
    )
    return _rows(scaled), stats


def aligned(table: RadiomicsTable, columns: Sequence[str]) -> RadiomicsTable:
    """``table`` with exactly ``columns`` in that order (a feature it lacks: NaN, which
    standardises to 0, the training mean)."""
    values = np.stack([_column(table, name) for name in columns], axis=1)
    return RadiomicsTable(table.ids, list(columns), values, meta=table.meta)


def _rows(table: RadiomicsTable) -> dict[str, np.ndarray]:
    return {i: table.values[k].astype(np.float32) for k, i in enumerate(table.ids)}


def describe_radiomics(
    dataset: Dataset, ids: Sequence[str], inputs: LesionInputs
) -> dict[str, Any]:
    """What a run's radiomics are: feature names, image types, feature classes and notes (a
    binary shape volume gives shape and texture-of-mask features only)."""
    table = radiomics_table(dataset, ids, inputs)
    keep = ("image_types", "feature_classes", "notes")
    return {"columns": list(table.columns), **{k: table.meta.get(k, []) for k in keep}}


def apply_radiomics(
    dataset: Dataset, cases: Sequence[Case], inputs: LesionInputs, stats: Standardisation
) -> dict[str, np.ndarray]:
    """Rows of new cases (evaluate, predict) standardised with the run's training statistics;
    a feature these cases lack becomes 0, the training mean."""
    table = radiomics_table(dataset, [c.id for c in cases], inputs)
    return _rows(stats.apply(aligned(table, stats.columns)))


def _column(table: RadiomicsTable, name: str) -> np.ndarray:
    if name in table.columns:
        return table.values[:, table.columns.index(name)]
    return np.full(len(table.ids), np.nan)
