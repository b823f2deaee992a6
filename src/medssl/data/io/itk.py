"""NIfTI, NRRD and MetaImage through SimpleITK: header reads, full reads, writes, its errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medssl.atomic import write_atomic
from medssl.data.io.image import ImageHeader, MedImage, flip_index_order
from medssl.errors import DataError, file_error

ITK_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")

# SimpleITK pixel IDs (scalar and vector) -> the numpy dtype name of one component.
SITK_DTYPES = {
    getattr(sitk, f"sitk{prefix}{name}"): dtype
    for name, dtype in (
        ("UInt8", "uint8"),
        ("Int8", "int8"),
        ("UInt16", "uint16"),
        ("Int16", "int16"),
        ("UInt32", "uint32"),
        ("Int32", "int32"),
        ("UInt64", "uint64"),
        ("Int64", "int64"),
        ("Float32", "float32"),
        ("Float64", "float64"),
    )
    for prefix in ("", "Vector")
}

_ITK_PREFIX = re.compile(r"^(sitk::ERROR:|ITK ERROR:)?\s*(\w+\(0x[0-9a-f]+\):)?\s*(\[\w+\]\s*)?")


def read_itk_file(path: Path) -> MedImage:
    """Any SimpleITK format, voxels and geometry as ``sitk.ReadImage`` gives them."""
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise itk_error(path, err) from err
    dims = check_itk_dims(path, image.GetDimension())
    array = flip_index_order(sitk.GetArrayFromImage(image), dims)
    direction = np.array(image.GetDirection()).reshape(dims, dims)
    return MedImage(array, image.GetSpacing(), image.GetOrigin(), direction, path)


def read_itk_info(path: Path) -> tuple[sitk.ImageFileReader, int]:
    """A reader holding the file's header (no voxels decoded) and its checked dimension."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise itk_error(path, err) from err
    return reader, check_itk_dims(path, reader.GetDimension())


def itk_header(path: Path) -> ImageHeader:
    """The header of a SimpleITK format, without decoding voxels."""
    reader, dims = read_itk_info(path)
    pixel = reader.GetPixelID()
    return ImageHeader(
        path=path,
        spatial_shape=tuple(int(n) for n in reader.GetSize()),
        spacing=tuple(reader.GetSpacing()),
        origin=tuple(reader.GetOrigin()),
        direction=np.array(reader.GetDirection()).reshape(dims, dims),
        dtype=SITK_DTYPES.get(pixel, sitk.GetPixelIDValueAsString(pixel)),
        components=int(reader.GetNumberOfComponents()),
    )


def check_itk_dims(path: Path, dims: int) -> int:
    """``dims`` when it is 2 or 3; medssl has no 4-D image model."""
    if dims not in (2, 3):
        raise file_error(
            path,
            f"is a {dims}-D image",
            "medssl reads 2-D and 3-D images: store each channel or time point in its own file "
            "(nnU-Net _0000, _0001, ...)",
        )
    return dims


def _itk_reason(err: Exception) -> str:
    """SimpleITK's multi-line exception -> its last informative line, without ITK prefixes."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    informative = [ln for ln in lines if not ln.startswith("Reason:")] or lines or [""]
    return _ITK_PREFIX.sub("", informative[-1])


def itk_error(path: Path, err: RuntimeError) -> DataError:
    """The one-line error for a file SimpleITK cannot read."""
    return file_error(
        path,
        f"cannot be read ({_itk_reason(err)})",
        "the file is truncated, corrupt or not the format its suffix says: re-export or "
        "re-download it",
    )


def write_itk(path: Path, image: MedImage, verify: Callable[[Path], None] | None = None) -> None:
    """Write atomically in the format of ``path``'s suffix, compressed where it allows.

    SimpleITK truncates a file on a full disk without raising: ``verify`` reads it back.
    """
    itk_image = _itk_image(path, image)
    write_atomic(
        path,
        lambda tmp: sitk.WriteImage(itk_image, str(tmp), useCompression=True),
        verify,
    )


def _itk_image(path: Path, image: MedImage) -> sitk.Image:
    """Checked before any file exists: the dtype ITK can store and a valid direction."""
    array = image.array.astype(np.uint8) if image.array.dtype == bool else image.array
    if array.dtype.kind not in "uif" or array.dtype == np.float16:
        raise file_error(
            path, f"cannot store dtype {array.dtype}", "cast to an integer type, float32 or float64"
        )
    d = image.spatial_dims
    if not np.allclose(image.direction.T @ image.direction, np.eye(d), atol=1e-4):
        raise file_error(
            path, "direction is not orthonormal", "give unit, perpendicular axis directions"
        )
    itk_image = sitk.GetImageFromArray(
        np.ascontiguousarray(flip_index_order(array, d)), isVector=image.components > 1
    )
    itk_image.SetSpacing(image.spacing)
    itk_image.SetOrigin(image.origin)
    itk_image.SetDirection(tuple(image.direction.ravel()))
    return itk_image
