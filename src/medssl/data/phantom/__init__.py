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

Modules: ``shapes`` (fields, ellipsoids, rotations, the CT intensity model), ``seeding``
(per-case generators, balanced classes, splits), ``seg3d``/``cls3d``/``landmark2d`` (one
generator each), ``files`` (image files and dataset.json) and ``build`` (``make_phantom``).
"""

from __future__ import annotations

from medssl.data.phantom.build import make_phantom
from medssl.data.phantom.cls3d import CLS_LABELS, CLS_SHAPE, CLS_SPACING
from medssl.data.phantom.landmark2d import LM_CLASSES, LM_NAMES, LM_SIZE, LM_SPACING_MM
from medssl.data.phantom.seeding import balanced_labels, stratified_split
from medssl.data.phantom.seg3d import SEG_LABELS, SEG_SHAPE, SEG_SPACING
from medssl.data.phantom.shapes import (
    AIR_HU,
    FAT_HU,
    TISSUE_HU,
    add_noise,
    apply_bias,
    bias_field,
    blob,
    ellipsoid_level,
    mm_grid,
    rotation_matrix,
    segment_distance,
    smooth_field,
    to_int16_hu,
    warp_coords,
)

__all__ = [
    "AIR_HU",
    "CLS_LABELS",
    "CLS_SHAPE",
    "CLS_SPACING",
    "FAT_HU",
    "LM_CLASSES",
    "LM_NAMES",
    "LM_SIZE",
    "LM_SPACING_MM",
    "SEG_LABELS",
    "SEG_SHAPE",
    "SEG_SPACING",
    "TISSUE_HU",
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
