"""Read and write images, landmarks, MedMNIST arrays and SWC tracings behind one error policy.

Every image reader returns a :class:`MedImage` with the voxels in (x, y[, z]) index order and
ITK/LPS geometry, whatever the format (NIfTI, NRRD, MetaImage, DICOM, PNG/JPEG), so the rest of
medssl never needs to know where an image came from. Every bad input becomes a one-line
:class:`~medssl.errors.DataError` naming the file and the fix; every write goes to a temporary
file beside the target and is renamed into place, so a failed write leaves nothing behind.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import os
import re
import secrets
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import SimpleITK as sitk
from monai.data import ImageReader
from monai.utils import MetaKeys, SpaceKeys, ensure_tuple
from PIL import Image
from pydicom.dataset import Dataset as DicomDataset
from pydicom.errors import InvalidDicomError

from medssl.errors import file_error

ITK_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
DICOM_SUFFIXES = (".dcm",)
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
READ_SUFFIXES = ITK_SUFFIXES + DICOM_SUFFIXES + RASTER_SUFFIXES
WRITE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".png")

# What third-party parsers raise on damaged files (pydicom, numpy and zipfile use all of these).
_PARSE_ERRORS = (OSError, EOFError, ValueError, TypeError, KeyError, IndexError, struct.error)


# ------------------------------------------------------------------------------------------
# image model
# ------------------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class MedImage:
    """Voxels plus the physical geometry needed to write a prediction back onto the input grid.

    ``array`` has the spatial axes first in (x, y[, z]) order (the nibabel / ITK index order,
    the transpose of ``SimpleITK.GetArrayFromImage``); multi-component images (RGB) carry a
    trailing component axis. ``spacing`` (mm), ``origin`` and ``direction`` (columns = axes)
    follow ITK's LPS convention.
    """

    array: np.ndarray
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: np.ndarray
    path: Path | None = None

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        self.spacing = tuple(float(s) for s in self.spacing)
        self.origin = tuple(float(o) for o in self.origin)
        self.direction = np.asarray(self.direction, dtype=np.float64)
        d = len(self.spacing)
        if (
            d not in (2, 3)
            or len(self.origin) != d
            or self.direction.shape != (d, d)
            or self.array.ndim not in (d, d + 1)
        ):
            raise ValueError(
                f"inconsistent MedImage: array {self.array.shape}, spacing {self.spacing}, "
                f"origin {self.origin}, direction {self.direction.shape}"
            )

    def __repr__(self) -> str:
        return (
            f"MedImage(shape={self.array.shape}, dtype={self.array.dtype}, "
            f"spacing={self.spacing}, origin={self.origin}, path={self.path})"
        )

    @property
    def spatial_dims(self) -> int:
        return len(self.spacing)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape[: self.spatial_dims])

    @property
    def components(self) -> int:
        return 1 if self.array.ndim == self.spatial_dims else int(self.array.shape[-1])

    @classmethod
    def from_array(
        cls,
        array: np.ndarray,
        spacing: Sequence[float] | None = None,
        origin: Sequence[float] | None = None,
        direction: np.ndarray | None = None,
    ) -> MedImage:
        """An image with default geometry (1 mm, origin 0, identity) where none is given.

        The number of spatial axes comes from ``spacing``/``origin``/``direction`` when given;
        otherwise a 3-D array whose last axis has size 3 or 4 is a 2-D RGB(A) image and any
        other array is scalar (pass ``spacing`` to make a 3-slice volume unambiguous).
        """
        array = np.asarray(array)
        d = _spatial_dims_of(array, spacing, origin, direction)
        return cls(
            array,
            tuple(spacing) if spacing is not None else (1.0,) * d,
            tuple(origin) if origin is not None else (0.0,) * d,
            np.asarray(direction) if direction is not None else np.eye(d),
        )

    def affine_ras(self) -> np.ndarray:
        """4x4 voxel -> world affine in RAS (nibabel / MONAI); a 2-D image is embedded as 3-D."""
        d = self.spatial_dims
        direction, spacing, origin = np.eye(3), np.ones(3), np.zeros(3)
        direction[:d, :d] = self.direction
        spacing[:d] = self.spacing
        origin[:d] = self.origin
        affine = np.eye(4)
        affine[:3, :3] = direction * spacing
        affine[:3, 3] = origin
        affine[:2] *= -1.0  # LPS -> RAS
        return affine

    def with_array(self, array: np.ndarray) -> MedImage:
        """Same geometry, new voxels: how a prediction gets the input's grid for writing."""
        array = np.asarray(array)
        if tuple(array.shape[: self.spatial_dims]) != self.spatial_shape or array.ndim not in (
            self.spatial_dims,
            self.spatial_dims + 1,
        ):
            raise ValueError(f"array {array.shape} does not fit the grid {self.spatial_shape}")
        return MedImage(array, self.spacing, self.origin, self.direction.copy())


def _spatial_dims_of(
    array: np.ndarray,
    spacing: Sequence[float] | None,
    origin: Sequence[float] | None,
    direction: np.ndarray | None,
) -> int:
    for given in (spacing, origin):
        if given is not None:
            return len(given)
    if direction is not None:
        return int(np.asarray(direction).shape[0])
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        return 2
    return array.ndim


@dataclass(eq=False)
class ImageHeader:
    """An image's geometry without its voxels: what ``data check`` compares across a dataset."""

    path: Path
    spatial_shape: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: np.ndarray
    dtype: str
    components: int

    @property
    def spatial_dims(self) -> int:
        return len(self.spatial_shape)


