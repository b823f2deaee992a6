"""Read and write images, landmarks, MedMNIST arrays and SWC tracings behind one error policy.

Every image reader returns a :class:`MedImage` with the voxels in (x, y[, z]) index order and
ITK/LPS geometry, whatever the format (NIfTI, NRRD, MetaImage, DICOM, PNG/JPEG), so the rest of
medssl never needs to know where an image came from. Every bad input becomes a one-line
:class:`~medssl.errors.DataError` naming the file and the fix; every write goes to a temporary
file beside the target and is renamed into place, so a failed write leaves nothing behind.

One module per job: ``image`` (the model), ``formats`` (dispatch by suffix), ``itk`` and
``nifti`` (SimpleITK formats), ``dicom``, ``raster`` (Pillow), ``medmnist``, ``landmarks``,
``swc``, ``monai_reader``; ``_common`` holds what they share.
"""

from medssl.data.io.dicom import DICOM_SUFFIXES, read_dicom_series
from medssl.data.io.formats import (
    READ_SUFFIXES,
    WRITE_SUFFIXES,
    read_header,
    read_image,
    write_image,
)
from medssl.data.io.image import ImageHeader, MedImage
from medssl.data.io.itk import ITK_SUFFIXES
from medssl.data.io.landmarks import LandmarkSet, read_landmarks, write_landmarks
from medssl.data.io.medmnist import NPZ_SPLITS, read_npz
from medssl.data.io.monai_reader import MedsslReader
from medssl.data.io.raster import RASTER_SUFFIXES
from medssl.data.io.swc import SWC_DTYPE, read_swc, write_swc

__all__ = [
    "DICOM_SUFFIXES",
    "ITK_SUFFIXES",
    "NPZ_SPLITS",
    "RASTER_SUFFIXES",
    "READ_SUFFIXES",
    "SWC_DTYPE",
    "WRITE_SUFFIXES",
    "ImageHeader",
    "LandmarkSet",
    "MedImage",
    "MedsslReader",
    "read_dicom_series",
    "read_header",
    "read_image",
    "read_landmarks",
    "read_npz",
    "read_swc",
    "write_image",
    "write_landmarks",
    "write_swc",
]
