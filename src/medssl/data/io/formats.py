"""Any image path to the library that reads or writes it: the suffix (or a folder) decides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medssl.data.io._common import existing_path, suffix_of
from medssl.data.io.dicom import (
    DICOM_SUFFIXES,
    dicom_file_header,
    dicom_series_header,
    read_dicom_file,
    read_dicom_series,
)
from medssl.data.io.image import ImageHeader, MedImage
from medssl.data.io.itk import ITK_SUFFIXES, itk_header, read_itk_file, write_itk
from medssl.data.io.nifti import read_nifti
from medssl.data.io.raster import RASTER_SUFFIXES, raster_header, read_raster, write_png
from medssl.errors import DataError, file_error

READ_SUFFIXES = ITK_SUFFIXES + DICOM_SUFFIXES + RASTER_SUFFIXES
WRITE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".png")


@dataclass(frozen=True)
class _Format:
    """One family of image files: its suffixes and how to read its voxels and its header."""

    suffixes: tuple[str, ...]
    read: Callable[[Path], MedImage]
    read_header: Callable[[Path], ImageHeader]


def _read_itk(path: Path) -> MedImage:
    """NIfTI through the fast path that keeps NaN; the other ITK formats through SimpleITK."""
    if suffix_of(path) in (".nii", ".nii.gz"):
        return read_nifti(path)
    return read_itk_file(path)


_FORMATS = (
    _Format(ITK_SUFFIXES, _read_itk, itk_header),
    _Format(DICOM_SUFFIXES, read_dicom_file, dicom_file_header),
    _Format(RASTER_SUFFIXES, read_raster, raster_header),
)


def _format_of(path: Path) -> _Format:
    """Which library reads the file, by its suffix."""
    suffix = suffix_of(path)
    for image_format in _FORMATS:
        if suffix in image_format.suffixes:
            return image_format
    raise file_error(
        path,
        f"unknown image suffix {suffix or '(none)'!r}",
        f"use one of {', '.join(READ_SUFFIXES)} or a DICOM series folder",
    )


def read_image(path: str | Path) -> MedImage:
    """Read any supported image file, or a DICOM series folder, as a :class:`MedImage`."""
    p = existing_path(path)
    if p.is_dir():
        return read_dicom_series(p)
    return _format_of(p).read(p)


def read_header(path: str | Path) -> ImageHeader:
    """Geometry, dtype and components, without decoding voxels where the format allows."""
    p = existing_path(path)
    if p.is_dir():
        return dicom_series_header(p)
    return _format_of(p).read_header(p)


def write_image(path: str | Path, image: MedImage) -> None:
    """Write ``image`` atomically; the format follows the suffix and keeps the geometry.

    PNG stores voxels only (2-D uint8/uint16 grey or uint8 RGB); its geometry is not kept.
    """
    p = Path(path).expanduser()
    suffix = suffix_of(p)
    if suffix not in WRITE_SUFFIXES:
        raise file_error(
            p,
            f"cannot write {suffix or '(no suffix)'!r}",
            f"use one of {', '.join(WRITE_SUFFIXES)}",
        )
    verify = _reads_back_as(image.array)
    if suffix == ".png":
        write_png(p, image, verify)
    else:
        write_itk(p, image, verify)


def _reads_back_as(expected: np.ndarray) -> Callable[[Path], None]:
    """A check that a written file decodes to ``expected`` (a truncated file does not)."""

    def verify(tmp: Path) -> None:
        try:
            back = read_image(tmp).array
        except DataError as err:
            raise ValueError(str(err)) from None
        nan = expected.dtype.kind == "f"
        if back.shape != expected.shape or not np.array_equal(back, expected, equal_nan=nan):
            raise ValueError("the file read back differs from what was written")

    return verify
