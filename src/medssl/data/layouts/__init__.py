"""Detect a dataset's on-disk layout and read it into the :class:`Dataset` model.

The layout is never configured: :func:`detect_layout` recognises it from what is on disk (see
the README, section "Datasets on disk"), so ``--data DIR`` works on any supported folder as it
is. Readers only list files and parse the small JSON/CSV indexes; they do not read voxels
(``data check`` and the loaders do), except for MedMNIST, whose cases live inside the npz, and
the label files of a loose folder without dataset.json, whose values name its labels. Files an
index refers to are listed even when missing, so that ``data check`` can name every one of them.

One module per job: ``detect`` (detection and the ``load_dataset`` dispatch), one reader per
layout (``nnunet``, ``msd``, ``medmnist``, ``landmarks``, ``manifest``, ``multidomain``,
``swc``, ``files``), each with a ``read(root)``; ``_common`` holds what the readers share.
"""

from __future__ import annotations

from medssl.data.layouts._common import (
    CHANNEL_SUFFIX,
    IMAGE_ENDINGS,
    is_image_file,
    read_json,
    split_ending,
)
from medssl.data.layouts.detect import (
    DETECTORS,
    LOOKED_FOR,
    READERS,
    SEE_README,
    detect_layout,
    load_dataset,
    load_images_only,
)
from medssl.data.layouts.medmnist import npz_path

__all__ = [
    "CHANNEL_SUFFIX",
    "DETECTORS",
    "IMAGE_ENDINGS",
    "LOOKED_FOR",
    "READERS",
    "SEE_README",
    "detect_layout",
    "is_image_file",
    "load_dataset",
    "load_images_only",
    "npz_path",
    "read_json",
    "split_ending",
]
