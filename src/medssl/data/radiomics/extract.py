"""Radiomics features of one image and its lesion mask, computed once and cached per case.

pyradiomics does the computing; this module reads the inputs through medssl's readers (so a bad
file is a one-line error naming it), makes the region of interest (:mod:`.masks`), and keeps the
result as one JSON per case in a cache folder the caller chooses (``RUN/radiomics/``). The cache
key holds the image's and the mask's path, size and modification time (or a hash of in-memory
arrays), the settings and the pyradiomics version: a rerun reads the file, a changed setting or
file computes again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from medssl.data.io import MedImage, read_image
from medssl.data.io._common import existing_path, one_line
from medssl.data.radiomics.masks import (
    SELF_MASK,
    WHOLE_IMAGE,
    LesionPosition,
    is_binary_volume,
    label_mask,
)
from medssl.data.radiomics.settings import TEXTURE_CLASSES, RadiomicsSettings
from medssl.errors import ConfigError, DataError, file_error

VERSION = 1
DISTRIBUTION = "pyradiomics-bhklab"
ImageInput = str | Path | np.ndarray | MedImage
MaskInput = str | Path | np.ndarray | LesionPosition | None
BINARY_NOTE = (
    "binary shape volumes are their own mask: first-order features and the texture of the "
    "unfiltered image (one grey level inside the mask) are left out; shape and the texture of "
    "the filtered images (LoG, wavelet: the mask's boundary) remain"
)
GREY_NOTE = "colour images were made grey (mean of the components) before extraction"


@dataclass
class CaseFeatures:
    """One case's features (pyradiomics names, diagnostics dropped) and how they were made."""

    features: dict[str, float]
    dims: int
    binary: bool = False
    notes: list[str] = field(default_factory=list)
    cached: bool = False


def extract_features(
    image: ImageInput,
    mask: MaskInput,
    settings: RadiomicsSettings | None = None,
    **options: Any,
) -> dict[str, float]:
    """Radiomics features of ``image`` inside ``mask``, by pyradiomics name.

    ``mask`` is a mask or label-map file (or array) on the image's grid, a
    :class:`LesionPosition`, or ``"self"`` for a binary shape volume. Options as
    :func:`extract_case` (``case_id``, ``label``, ``spacing``, ``cache_dir``).
    """
    return extract_case(image, mask, settings, **options).features


def extract_case(
    image: ImageInput,
    mask: MaskInput,
    settings: RadiomicsSettings | None = None,
    *,
    case_id: str | None = None,
    label: int | None = None,
    spacing: tuple[float, ...] | None = None,
    cache_dir: str | Path | None = None,
) -> CaseFeatures:
    """:func:`extract_features` with what the table needs to say about it.

    ``label`` picks one value of a label map (default: every value > 0 is the lesion);
    ``spacing`` replaces the file's pixel spacing (PNG files carry none: JSRT's 0.7 mm).
    With ``cache_dir``, the result is read from (or written to) ``cache_dir/<case>.json``.
    """
    settings = settings or RadiomicsSettings()
    name = case_id or _name_of(image)
    if mask is None:
        raise ConfigError(
            f"{name}: no lesion mask and no lesion position; give a mask file or label map, "
            "a lesion position (centre and diameter, e.g. --positions clinical.csv), or "
            "mask='self' for a binary shape volume"
        )
    key = cache_key(image, mask, settings, label, spacing)
    cache_file = Path(cache_dir) / f"{_slug(name)}.json" if cache_dir is not None else None
    if cache_file is not None and (cached := _read_cache(cache_file, key)) is not None:
        return cached
    result = _compute(image, mask, settings, label, spacing, name)
    if cache_file is not None:
        _write_cache(cache_file, key, name, result)
    return result


