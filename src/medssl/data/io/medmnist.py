"""MedMNIST ``.npz`` archives: ``<split>_images`` and ``<split>_labels`` arrays per split."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from medssl.data.io._common import PARSE_ERRORS, existing_path, one_line
from medssl.errors import file_error

NPZ_SPLITS = ("train", "val", "test")


def read_npz(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """MedMNIST ``<split>_images`` / ``<split>_labels`` -> ``{split: (images, labels | None)}``.

    Any subset of train/val/test is valid (a test-only file is); labels may be absent.
    """
    p = existing_path(path)
    if not zipfile.is_zipfile(p):
        raise file_error(p, "is not an .npz (zip) archive", "save the arrays with np.savez")
    try:
        archive = np.load(p, allow_pickle=False)
    except (zipfile.BadZipFile, *PARSE_ERRORS) as err:
        raise file_error(p, f"is not a readable .npz ({one_line(err)})", "re-download it") from err
    with archive:
        splits = _npz_splits(p, list(archive.files))
        try:
            return {split: _npz_pair(p, archive, split) for split in splits}
        except (zipfile.BadZipFile, zlib.error, *PARSE_ERRORS) as err:
            raise file_error(
                p,
                f"has an unreadable array ({one_line(err)})",
                "re-download it (numeric arrays only: pickled objects are refused)",
            ) from err


def _npz_pair(path: Path, archive, split: str) -> tuple[np.ndarray, np.ndarray | None]:
    images = archive[f"{split}_images"]
    labels = archive[f"{split}_labels"] if f"{split}_labels" in archive.files else None
    if labels is not None and len(labels) != len(images):
        raise file_error(
            path,
            f"has {len(images)} {split}_images but {len(labels)} {split}_labels",
            "give one label row per image",
        )
    return images, labels


def _npz_splits(path: Path, keys: list[str]) -> list[str]:
    splits = [s for s in NPZ_SPLITS if f"{s}_images" in keys]
    orphans = [s for s in NPZ_SPLITS if f"{s}_labels" in keys and s not in splits]
    if not splits or orphans:
        raise file_error(
            path,
            f"has no {'/'.join(f'{s}_images' for s in orphans or NPZ_SPLITS)} array "
            f"(keys: {', '.join(keys) or 'none'})",
            "store images as <split>_images and labels as <split>_labels, split in train/val/test",
        )
    return splits
