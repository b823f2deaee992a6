"""Quiet third-party chatter that says nothing to a medssl user (tips, optional plugins)."""

from __future__ import annotations

import logging
import warnings

NOISE = (
    "NvImgCodecPydicomReader",  # MONAI probes an optional NVIDIA DICOM decoder on every LoadImage
    ".*LeafSpec.*",  # Lightning's own deprecation, not ours to fix
    ".*does not have many workers.*",  # num_workers=0 is the CPU default on purpose
)


def quiet_third_party() -> None:
    for message in NOISE:
        warnings.filterwarnings("ignore", message=message)
    logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
    # "GPU available", "💡 Tip: ...": Lightning's info lines; warnings still show.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric.utilities.rank_zero").setLevel(logging.WARNING)
