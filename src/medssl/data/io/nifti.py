"""The NIfTI fast path: voxels decoded here (NaN kept, truncation refused), geometry from ITK."""

from __future__ import annotations

import io
import itertools
import math
import re
import struct
import zlib
from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from medssl.data.io._common import PARSE_ERRORS, one_line, suffix_of
from medssl.data.io.image import MedImage
from medssl.data.io.itk import SITK_DTYPES, itk_error, read_itk_file, read_itk_info
from medssl.errors import file_error

# NIfTI-1 / NIfTI-2 by sizeof_hdr; the first bytes read hold the longer header + extension flag.
_NIFTI_HEADERS = {348: nib.Nifti1Header, 540: nib.Nifti2Header}
_NIFTI_HEAD_BYTES = 544
# Deflate cannot expand data more than 1032-fold: a header that claims more voxels than that
# is refused as truncated without allocating them.
_DEFLATE_MAX_RATIO = 1032
_NULLS = re.compile(rb"\0*")  # gzip allows null padding after a member


def read_nifti(path: Path) -> MedImage:
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
    reader, dims = read_itk_info(path)
    array = _nifti_voxels(header, data, reader)
    if array is None:
        return read_itk_file(path)
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
        raise itk_error(path, err) from err
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
    gz = suffix_of(path) == ".nii.gz"
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
        *PARSE_ERRORS,
    ) as err:
        raise file_error(
            path,
            f"is not a readable NIfTI file ({one_line(err)})",
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
        or SITK_DTYPES.get(reader.GetPixelID()) != dtype.newbyteorder("=").name
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