# ------------------------------------------------------------------------------------------
# paths and atomic writes
# ------------------------------------------------------------------------------------------


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _existing(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise file_error(p, "does not exist", "check the path")
    return p


def _image_kind(path: Path) -> str:
    """``itk``, ``dicom`` or ``raster``: which library reads the file."""
    suffix = _suffix(path)
    for kind, suffixes in (
        ("itk", ITK_SUFFIXES),
        ("dicom", DICOM_SUFFIXES),
        ("raster", RASTER_SUFFIXES),
    ):
        if suffix in suffixes:
            return kind
    raise file_error(
        path,
        f"unknown image suffix {suffix or '(none)'!r}",
        f"use one of {', '.join(READ_SUFFIXES)} or a DICOM series folder",
    )


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Run ``write`` on a hidden temporary file beside ``path``, then rename it into place.

    The temporary name keeps the target's suffix because SimpleITK picks the format from it.
    """
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp{_suffix(path)}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        raise file_error(
            path, f"cannot be written ({err.strerror or err})", "check the folder is writable"
        ) from err
    finally:
        tmp.unlink(missing_ok=True)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ------------------------------------------------------------------------------------------
# reading images
# ------------------------------------------------------------------------------------------


def read_image(path: str | Path) -> MedImage:
    """Read any supported image file, or a DICOM series folder, as a :class:`MedImage`."""
    p = _existing(path)
    if p.is_dir():
        return read_dicom_series(p)
    kind = _image_kind(p)
    if kind == "dicom":
        return _read_dicom_file(p)
    if kind == "raster":
        return _read_raster(p)
    return _read_itk(p)


def read_header(path: str | Path) -> ImageHeader:
    """Geometry, dtype and components, without decoding voxels where the format allows."""
    p = _existing(path)
    if p.is_dir():
        return _dicom_header(p, _series_datasets(p, stop_before_pixels=True))
    kind = _image_kind(p)
    if kind == "dicom":
        return _dicom_header(p, [_read_dicom_dataset(p, stop_before_pixels=True)])
    if kind == "raster":
        return _raster_header(p)
    return _itk_header(p)


def _flip_index_order(array: np.ndarray, spatial_dims: int) -> np.ndarray:
    """(z, y, x[, c]) <-> (x, y, z[, c]): reverse the spatial axes, keep a component axis last."""
    axes = tuple(reversed(range(spatial_dims))) + tuple(range(spatial_dims, array.ndim))
    return array.transpose(axes)


# --- SimpleITK formats ---------------------------------------------------------------------


def _read_itk(path: Path) -> MedImage:
    if _suffix(path) in (".nii", ".nii.gz"):
        return _read_nifti(path)
    return _read_itk_file(path)


def _read_itk_file(path: Path) -> MedImage:
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise _itk_error(path, err) from err
    dims = _check_itk_dims(path, image.GetDimension())
    array = _flip_index_order(sitk.GetArrayFromImage(image), dims)
    direction = np.array(image.GetDirection()).reshape(dims, dims)
    return MedImage(array, image.GetSpacing(), image.GetOrigin(), direction, path)


def _itk_header(path: Path) -> ImageHeader:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise _itk_error(path, err) from err
    dims = _check_itk_dims(path, reader.GetDimension())
    pixel = reader.GetPixelID()
    return ImageHeader(
        path=path,
        spatial_shape=tuple(int(n) for n in reader.GetSize()),
        spacing=tuple(reader.GetSpacing()),
        origin=tuple(reader.GetOrigin()),
        direction=np.array(reader.GetDirection()).reshape(dims, dims),
        dtype=_SITK_DTYPES.get(pixel, sitk.GetPixelIDValueAsString(pixel)),
        components=int(reader.GetNumberOfComponents()),
    )


_SITK_DTYPES = {
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


def _check_itk_dims(path: Path, dims: int) -> int:
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


_ITK_PREFIX = re.compile(r"^(sitk::ERROR:|ITK ERROR:)?\s*(\w+\(0x[0-9a-f]+\):)?\s*(\[\w+\]\s*)?")


def _itk_error(path: Path, err: RuntimeError):
    return file_error(
        path,
        f"cannot be read ({_itk_reason(err)})",
        "the file is truncated, corrupt or not the format its suffix says: re-export or "
        "re-download it",
    )


# --- NIfTI ---------------------------------------------------------------------------------

# NIfTI-1 / NIfTI-2 by sizeof_hdr; the first bytes read hold the longer header + extension flag.
_NIFTI_HEADERS = {348: nib.Nifti1Header, 540: nib.Nifti2Header}
_NIFTI_HEAD_BYTES = 544
# Deflate cannot expand data more than 1032-fold: a header that claims more voxels than that
# is refused as truncated without allocating them.
_DEFLATE_MAX_RATIO = 1032
_NULLS = re.compile(rb"\0*")  # gzip allows null padding after a member


def _read_nifti(path: Path) -> MedImage:
    """A NIfTI file, decompressed once: voxels from those bytes, geometry from SimpleITK.

    SimpleITK (its nifti1_io) silently turns NaN/inf voxels into 0 and zero-fills a truncated
    file, so the bytes are read here, their length (and a .nii.gz's CRC) checked, and the voxels
    decoded the way ITK does (scl_slope/scl_inter applied in double, kept in the stored float
    type), NaN and inf included. The geometry is SimpleITK's own header read, with the sign fix
    its image reader applies, so it is what ``sitk.ReadImage`` gives. Layouts not decoded here
    (vector, RGB or complex pixels, scaled integers, a NIfTI pair, an unusual vox_offset) are
    left to SimpleITK after the check: a second decompression, and NaN lost, for those only.
    """
    header, data = _nifti_bytes(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise _itk_error(path, err) from err
    dims = _check_itk_dims(path, reader.GetDimension())
    array = _nifti_voxels(header, data, reader)
    if array is None:
        return _read_itk_file(path)
    spacing, origin, direction = _itk_geometry(path, reader, dims)
    return MedImage(array, spacing, origin, direction, path)


def _itk_geometry(path: Path, reader: sitk.ImageFileReader, dims: int):
    """Spacing, origin and direction exactly as ``sitk.ReadImage`` would give them.

    itk::ImageFileReader flips the axis of a negative spacing, and the image's own setters
    normalise the values (-0.0 becomes 0.0), so they go through a one-voxel SimpleITK image.
    """
    spacing = list(reader.GetSpacing())
    direction = np.array(reader.GetDirection(), dtype=np.float64).reshape(dims, dims)
    for axis in range(dims):
        if spacing[axis] < 0:
            spacing[axis] = -spacing[axis]
            direction[:, axis] = -direction[:, axis]
    probe = sitk.Image([1] * dims, sitk.sitkUInt8)
    try:
        probe.SetSpacing(spacing)
        probe.SetOrigin(reader.GetOrigin())
        probe.SetDirection(tuple(direction.ravel()))
    except RuntimeError as err:
        raise _itk_error(path, err) from err
    return (
        probe.GetSpacing(),
        probe.GetOrigin(),
        np.array(probe.GetDirection(), dtype=np.float64).reshape(dims, dims),
    )


def _nifti_bytes(path: Path) -> tuple[Any, bytearray | None]:
    """The parsed header and the bytes of header + voxels; refuses a truncated or corrupt file.

    A .nii.gz is decompressed once, to its end, which also verifies each member's CRC-32 and
    length. ``None`` for the bytes of a NIfTI pair header (its voxels live in another file).
    """
    gz = _suffix(path) == ".nii.gz"
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            pieces = _gunzip(f.read()) if gz else iter(partial(f.read, 1 << 24), b"")
            head = b""
            for piece in pieces:
                head += piece
                if len(head) >= _NIFTI_HEAD_BYTES:
                    break
            header = _nifti_header(head[:_NIFTI_HEAD_BYTES])
            if header["magic"].item() != header.single_magic:
                return header, None
            offset = _nifti_offset(header)
            need = offset + math.prod(header.get_data_shape()) * header.get_data_dtype().itemsize
            data = None
            if need <= (size * _DEFLATE_MAX_RATIO if gz else size):
                data = bytearray(max(need, len(head)))
            got = _fill(data, itertools.chain((head,), pieces))
    except (
        nib.filebasedimages.ImageFileError,
        nib.spatialimages.HeaderDataError,
        zlib.error,
        *_PARSE_ERRORS,
    ) as err:
        raise file_error(
            path,
            f"is not a readable NIfTI file ({_one_line(err)})",
            "the file is truncated or corrupt: re-export or re-download it",
        ) from err
    if got < need or data is None:
        raise file_error(
            path,
            f"is truncated ({got} of {need} bytes of header + voxels)",
            "re-export or re-download it",
        )
    return header, data


def _gunzip(raw: bytes) -> Iterator[bytes]:
    """The decompressed pieces of every gzip member in ``raw``, as the gzip module reads them.

    zlib (``wbits=31``) checks each member's CRC-32 and length; null padding between members is
    skipped; a stream that stops before its end raises EOFError. Feeding 64 KiB at a time keeps
    each piece small (deflate expands at most 1032-fold) while avoiding per-call overhead.
    """
    view, pos = memoryview(raw), 0
    while (pos := _NULLS.match(raw, pos).end()) < len(raw):
        member = zlib.decompressobj(wbits=31)
        while not member.eof:
            if pos >= len(raw):
                raise EOFError("compressed file ended before the end-of-stream marker was reached")
            chunk = view[pos : pos + (1 << 16)]
            pos += len(chunk)
            if piece := member.decompress(chunk):
                yield piece
        pos -= len(member.unused_data)


def _fill(data: bytearray | None, pieces: Iterable[bytes]) -> int:
    """Copy ``pieces`` into ``data`` as far as it goes; return their total length."""
    got = 0
    for piece in pieces:
        if data is not None and got < len(data):
            n = min(len(piece), len(data) - got)
            data[got : got + n] = memoryview(piece)[:n]
        got += len(piece)
    return got


def _nifti_header(head: bytes):
    """nibabel's NIfTI-1 or NIfTI-2 header (with its checks) from the first bytes of the file."""
    if len(head) < 4:
        raise ValueError(f"{len(head)} bytes, too short for a header")
    for order in "<>":
        (sizeof_hdr,) = struct.unpack(f"{order}i", head[:4])
        klass = _NIFTI_HEADERS.get(sizeof_hdr)
        if klass is not None and len(head) >= sizeof_hdr:
            return klass.from_fileobj(io.BytesIO(head[:sizeof_hdr]))
    raise ValueError("no NIfTI-1 or NIfTI-2 header")


def _nifti_offset(header) -> int:
    """Where the voxels start; 0 (unset) means right after the header and extension flag."""
    offset = float(header["vox_offset"])
    return int(offset) if offset >= header.single_vox_offset else int(header.single_vox_offset)


def _nifti_voxels(header, data: bytearray | None, reader: sitk.ImageFileReader):
    """(x, y, z) voxels decoded as ITK's NiftiImageIO does, or ``None`` where it is not done here.

    Only scalar pixels whose dtype, grid and data offset agree with SimpleITK's header read;
    ITK reports scaled integers as float32, which sends them to SimpleITK.
    """
    dtype = header.get_data_dtype()
    shape = header.get_data_shape()
    size = tuple(int(n) for n in reader.GetSize())
    if (
        data is None
        or dtype.kind not in "iuf"
        or reader.GetNumberOfComponents() != 1
        or _SITK_DTYPES.get(reader.GetPixelID()) != dtype.newbyteorder("=").name
        or [n for n in shape if n != 1] != [n for n in size if n != 1]
        or float(header["vox_offset"]) != _nifti_offset(header)
        or _itk_meta(reader, "vox_offset") not in (None, str(_nifti_offset(header)))
    ):
        return None
    array = np.frombuffer(data, dtype, count=math.prod(shape), offset=_nifti_offset(header))
    array = array.reshape(size, order="F")
    if not dtype.isnative or not array.flags.aligned:
        array = array.astype(dtype.newbyteorder("="), order="F")
    scale = _itk_rescale(header)
    if scale is None:
        return array
    if dtype.kind != "f":
        return None
    slope, inter = scale
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = array.astype(np.float64, order="F")  # ITK: double(v) * slope + inter, then cast
        scaled *= slope
        scaled += inter
        return scaled.astype(array.dtype, order="F", copy=False)


def _itk_meta(reader: sitk.ImageFileReader, key: str) -> str | None:
    return reader.GetMetaData(key) if reader.HasMetaDataKey(key) else None


def _itk_rescale(header) -> tuple[float, float] | None:
    """ITK's scaling: non-finite scl_* count as 0, slope 0 as 1; ``None`` when it is identity."""
    slope, inter = (float(header[k]) for k in ("scl_slope", "scl_inter"))
    slope = slope if math.isfinite(slope) else 0.0
    inter = inter if math.isfinite(inter) else 0.0
    eps = float(np.finfo(np.float64).eps)
    if abs(slope) < eps:
        slope = 1.0
    if abs(slope - 1.0) > eps or abs(inter) > eps:
        return slope, inter
    return None


# --- PNG / JPEG / BMP / TIFF ----------------------------------------------------------------

# Pillow modes kept as they are, and the numpy dtype of their samples; any other mode (palette,
# CMYK, YCbCr, ...) is converted to RGB(A).
_PIL_DTYPES = {
    "1": "uint8",
    "L": "uint8",
    "LA": "uint8",
    "RGB": "uint8",
    "RGBA": "uint8",
    "I;16": "uint16",
    "I;16L": "uint16",
    "I;16B": "uint16",
    "I": "int32",
    "F": "float32",
}


def _open_raster(path: Path) -> Image.Image:
    try:
        image = Image.open(path)
    except (OSError, Image.DecompressionBombError) as err:
        raise file_error(
            path,
            f"is not a readable image ({_one_line(err)})",
            "re-export it as PNG or re-download it",
        ) from err
    if getattr(image, "n_frames", 1) > 1:
        image.close()
        raise file_error(
            path, "has several frames/pages", "store a 3-D image as .nii.gz, .nrrd or .mha"
        )
    return image


def _raster_mode(image: Image.Image) -> str:
    if image.mode in _PIL_DTYPES:
        return image.mode
    return "RGBA" if image.has_transparency_data else "RGB"


def _read_raster(path: Path) -> MedImage:
    """Pillow, because it reports truncated JPEGs that ITK's reader decodes silently."""
    with _open_raster(path) as image:
        mode = _raster_mode(image)
        try:
            pixels = np.asarray(image if mode == image.mode else image.convert(mode))
        except (OSError, ValueError) as err:
            raise file_error(
                path,
                f"cannot be decoded ({_one_line(err)})",
                "the file is truncated or corrupt: re-export or re-download it",
            ) from err
    array = pixels.astype(_PIL_DTYPES[mode], copy=False).swapaxes(0, 1)
    return MedImage(array, (1.0, 1.0), (0.0, 0.0), np.eye(2), path)


def _raster_header(path: Path) -> ImageHeader:
    with _open_raster(path) as image:
        mode = _raster_mode(image)
        size = image.size
    bands = Image.getmodebands(mode)
    return ImageHeader(
        path, tuple(size), (1.0, 1.0), (0.0, 0.0), np.eye(2), _PIL_DTYPES[mode], bands
    )


# --- DICOM ----------------------------------------------------------------------------------

# Which decoder to install, by transfer syntax (pydicom decodes the rest natively).
_DICOM_DECODERS = {
    "1.2.840.10008.1.2.4.90": "Pillow built with OpenJPEG, or pylibjpeg + pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "Pillow built with OpenJPEG, or pylibjpeg + pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg + pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.202": "pylibjpeg + pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg + pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.57": "pylibjpeg + pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.70": "pylibjpeg + pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pylibjpeg + pylibjpeg-libjpeg, or pyjpegls",
    "1.2.840.10008.1.2.4.81": "pylibjpeg + pylibjpeg-libjpeg, or pyjpegls",
}


def read_dicom_series(folder: str | Path, series_uid: str | None = None) -> MedImage:
    """Read the one DICOM series in ``folder`` as a volume in Hounsfield (rescaled) units.

    Slices are ordered by their position along the slice normal, never by file name. When the
    folder holds several series, ``series_uid`` picks one (the error lists them).
    """
    p = _existing(folder)
    if not p.is_dir():
        raise file_error(p, "is not a folder", "pass the folder that holds the series' files")
    slices = _series_datasets(p, stop_before_pixels=False, series_uid=series_uid)
    return _dicom_image(p, slices)


def _read_dicom_file(path: Path) -> MedImage:
    return _dicom_image(path, [_read_dicom_dataset(path, stop_before_pixels=False)])


def _read_dicom_dataset(path: Path, stop_before_pixels: bool) -> DicomDataset:
    ds = _dcmread(path, stop_before_pixels)
    if ds is None:
        raise file_error(path, "is not a DICOM file", "pass a DICOM (.dcm) file")
    if "Rows" not in ds:
        raise file_error(path, "is a DICOM file without an image", "pass a DICOM image file")
    return ds


def _dcmread(path: Path, stop_before_pixels: bool) -> DicomDataset | None:
    """The dataset, None when the file is not DICOM at all, an error when it is damaged."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        return None
    except _PARSE_ERRORS as err:
        raise file_error(
            path, f"is a damaged DICOM file ({_one_line(err)})", "re-export or re-download it"
        ) from err


def _series_datasets(
    folder: Path, stop_before_pixels: bool, series_uid: str | None = None
) -> list[DicomDataset]:
    """The image datasets of the folder's single series; non-DICOM files and DICOMDIR-like
    files without an image are skipped, damaged DICOM files are errors."""
    series: dict[str, list[DicomDataset]] = {}
    for path in sorted(f for f in folder.iterdir() if f.is_file() and not f.name.startswith(".")):
        ds = _dcmread(path, stop_before_pixels)
        if ds is not None and "Rows" in ds:
            series.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append(ds)
    if not series:
        raise file_error(
            folder,
            "holds no DICOM image files",
            "point to the folder of one DICOM series (files with the DICM preamble)",
        )
    if series_uid is not None:
        if series_uid not in series:
            raise _several_series(folder, series, f"has no series {series_uid!r}")
        return series[series_uid]
    if len(series) > 1:
        raise _several_series(folder, series, f"holds {len(series)} DICOM series")
    return next(iter(series.values()))


def _several_series(folder: Path, series: dict[str, list[DicomDataset]], problem: str):
    listed = "; ".join(
        f"{uid or '(no SeriesInstanceUID)'} {str(dss[0].get('SeriesDescription', ''))!r}: "
        f"{len(dss)} files"
        for uid, dss in sorted(series.items(), key=lambda kv: -len(kv[1]))
    )
    largest = max(series, key=lambda uid: len(series[uid]))
    return file_error(
        folder,
        f"{problem} ({listed})",
        f"move one series into its own folder, or pass series_uid={largest!r} (the largest)",
    )


@dataclass
class _DicomGeometry:
    slices: list[DicomDataset]  # sorted along the slice normal
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: np.ndarray


def _dicom_geometry(source: Path, datasets: list[DicomDataset]) -> _DicomGeometry:
    """Slice order, spacing, origin and direction from the patient-position tags."""
    first = datasets[0]
    if int(_number(first, "NumberOfFrames", 1)) > 1:
        raise file_error(
            source,
            "is a multi-frame DICOM",
            "convert it to NIfTI first (e.g. dcm2niix) and read the .nii.gz",
        )
    sx, sy = _pixel_spacing(first)
    has_position = "ImagePositionPatient" in first and "ImageOrientationPatient" in first
    if len(datasets) == 1 and not has_position:  # a radiograph: 2-D, no patient frame
        return _DicomGeometry(datasets, (sx, sy), (0.0, 0.0), np.eye(2))
    _check_same_frame(source, datasets)
    iop = np.array(first.ImageOrientationPatient, dtype=np.float64)
    row, col = iop[:3], iop[3:]
    normal = np.cross(row, col)
    positions = np.array([ds.ImagePositionPatient for ds in datasets], dtype=np.float64)
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    return _DicomGeometry(
        slices=[datasets[i] for i in order],
        spacing=(sx, sy, _slice_step(source, along[order], first)),
        origin=tuple(float(v) for v in positions[order[0]]),
        direction=np.column_stack([row, col, normal]),
    )


def _check_same_frame(source: Path, datasets: list[DicomDataset]) -> None:
    first = datasets[0]
    for ds in datasets:
        missing = [k for k in ("ImagePositionPatient", "ImageOrientationPatient") if k not in ds]
        if missing:
            raise file_error(
                ds.filename, f"lacks {', '.join(missing)}", "slices cannot be ordered without it"
            )
        same = (ds.Rows, ds.Columns) == (first.Rows, first.Columns) and np.allclose(
            ds.ImageOrientationPatient, first.ImageOrientationPatient, atol=1e-4
        )
        if not same:
            raise file_error(
                source,
                f"mixes slice sizes or orientations ({Path(ds.filename).name} differs from "
                f"{Path(first.filename).name})",
                "move localizers and other stacks into their own folder",
            )


def _slice_step(source: Path, along: np.ndarray, first: DicomDataset) -> float:
    """The even slice distance; missing or duplicate slices are errors, not silent warps."""
    if len(along) == 1:
        return float(_number(first, "SpacingBetweenSlices", _number(first, "SliceThickness", 1.0)))
    gaps = np.diff(along)
    step = float(gaps.mean())
    if gaps.min() <= 1e-4:
        raise file_error(
            source,
            "has several slices at one position",
            "the folder mixes acquisitions or holds duplicates: keep one file per slice",
        )
    if np.abs(gaps - step).max() > 0.01 * step + 1e-3:
        raise file_error(
            source,
            f"has unevenly spaced slices (gaps {gaps.min():.3g}..{gaps.max():.3g} mm)",
            "slices are missing or stacks are mixed: restore the missing files",
        )
    return step


def _number(ds: DicomDataset, keyword: str, default: float) -> float:
    value = ds.get(keyword)
    return default if value is None or value == "" else float(value)


def _pixel_spacing(ds: DicomDataset) -> tuple[float, float]:
    """(x, y) spacing: DICOM's PixelSpacing is (between rows, between columns) = (y, x)."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value:
            return float(value[1]), float(value[0])
    return 1.0, 1.0


def _dicom_dtype(slices: list[DicomDataset]) -> np.dtype:
    """The stored type if no rescale applies, else int16 when exact and in range, else float32.

    Decided from the header (bits stored, slope, intercept), so read_header agrees with read.
    """
    first = slices[0]
    bits, signed = int(first.BitsStored), int(first.PixelRepresentation) == 1
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    rescales = {_rescale_of(ds) for ds in slices}
    if rescales == {(1.0, 0.0)}:
        return np.dtype(f"{'i' if signed else 'u'}{max(1, int(first.BitsAllocated) // 8)}")
    info = np.iinfo(np.int16)
    exact = all(
        float(s).is_integer()
        and float(i).is_integer()
        and info.min <= min(lo * s + i, hi * s + i)
        and max(lo * s + i, hi * s + i) <= info.max
        for s, i in rescales
    )
    return np.dtype(np.int16 if exact else np.float32)


def _rescale_of(ds: DicomDataset) -> tuple[float, float]:
    return _number(ds, "RescaleSlope", 1.0), _number(ds, "RescaleIntercept", 0.0)


def _dicom_pixels(ds: DicomDataset, dtype: np.dtype) -> np.ndarray:
    """One slice in (x, y[, c]) order, rescaled."""
    try:
        stored = ds.pixel_array
    except (RuntimeError, NotImplementedError, *_PARSE_ERRORS) as err:
        syntax = pydicom.uid.UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
        raise file_error(
            ds.filename,
            f"cannot decode its {syntax.name or 'unknown'} pixel data ({_one_line(err)})",
            _decoder_fix(syntax),
        ) from err
    slope, intercept = _rescale_of(ds)
    if (slope, intercept) != (1.0, 0.0):
        stored = stored.astype(np.float64) * slope + intercept
    return stored.astype(dtype, copy=False).swapaxes(0, 1)


def _decoder_fix(syntax: pydicom.uid.UID) -> str:
    if syntax.is_compressed:
        decoder = _DICOM_DECODERS.get(str(syntax), "python-gdcm or pylibjpeg[all]")
        return f"install {decoder}, or re-export the series uncompressed"
    return "the pixel data is damaged: re-export or re-download the file"


def _dicom_image(source: Path, datasets: list[DicomDataset]) -> MedImage:
    geometry = _dicom_geometry(source, datasets)
    dtype = _dicom_dtype(geometry.slices)
    planes = [_dicom_pixels(ds, dtype) for ds in geometry.slices]
    array = planes[0] if len(geometry.spacing) == 2 else np.stack(planes, axis=2)
    return MedImage(array, geometry.spacing, geometry.origin, geometry.direction, source)


def _dicom_header(source: Path, datasets: list[DicomDataset]) -> ImageHeader:
    geometry = _dicom_geometry(source, datasets)
    first = geometry.slices[0]
    shape = (int(first.Columns), int(first.Rows))
    if len(geometry.spacing) == 3:
        shape += (len(geometry.slices),)
    return ImageHeader(
        path=source,
        spatial_shape=shape,
        spacing=geometry.spacing,
        origin=geometry.origin,
        direction=geometry.direction,
        dtype=str(_dicom_dtype(geometry.slices)),
        components=int(_number(first, "SamplesPerPixel", 1)),
    )


# ------------------------------------------------------------------------------------------
# writing images
# ------------------------------------------------------------------------------------------


def write_image(path: str | Path, image: MedImage) -> None:
    """Write ``image`` atomically; the format follows the suffix and keeps the geometry.

    PNG stores voxels only (2-D uint8/uint16 grey or uint8 RGB); its geometry is not kept.
    """
    p = Path(path).expanduser()
    suffix = _suffix(p)
    if suffix not in WRITE_SUFFIXES:
        raise file_error(
            p,
            f"cannot write {suffix or '(no suffix)'!r}",
            f"use one of {', '.join(WRITE_SUFFIXES)}",
        )
    if suffix == ".png":
        pixels = _png_pixels(p, image)
        _atomic_write(p, lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG"))
    else:
        itk_image = _itk_image(p, image)
        _atomic_write(p, lambda tmp: _write_itk(p, tmp, itk_image))


def _png_pixels(path: Path, image: MedImage) -> np.ndarray:
    dtype, comps = image.array.dtype, image.components
    if image.spatial_dims != 2:
        raise file_error(
            path,
            f"PNG holds 2-D images, got {image.spatial_dims}-D {image.array.shape}",
            "write 3-D images as .nii.gz, .nrrd or .mha",
        )
    if not ((comps == 1 and dtype in (np.uint8, np.uint16)) or (comps == 3 and dtype == np.uint8)):
        raise file_error(
            path,
            f"PNG takes uint8/uint16 grey or uint8 RGB, got {dtype} with {comps} component(s)",
            "cast the array (e.g. labels to uint8) or write .nii.gz",
        )
    return np.ascontiguousarray(image.array.swapaxes(0, 1))


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
        np.ascontiguousarray(_flip_index_order(array, d)), isVector=image.components > 1
    )
    itk_image.SetSpacing(image.spacing)
    itk_image.SetOrigin(image.origin)
    itk_image.SetDirection(tuple(image.direction.ravel()))
    return itk_image


def _write_itk(path: Path, tmp: Path, itk_image: sitk.Image) -> None:
    try:
        sitk.WriteImage(itk_image, str(tmp), useCompression=True)
    except RuntimeError as err:
        raise file_error(
            path,
            f"cannot be written ({_itk_reason(err)})",
            "check the folder is writable and has free space",
        ) from err


# ------------------------------------------------------------------------------------------
# MedMNIST .npz
# ------------------------------------------------------------------------------------------

NPZ_SPLITS = ("train", "val", "test")


def read_npz(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """MedMNIST ``<split>_images`` / ``<split>_labels`` -> ``{split: (images, labels | None)}``.

    Any subset of train/val/test is valid (a test-only file is); labels may be absent.
    """
    p = _existing(path)
    if not zipfile.is_zipfile(p):
        raise file_error(p, "is not an .npz (zip) archive", "save the arrays with np.savez")
    try:
        archive = np.load(p, allow_pickle=False)
    except (zipfile.BadZipFile, *_PARSE_ERRORS) as err:
        raise file_error(p, f"is not a readable .npz ({_one_line(err)})", "re-download it") from err
    with archive:
        splits = _npz_splits(p, list(archive.files))
        try:
            return {split: _npz_pair(p, archive, split) for split in splits}
        except (zipfile.BadZipFile, zlib.error, *_PARSE_ERRORS) as err:
            raise file_error(
                p,
                f"has an unreadable array ({_one_line(err)})",
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


# ------------------------------------------------------------------------------------------
# landmarks.json
# ------------------------------------------------------------------------------------------

_LANDMARK_KEYS = ("landmark_names", "pixel_spacing_mm", "image_size_wh", "cases")


@dataclass
class LandmarkSet:
    """Named 2-D (or 3-D) points per case and annotator, NaN where an annotator gave none."""

    names: list[str]
    spacing_mm: float | None = None
    image_size_wh: tuple[int, int] | None = None
    cases: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def reference(self, case_id: str) -> np.ndarray:
        """The annotation to train and score against: ``mean``, else ``default``, else the first."""
        annotations = self.cases[case_id]
        for key in ("mean", "default"):
            if key in annotations:
                return annotations[key]
        return next(iter(annotations.values()))


def read_landmarks(path: str | Path) -> LandmarkSet:
    """``landmarks.json``: per case either ``{annotator: points}`` or bare points (``default``)."""
    p = _existing(path)
    doc = _read_json(p)
    if not isinstance(doc, dict) or not {"landmark_names", "cases"} <= doc.keys():
        raise file_error(
            p,
            "lacks 'landmark_names' or 'cases'",
            "write {landmark_names: [...], cases: {id: {annotator: [[x, y] or null, ...]}}}",
        )
    names = [str(n) for n in doc["landmark_names"]]
    size = doc.get("image_size_wh")
    spacing = doc.get("pixel_spacing_mm")
    return LandmarkSet(
        names=names,
        spacing_mm=float(spacing) if spacing is not None else None,
        image_size_wh=(int(size[0]), int(size[1])) if size is not None else None,
        cases={str(c): _case_points(p, str(c), e, len(names)) for c, e in doc["cases"].items()},
        extra={k: v for k, v in doc.items() if k not in _LANDMARK_KEYS},
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise file_error(
            path, f"is not valid JSON ({_one_line(err)})", "repair or re-export it"
        ) from err


def _case_points(path: Path, case_id: str, entry: Any, n: int) -> dict[str, np.ndarray]:
    annotations = entry if isinstance(entry, dict) else {"default": entry}
    return {
        str(name): _points(path, f"case {case_id} {name}", pts, n)
        for name, pts in annotations.items()
    }


def _points(path: Path, where: str, points: Any, n: int) -> np.ndarray:
    """[[x, y] or null] * n -> (n, D) float array with NaN rows for null."""
    if not isinstance(points, list) or len(points) != n:
        got = len(points) if isinstance(points, list) else type(points).__name__
        raise file_error(path, f"{where}: {got} points for {n} landmark_names", "give one per name")
    given = [pt for pt in points if pt is not None]
    dims = len(given[0]) if given and isinstance(given[0], list) else 2
    try:
        rows = [[math.nan] * dims if pt is None else [float(v) for v in pt] for pt in points]
        array = np.array(rows, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise file_error(
            path, f"{where}: points must be [x, y] or null", "fix the malformed entries"
        ) from err
    if array.shape != (n, dims):
        raise file_error(path, f"{where}: points of mixed length", "give every point as [x, y]")
    return array


def write_landmarks(path: str | Path, landmark_set: LandmarkSet) -> None:
    """Atomic ``landmarks.json`` in the cephalometric shape (null for points with NaN)."""
    p = Path(path).expanduser()
    doc = {
        "landmark_names": list(landmark_set.names),
        "pixel_spacing_mm": landmark_set.spacing_mm,
        "image_size_wh": list(landmark_set.image_size_wh) if landmark_set.image_size_wh else None,
        **{k: v for k, v in landmark_set.extra.items() if k not in _LANDMARK_KEYS},
        "cases": {
            case_id: {name: _points_json(pts) for name, pts in annotations.items()}
            for case_id, annotations in landmark_set.cases.items()
        },
    }
    try:
        text = json.dumps(doc, indent=1, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise file_error(
            p, f"cannot be written as JSON ({err})", "keep LandmarkSet.extra to JSON types"
        ) from err
    _atomic_write(p, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def _points_json(points: np.ndarray) -> list[list[float] | None]:
    return [None if np.isnan(row).any() else [float(v) for v in row] for row in np.asarray(points)]


# ------------------------------------------------------------------------------------------
# SWC neuron tracings
# ------------------------------------------------------------------------------------------

SWC_DTYPE = np.dtype(
    [
        ("id", np.int64),
        ("type", np.int64),
        ("x", np.float64),
        ("y", np.float64),
        ("z", np.float64),
        ("radius", np.float64),
        ("parent", np.int64),
    ]
)
_SWC_COLUMNS = " ".join(SWC_DTYPE.names)


def read_swc(path: str | Path) -> np.ndarray:
    """SWC nodes as a structured array (``SWC_DTYPE``); ``#`` lines are comments.

    Each parent must be -1 (a root) or the id of another node in the file.
    """
    p = _existing(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise file_error(p, f"cannot be read as text ({_one_line(err)})", "re-export it") from err
    rows, numbers = [], []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if text and not text.startswith("#"):
            rows.append(_swc_row(p, number, text))
            numbers.append(number)
    nodes = np.array(rows, dtype=SWC_DTYPE)
    _check_swc_links(p, nodes, numbers)
    return nodes


def _swc_row(path: Path, number: int, text: str) -> tuple:
    fields = text.split()
    if len(fields) != len(SWC_DTYPE.names):
        raise file_error(
            path,
            f"line {number}: {len(fields)} columns, expected 7 ({_SWC_COLUMNS})",
            "fix or delete that line",
        )
    values = []
    for name, token in zip(SWC_DTYPE.names, fields, strict=True):
        try:
            value = float(token)
        except ValueError:
            value = math.nan
        integral = SWC_DTYPE[name].kind == "i"
        if not math.isfinite(value) or (integral and not value.is_integer()):
            kind = "an integer" if integral else "a number"
            raise file_error(
                path, f"line {number}: {name} {token!r} is not {kind}", "fix or delete that line"
            )
        values.append(int(value) if integral else value)
    return tuple(values)


def _check_swc_links(path: Path, nodes: np.ndarray, numbers: list[int]) -> None:
    seen: set[int] = set()
    for node, number in zip(nodes, numbers, strict=True):
        if int(node["id"]) in seen:
            raise file_error(
                path, f"line {number}: duplicate id {node['id']}", "renumber the nodes"
            )
        seen.add(int(node["id"]))
    for node, number in zip(nodes, numbers, strict=True):
        parent = int(node["parent"])
        if parent != -1 and (parent not in seen or parent == int(node["id"])):
            raise file_error(
                path,
                f"line {number}: parent {parent} is not another node's id",
                "use -1 for a root or the id of an existing node",
            )


def write_swc(path: str | Path, nodes: np.ndarray) -> None:
    """Atomic SWC with a column header; floats written exactly (shortest repr)."""
    p = Path(path).expanduser()
    nodes = np.asarray(nodes)
    missing = [n for n in SWC_DTYPE.names if n not in (nodes.dtype.names or ())]
    if missing:
        raise file_error(
            p,
            f"nodes lack the fields {', '.join(missing)}",
            f"pass a structured array with {_SWC_COLUMNS}",
        )
    lines = [f"# {_SWC_COLUMNS}"] + [
        " ".join(
            str(int(node[n])) if SWC_DTYPE[n].kind == "i" else repr(float(node[n]))
            for n in SWC_DTYPE.names
        )
        for node in nodes
    ]
    text = "\n".join(lines) + "\n"
    _atomic_write(p, lambda tmp: tmp.write_text(text, encoding="utf-8"))


# ------------------------------------------------------------------------------------------
# MONAI
# ------------------------------------------------------------------------------------------


class MedsslReader(ImageReader):
    """A MONAI ImageReader over :func:`read_image`: LoadImage(d) gets medssl's IO and errors.

    Several paths are the channels of one image (nnU-Net ``_0000``, ``_0001``): they must share
    one grid. The output follows MONAI's own readers: spatial axes in (x, y, z) order, channels
    stacked on axis 0 (``original_channel_dim`` 0), NaN for one scalar image, -1 for RGB.
    """

    def verify_suffix(self, filename: Sequence[str | Path] | str | Path) -> bool:
        return all(
            Path(f).is_dir() or _suffix(Path(f)) in READ_SUFFIXES for f in ensure_tuple(filename)
        )

    def read(self, data: Sequence[str | Path] | str | Path) -> list[MedImage]:
        return [read_image(f) for f in ensure_tuple(data)]

    def get_data(self, img: MedImage | Sequence[MedImage]) -> tuple[np.ndarray, dict]:
        images = [img] if isinstance(img, MedImage) else list(img)
        first = images[0]
        for other in images[1:]:
            _check_same_grid(first, other)
        if len(images) == 1:
            array = first.array
            channel_dim: float = float("nan") if first.components == 1 else -1
        elif first.components == 1:
            array, channel_dim = np.stack([i.array for i in images], axis=0), 0
        else:
            array, channel_dim = np.concatenate([i.array for i in images], axis=-1), -1
        affine = first.affine_ras()
        meta = {
            MetaKeys.AFFINE: affine,
            MetaKeys.ORIGINAL_AFFINE: affine.copy(),
            MetaKeys.SPATIAL_SHAPE: np.asarray(first.spatial_shape),
            MetaKeys.SPACE: SpaceKeys.RAS,
            MetaKeys.ORIGINAL_CHANNEL_DIM: channel_dim,
            "spacing": np.asarray(first.spacing),
            "filename_or_obj": str(first.path),
        }
        return array, meta


def _check_same_grid(first: MedImage, other: MedImage) -> None:
    """Channels of one image: same grid and same kind of voxel, or the stack is meaningless."""
    name = Path(first.path).name if first.path else "the first channel"
    if other.spatial_shape != first.spatial_shape or other.components != first.components:
        raise file_error(
            other.path,
            f"shape {other.array.shape} differs from {name} {first.array.shape}",
            "channels of one case must share one grid: resample them onto one",
        )
    if not np.allclose(other.affine_ras(), first.affine_ras()):
        raise file_error(
            other.path,
            f"geometry (spacing/origin/direction) differs from {name}",
            "channels of one case must share one grid: resample them onto one",
        )
