"""DICOM files and series through pydicom: slices ordered by position, rescaled to HU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset as DicomDataset
from pydicom.errors import InvalidDicomError

from medssl.data.io._common import PARSE_ERRORS, existing_path, one_line
from medssl.data.io.image import ImageHeader, MedImage
from medssl.errors import DataError, file_error

DICOM_SUFFIXES = (".dcm",)

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
    p = existing_path(folder)
    if not p.is_dir():
        raise file_error(p, "is not a folder", "pass the folder that holds the series' files")
    slices = _series_datasets(p, stop_before_pixels=False, series_uid=series_uid)
    return _dicom_image(p, slices)


def read_dicom_file(path: Path) -> MedImage:
    """One DICOM image file: a radiograph (2-D) or a single slice of a volume."""
    return _dicom_image(path, [_read_dicom_dataset(path, stop_before_pixels=False)])


def dicom_file_header(path: Path) -> ImageHeader:
    """The header of one DICOM image file, without decoding its pixels."""
    return _dicom_header(path, [_read_dicom_dataset(path, stop_before_pixels=True)])


def dicom_series_header(folder: Path) -> ImageHeader:
    """The header of the one series in ``folder``, without decoding any pixels."""
    return _dicom_header(folder, _series_datasets(folder, stop_before_pixels=True))


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
    except PARSE_ERRORS as err:
        raise file_error(
            path, f"is a damaged DICOM file ({one_line(err)})", "re-export or re-download it"
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


def _several_series(folder: Path, series: dict[str, list[DicomDataset]], problem: str) -> DataError:
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
    except (RuntimeError, NotImplementedError, *PARSE_ERRORS) as err:
        syntax = pydicom.uid.UID(str(ds.file_meta.get("TransferSyntaxUID", "")))
        raise file_error(
            ds.filename,
            f"cannot decode its {syntax.name or 'unknown'} pixel data ({one_line(err)})",
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