# -- computing ---------------------------------------------------------------------------------
def _compute(
    image: ImageInput,
    mask: MaskInput,
    settings: RadiomicsSettings,
    label: int | None,
    spacing: tuple[float, ...] | None,
    name: str,
) -> CaseFeatures:
    notes: list[str] = []
    picture = _load_image(image, spacing, notes)
    binary = isinstance(mask, str) and mask == SELF_MASK
    roi = lesion_roi(picture.array, picture.spacing, mask, label, name)
    if picture.spatial_dims == 3 and picture.spatial_shape[2] == 1:  # one slice: a 2-D image
        flat = picture.array[..., 0]
        picture = MedImage(flat, picture.spacing[:2], picture.origin[:2], picture.direction[:2, :2])
        roi = roi[..., 0]
    dims = picture.spatial_dims
    if settings.resampled_spacing is not None and len(settings.resampled_spacing) != dims:
        raise ConfigError(
            f"{name}: resampled_spacing has {len(settings.resampled_spacing)} values for a "
            f"{dims}-D image; give {dims}"
        )
    classes = settings.classes_for(dims, binary)
    if not classes:
        raise ConfigError(
            f"{name}: a binary shape volume gives only shape and texture features; add shape "
            f"or one of {', '.join(TEXTURE_CLASSES)} to feature_classes"
        )
    features = run_pyradiomics(picture, roi, settings, classes, name)
    if binary:
        texture = re.compile(rf"^original_({'|'.join(TEXTURE_CLASSES)})_")
        features = {k: v for k, v in features.items() if not texture.match(k)}
        notes.append(BINARY_NOTE)
    return CaseFeatures(features, dims, binary, notes)


def _load_image(image: ImageInput, spacing: tuple[float, ...] | None, notes: list[str]) -> MedImage:
    if isinstance(image, MedImage):
        picture = image
    elif isinstance(image, np.ndarray):  # MedMNIST: 1 mm, a trailing axis of 3 or 4 is colour
        picture = MedImage.from_array(image)
    else:
        picture = read_image(image)
    if picture.components > 1:
        picture = picture.with_array(picture.array.astype(np.float64).mean(axis=-1))
        notes.append(GREY_NOTE)
    if spacing is not None:
        if len(spacing) != picture.spatial_dims:
            raise ConfigError(
                f"{_name_of(image)}: spacing {tuple(spacing)} for a {picture.spatial_dims}-D "
                "image; give one value per axis"
            )
        picture = MedImage(picture.array, spacing, picture.origin, picture.direction)
    return picture


def lesion_roi(
    array: np.ndarray,
    spacing: tuple[float, ...],
    mask: MaskInput,
    label: int | None = None,
    name: str = "",
) -> np.ndarray:
    """The lesion of an image ``array`` (spatial axes only, in (x, y[, z]) order) with pixel
    ``spacing`` as a boolean array on its grid, never empty: a position's disc, the binary
    volume itself (``"self"``), every pixel (``"image"``), or a mask (array or file; ``label``
    picks one value)."""
    shape = tuple(array.shape)
    if isinstance(mask, str) and mask == WHOLE_IMAGE:
        return np.ones(shape, dtype=bool)
    if isinstance(mask, LesionPosition):
        return mask.mask(shape, spacing, where=name)
    if isinstance(mask, str) and mask == SELF_MASK:
        if not is_binary_volume(array):
            raise ConfigError(
                f"{name}: mask='self' needs a binary shape volume (0 and one other value); "
                "give a mask file or a lesion position"
            )
        return np.asarray(array) > 0
    source = mask if isinstance(mask, np.ndarray) else read_image(mask).array
    where = name if isinstance(mask, np.ndarray) else str(mask)
    if source.shape != shape and _squeezed(source.shape) == _squeezed(shape):
        source = source.reshape(shape)  # a 2-D mask for a one-slice volume, or the reverse
    if source.shape != shape:
        raise file_error(
            where,
            f"mask shape {source.shape} differs from the image's {shape}",
            "give the mask on the image's grid",
            DataError,
        )
    roi = label_mask(source, label)
    if not roi.any():
        what = "no voxel > 0" if label is None else f"no voxel of label {label}"
        raise file_error(where, f"the mask is empty ({what})", "check the mask or --label")
    return roi


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(n for n in shape if n != 1)


def run_pyradiomics(
    picture: MedImage,
    roi: np.ndarray,
    settings: RadiomicsSettings,
    classes: list[str],
    name: str,
) -> dict[str, float]:
    """pyradiomics on a scalar image and a boolean mask of the same grid."""
    extractor = _extractor(settings, classes)
    array = picture.array
    if array.dtype.kind != "f":
        array = array.astype(np.float32 if array.dtype.itemsize <= 2 else np.float64)
    try:
        result = extractor.execute(_itk(array, picture), _itk(roi.astype(np.uint8), picture))
    except (ValueError, RuntimeError, IndexError, ZeroDivisionError) as err:
        raise DataError(
            f"{name}: pyradiomics cannot compute features ({one_line(err)[:200]}); the lesion "
            "mask must cover at least 2 pixels in 2 dimensions"
        ) from None
    return {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}


