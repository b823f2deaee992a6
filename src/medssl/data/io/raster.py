"""PNG, JPEG, BMP and TIFF through Pillow: 2-D images without a patient frame."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from medssl.atomic import write_atomic
from medssl.data.io._common import one_line
from medssl.data.io.image import ImageHeader, MedImage
from medssl.errors import file_error

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

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
            f"is not a readable image ({one_line(err)})",
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


def read_raster(path: Path) -> MedImage:
    """Pillow, because it reports truncated JPEGs that ITK's reader decodes silently."""
    with _open_raster(path) as image:
        mode = _raster_mode(image)
        try:
            pixels = np.asarray(image if mode == image.mode else image.convert(mode))
        except (OSError, ValueError) as err:
            raise file_error(
                path,
                f"cannot be decoded ({one_line(err)})",
                "the file is truncated or corrupt: re-export or re-download it",
            ) from err
    array = pixels.astype(_PIL_DTYPES[mode], copy=False).swapaxes(0, 1)
    return MedImage(array, (1.0, 1.0), (0.0, 0.0), np.eye(2), path)


def raster_header(path: Path) -> ImageHeader:
    """Size and mode from the file's header; 1 mm pixels, as :func:`read_raster` gives."""
    with _open_raster(path) as image:
        mode = _raster_mode(image)
        size = image.size
    bands = Image.getmodebands(mode)
    return ImageHeader(
        path, tuple(size), (1.0, 1.0), (0.0, 0.0), np.eye(2), _PIL_DTYPES[mode], bands
    )


def write_png(path: Path, image: MedImage, verify: Callable[[Path], None] | None = None) -> None:
    """Write the voxels atomically as PNG; the geometry is not kept (PNG has none)."""
    pixels = _png_pixels(path, image)
    write_atomic(path, lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG"), verify)


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