def _extractor(settings: RadiomicsSettings, classes: list[str]) -> Any:
    try:
        from radiomics import featureextractor
    except ImportError:
        raise ConfigError(
            "radiomics needs pyradiomics: pip install 'medssl[radiomics]' (the "
            f"{DISTRIBUTION} distribution; pyradiomics 3.1.0 does not install on Python 3.11)"
        ) from None
    logging.getLogger("radiomics").setLevel(logging.ERROR)  # "GLCM is symmetrical ..." chatter
    extractor = featureextractor.RadiomicsFeatureExtractor(**settings.pyradiomics_settings())
    extractor.disableAllFeatures()
    for name in classes:
        extractor.enableFeatureClassByName(name)
    extractor.disableAllImageTypes()
    extractor.enableImageTypes(**{k: dict(v) for k, v in settings.image_types.items()})
    return extractor


def _itk(array: np.ndarray, picture: MedImage) -> Any:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(array.T))  # (x, y, z) -> ITK's (z, y, x)
    image.SetSpacing(picture.spacing)
    image.SetOrigin(picture.origin)
    image.SetDirection(tuple(picture.direction.ravel()))
    return image


# -- cache -------------------------------------------------------------------------------------
def pyradiomics_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "none"


def cache_key(
    image: ImageInput,
    mask: MaskInput,
    settings: RadiomicsSettings,
    label: int | None = None,
    spacing: tuple[float, ...] | None = None,
) -> str:
    """Changes with the image, the mask (file, position or array), the settings, the label,
    the spacing override and the pyradiomics version; reads no voxels of files."""
    parts = [
        f"v{VERSION}",
        pyradiomics_version(),
        _identity(image),
        _identity(mask),
        settings.model_dump_json(),
        f"label={label}",
        f"spacing={spacing}",
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def _identity(thing: Any) -> str:
    if isinstance(thing, LesionPosition):
        return thing.describe()
    if isinstance(thing, str) and thing in (SELF_MASK, WHOLE_IMAGE):
        return thing
    if isinstance(thing, MedImage):
        geometry = f"{thing.spacing}{thing.origin}{thing.direction.tolist()}"
        return f"{_identity(thing.array)}:{geometry}"
    if isinstance(thing, np.ndarray):
        array = np.ascontiguousarray(thing)
        digest = hashlib.sha256(f"{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
        return f"array:{digest.hexdigest()}"
    path = existing_path(thing).resolve()
    stat = path.stat()
    return f"file:{path}:{stat.st_size}:{stat.st_mtime_ns}"


def _name_of(image: ImageInput) -> str:
    if isinstance(image, (str, Path)):
        stem = re.sub(r"(\.nii\.gz|\.[A-Za-z0-9]+)$", "", Path(image).name)
        return f"{stem}-{hashlib.sha256(str(Path(image).resolve()).encode()).hexdigest()[:8]}"
    return f"array-{_identity(image)[-8:]}"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "case"


def _read_cache(path: Path, key: str) -> CaseFeatures | None:
    try:
        saved = json.loads(path.read_text())
        if saved.get("version") != VERSION or saved.get("key") != key:
            return None
        return CaseFeatures(
            features={k: float(v) for k, v in saved["features"].items()},
            dims=int(saved["dims"]),
            binary=bool(saved.get("binary", False)),
            notes=list(saved.get("notes", [])),
            cached=True,
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None  # no cache, or one written by another version: compute again


def _is_cache_file(path: Path) -> bool:
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(saved, dict) and {"version", "key", "features"} <= set(saved)


def _write_cache(path: Path, key: str, name: str, result: CaseFeatures) -> None:
    """Best effort: a cache that cannot be written costs the next run the same computation."""
    from medssl.atomic import write_json_atomic

    if path.exists() and not _is_cache_file(path):
        return  # a file medssl did not write (a --cache folder of other things): left alone
    payload = {
        "version": VERSION,
        "key": key,
        "case": name,
        "pyradiomics": pyradiomics_version(),
        "dims": result.dims,
        "binary": result.binary,
        "notes": result.notes,
        "features": result.features,
    }
    try:
        write_json_atomic(path, payload)
    except Exception:  # noqa: BLE001 - any failure to cache is not the user's problem
        return
